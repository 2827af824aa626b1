"""Nudge metrics on the bridge's registry (/metrics)."""

from prometheus_client import Counter

from ..metrics import REGISTRY

PLANNED = Counter("idp_nudges_planned_total", "Nudges planned to send, by kind and rule",
                  ["kind", "rule"], registry=REGISTRY)
SUPPRESSED = Counter("idp_nudges_suppressed_total", "Nudges not sent, by cause (opted_out, "
                     "muted, cap)", ["cause"], registry=REGISTRY)
OUTCOMES = Counter("idp_nudges_delivered_total", "Delivery outcomes by kind, rule and outcome "
                   "(sent, failed, retry, deferred)", ["kind", "rule", "outcome"],
                   registry=REGISTRY)
DIGESTS = Counter("idp_nudge_digests_sent_total", "Mentor digests sent", registry=REGISTRY)
