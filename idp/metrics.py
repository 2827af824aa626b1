"""Prometheus metrics on one registry, served at /metrics (text exposition format).

Feature packages declare their own metrics on :data:`REGISTRY`. With several worker processes,
``PROMETHEUS_MULTIPROC_DIR`` (set by the shipped unit, deploy/) makes every worker write its
values to files there and ``/metrics`` answer their sum (prometheus_client's multiprocess mode),
so one scrape per replica sees every worker. Counters and histograms of a worker that died
still count; a gauge says something about a live process, so gauges are declared with a
``live*`` multiprocess mode and a dead worker's are dropped before each scrape."""

import glob
import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

REGISTRY = CollectorRegistry(auto_describe=True)

LOGINS = Counter("idp_logins_total", "Login attempts by method and outcome",
                 ["method", "outcome"], registry=REGISTRY)
THROTTLED = Counter("idp_login_throttled_total", "Login requests refused by the throttle",
                    ["scope"], registry=REGISTRY)
LMS_QUERY_SECONDS = Histogram(
    "idp_lms_query_seconds", "Latency of LMS queries", ["query"], registry=REGISTRY,
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))
LMS_ERRORS = Counter("idp_lms_errors_total", "LMS queries that failed (database unreachable, "
                     "timeout)", ["query"], registry=REGISTRY)
LMS_BREAKER_STATE = Gauge("idp_lms_breaker_state", "The LMS circuit breaker (one per LMS, "
                          "shared by every reader): 0 closed, 1 half-open, 2 open",
                          registry=REGISTRY, multiprocess_mode="livemax")
HTTP_REQUESTS = Counter("idp_http_requests_total", "HTTP requests answered, by endpoint and "
                        "status (error answers included)", ["endpoint", "status"],
                        registry=REGISTRY)
HTTP_SECONDS = Histogram("idp_http_request_seconds", "Time to answer an HTTP request, by "
                         "endpoint", ["endpoint"], registry=REGISTRY,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                                  10.0, 30.0))


_ANSWERED: dict = {}   # (endpoint, status) -> the metrics' children: labels() costs more than
#                        inc(); endpoints and statuses are finite sets


def count_answer(endpoint: str, status: int, seconds: float | None) -> None:
    """One HTTP answer in ``idp_http_requests_total`` and, when its duration is known,
    ``idp_http_request_seconds`` (the app's after-request hook, and the service-token layer
    that answers below Flask)."""
    children = _ANSWERED.get((endpoint, status))
    if children is None:
        children = _ANSWERED[endpoint, status] = (HTTP_REQUESTS.labels(endpoint, str(status)),
                                                  HTTP_SECONDS.labels(endpoint))
    children[0].inc()
    if seconds is not None:
        children[1].observe(seconds)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def drop_dead_gauges(directory: str) -> list[int]:
    """``mark_process_dead`` for every process whose live gauges are on file but which no
    longer runs (the server's replacement for a per-worker exit hook, which granian lacks);
    returns those pids."""
    dead = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        pid = os.path.basename(path).removesuffix(".db").rsplit("_", 1)[-1]
        if pid.isdigit() and not _running(int(pid)):
            dead.add(int(pid))
    for pid in dead:
        mark_process_dead(pid, directory)
    return sorted(dead)


def scrape_registry() -> CollectorRegistry:
    """What ``/metrics`` exposes: the sum over all worker processes in multiprocess mode
    (live gauges of dead workers dropped first), else this process's registry."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    drop_dead_gauges(directory)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry
