"""Prometheus metrics of the context API (served at /metrics with the rest)."""

from prometheus_client import Counter, Gauge

from ..metrics import REGISTRY

CACHE_LOOKUPS = Counter("idp_context_cache_lookups_total",
                        "Context cache lookups by kind and result (hit, miss, stale, "
                        "unavailable)", ["kind", "result"], registry=REGISTRY)
# One series per replica: the worst state among its live workers (a dead worker's is dropped).
BREAKER_STATE = Gauge("idp_context_lms_breaker_state",
                      "LMS circuit breaker of the context API: 0 closed, 1 half-open, 2 open",
                      registry=REGISTRY, multiprocess_mode="livemax")
CONTEXT_READS = Counter("idp_context_reads_total", "Context API and mentor page reads by "
                        "resource and outcome", ["resource", "outcome"], registry=REGISTRY)

