"""Prometheus metrics on one registry, served at /metrics (text exposition format).

Feature packages declare their own metrics on :data:`REGISTRY`. With several gunicorn workers,
``PROMETHEUS_MULTIPROC_DIR`` (set by the shipped unit, deploy/) makes every worker write its
values to files there and ``/metrics`` answer their sum (prometheus_client's multiprocess mode),
so one scrape per replica sees every worker."""

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

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


def scrape_registry() -> CollectorRegistry:
    """What ``/metrics`` exposes: the sum over all worker processes in multiprocess mode,
    else this process's registry."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry
