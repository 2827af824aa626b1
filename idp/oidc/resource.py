"""Bearer-token checks for resource servers inside the bridge (the context API, userinfo).

RFC 6750 §2.1 (Authorization: Bearer), §3.1 (error codes). Implemented by the OIDC package;
the context API calls :func:`validate_bearer` and never reads token tables itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import scope_to_list

from .. import liveness

_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)
MAX_HEADER_CHARS = 600


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


def check_access_token(authorization_header: str | None, required_scope: str | None,
                       audience: str | None = None, *,
                       policy: liveness.Policy = liveness.Policy.FAIL_CLOSED):
    """The token row behind ``Authorization: Bearer <token>``, its :class:`BearerGrant` and the
    person it speaks for (None for a service token), as ``(row, grant, person)``. Raises
    :class:`BearerError`. The person comes from the liveness service under ``policy``. A token
    bound to a resource (RFC 8707) is accepted only by that resource: ``audience`` None
    accepts unbound tokens only."""
    from .resource_indicators import bound_resource
    from .tokens import access_token_active, find_by_access_token

    if not authorization_header:
        raise BearerError(401, "invalid_token", "No bearer token was sent.")
    match = _BEARER.match(authorization_header) \
        if len(authorization_header) <= MAX_HEADER_CHARS else None
    if match is None:
        raise BearerError(401, "invalid_token", "The Authorization header is not a bearer "
                                                "token.")
    row = find_by_access_token(match.group(1))
    if row is None:
        raise BearerError(401, "invalid_token", "The access token is unknown.")
    if not access_token_active(row):
        raise BearerError(401, "invalid_token", "The access token expired or was revoked.")
    if bound_resource(row.family_id) != audience:
        raise BearerError(401, "invalid_token", "The access token was issued for another "
                                                "resource.")
    person = None
    if row.subject is not None:
        person = liveness.active_person(row.subject, policy)
        if person is None:
            raise BearerError(401, "invalid_token", "The person is no longer active.")
    grant = BearerGrant(client_id=row.client_id, scopes=frozenset(scope_to_list(row.scope) or []),
                        subject=row.subject)
    if required_scope and required_scope not in grant.scopes:
        raise BearerError(403, "insufficient_scope", f"The token lacks the scope "
                                                     f"{required_scope}.")
    return row, grant, person


def validate_bearer(authorization_header: str | None, required_scope: str, *,
                    policy: liveness.Policy = liveness.Policy.FAIL_CLOSED) -> BearerGrant:
    """Check ``Authorization: Bearer <token>`` and that the token carries ``required_scope``."""
    return check_access_token(authorization_header, required_scope, policy=policy)[1]
