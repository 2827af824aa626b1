"""Prometheus metrics of provisioning (served at /metrics with the others)."""

from prometheus_client import Counter, Gauge, Histogram

from ..metrics import REGISTRY

ACTIONS = Counter("idp_provision_actions_total",
                  "Provisioning actions by type and outcome (planned, held, delivered, retried, "
                  "failed)", ["action", "outcome"], registry=REGISTRY)
RUNS = Counter("idp_provision_runs_total", "Plan runs by status (applied, held, refused, "
               "failed, empty)", ["status"], registry=REGISTRY)
HELD_RUNS = Gauge("idp_provision_held_runs", "Runs held by the safety guard, awaiting "
                  "`provision approve`", registry=REGISTRY)
PENDING = Gauge("idp_provision_pending_actions", "Outbox actions not yet delivered",
                registry=REGISTRY)
LAG = Histogram("idp_provision_lag_seconds", "Seconds from the LMS change being seen (or its "
                "NOTIFY timestamp) to Zulip confirming the action", ["action"],
                registry=REGISTRY,
                buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 900, 3600))
LEADER = Gauge("idp_provision_worker_delivering", "1 while this process holds the delivery "
               "lock, 0 while it stands by", registry=REGISTRY)
ZULIP_FEATURE = Gauge("idp_provision_zulip_feature", "1 while the Zulip target offers the "
                      "feature, 0 while it is switched off (see /admin/provisioning)",
                      ["feature"], registry=REGISTRY)
ZULIP_BREAKER = Gauge("idp_provision_zulip_breaker_state", "Circuit breaker toward Zulip: 0 "
                      "closed, 1 half-open, 2 open", registry=REGISTRY)
OLDEST_DEACTIVATION = Gauge("idp_provision_oldest_pending_deactivation_seconds", "Age of the "
                            "oldest deactivation not yet confirmed by Zulip (0: none)",
                            registry=REGISTRY)
