"""Bearer-token checks for resource servers inside the bridge (the context API).

RFC 6750 §2.1 (Authorization: Bearer), §3.1 (error codes). Implemented by the OIDC package;
the context API calls :func:`validate_bearer` and never reads token tables itself.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BearerGrant:
    """What a valid access token allows: ``subject`` is the person (``student:42``) for tokens
    issued to a user, None for client-credentials tokens of a service."""

    client_id: str
    scopes: frozenset[str]
    subject: str | None


class BearerError(Exception):
    """RFC 6750 §3.1: ``status`` 401 with ``error`` ``invalid_token`` (missing, unknown,
    expired, revoked, or the person is no longer active) or 403 ``insufficient_scope``."""

    def __init__(self, status: int, error: str, description: str):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def validate_bearer(authorization_header: str | None, required_scope: str) -> BearerGrant:
    """Check ``Authorization: Bearer <token>`` and that the token carries ``required_scope``."""
    raise BearerError(401, "invalid_token", "bearer tokens are not issued yet")
