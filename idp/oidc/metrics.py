"""Prometheus metrics of the OIDC provider (served at /metrics with the others)."""

from __future__ import annotations

import json

from flask import Response
from prometheus_client import Counter

from ..metrics import REGISTRY

GRANT_TYPES = frozenset({"authorization_code", "refresh_token", "client_credentials"})
OAUTH_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant",
                          "unauthorized_client", "unsupported_grant_type", "invalid_scope"})

TOKEN_REQUESTS = Counter("idp_oidc_token_requests_total",
                         "Token endpoint requests by grant type and outcome (issued or the "
                         "OAuth error code)", ["grant_type", "outcome"], registry=REGISTRY)


def count_token_request(grant_type: str | None, response: Response) -> None:
    """Labels are bounded: unknown grant types and error codes are counted as ``other``."""
    grant = grant_type if grant_type in GRANT_TYPES else "other"
    if response.status_code == 200:
        outcome = "issued"
    else:
        try:
            error = json.loads(response.get_data()).get("error")
        except ValueError:
            error = None
        outcome = error if error in OAUTH_ERRORS else "other"
    counter = _COUNTERS.get((grant, outcome))
    if counter is None:   # labels() costs more than inc(); both labels are bounded sets
        counter = _COUNTERS[(grant, outcome)] = TOKEN_REQUESTS.labels(grant, outcome)
    counter.inc()


_COUNTERS: dict = {}
