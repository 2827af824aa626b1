"""Learning-history metrics on the bridge's registry (/metrics)."""

from prometheus_client import Counter, Histogram

from ..metrics import REGISTRY

SNAPSHOT_ROWS = Counter("idp_history_snapshot_rows_total",
                        "Learning-history rows written, by origin (daily, backfill)",
                        ["origin"], registry=REGISTRY)
SNAPSHOT_SECONDS = Histogram("idp_history_snapshot_seconds",
                             "Time to take one day's learning-history snapshot", ["origin"],
                             registry=REGISTRY,
                             buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900))
