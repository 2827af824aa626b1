"""Prometheus metrics on one registry, served at /metrics (text exposition format).

Feature packages declare their own metrics on :data:`REGISTRY`. Each process keeps its own
counters; with several gunicorn workers, scrape each or see docs/operations.md."""

from prometheus_client import CollectorRegistry, Counter, Histogram

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
