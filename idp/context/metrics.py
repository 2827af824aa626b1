"""Prometheus metrics of the context API (served at /metrics with the rest)."""

from prometheus_client import Counter

from ..metrics import REGISTRY

CACHE_LOOKUPS = Counter("idp_context_cache_lookups_total",
                        "Context cache lookups by kind and result (hit, miss, stale, "
                        "unavailable)", ["kind", "result"], registry=REGISTRY)
CONTEXT_READS = Counter("idp_context_reads_total", "Context API and mentor page reads by "
                        "resource and outcome", ["resource", "outcome"], registry=REGISTRY)

