"""Who is asking, and what they may see.

Authentication (RFC 6750 §2.1): an ``Authorization: Bearer`` header is checked by the OIDC
package's :func:`idp.oidc.resource.validate_bearer` with scope ``lms.context``; without that
header, the bridge's signed-in session counts. Authorization:

- a service (client-credentials token, no person) holding ``lms.context`` reads any student's
  context and any mentor's list;
- staff (``IDP_STAFF_EMAILS``) read everyone;
- a mentor reads their own students and their own list;
- a student reads only themselves.

Anything else is answered exactly as if the student did not exist (no existence leak).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import request

from .. import liveness
from ..extensions import db
from ..login.sessions import current_session, revoke_subject
from ..oidc import resource
from ..people import Person
from .service import ContextService

SCOPE = "lms.context"


class NotAuthenticated(Exception):
    """No bearer token and no live session (or its person is no longer active)."""


@dataclass(frozen=True)
class Viewer:
    """The person (None for a service client) and how they came in."""

    person: Person | None
    via: str                      # "token" or "session"
    client_id: str | None = None  # the OAuth client of a token
    stale: bool = False           # recognised from the last known good copy (LMS down)

    @property
    def subject(self) -> str | None:
        return self.person.subject if self.person else None

    @property
    def is_service(self) -> bool:
        return self.person is None

    def sees_everyone(self) -> bool:
        return self.person is None or self.person.is_staff

    def may_see_student(self, owner: dict) -> bool:
        """``owner``: ``{"id", "mentor_id", ...}`` from :meth:`ContextService.owner`."""
        if self.sees_everyone():
            return True
        if self.person.kind == "mentor":
            return owner["mentor_id"] == self.person.lms_id
        return self.person.kind == "student" and owner["id"] == self.person.lms_id

    def may_see_mentor(self, mentor_id: int) -> bool:
        if self.sees_everyone():
            return True
        return self.person.kind == "mentor" and self.person.lms_id == mentor_id


def bearer_viewer(service: ContextService, header: str) -> Viewer:
    """RFC 6750: a valid token with scope ``lms.context`` (raises BearerError otherwise)."""
    grant = resource.validate_bearer(header, SCOPE, policy=liveness.Policy.STALE_OK)
    if grant.subject is None:
        return Viewer(None, "token", client_id=grant.client_id)
    person, stale = service.viewer(grant.subject)
    if person is None:
        raise resource.BearerError(401, "invalid_token",
                                   "the person this token was issued to is no longer active")
    return Viewer(person, "token", client_id=grant.client_id, stale=stale)


def session_viewer(service: ContextService) -> Viewer:
    """The signed-in person; a person no longer active in the LMS loses the session here,
    as in :func:`idp.login.sessions.current_person`."""
    row = current_session()
    if row is None:
        raise NotAuthenticated()
    person, stale = service.viewer(row.subject)
    if person is None:
        revoke_subject(row.subject)
        db.session.commit()
        raise NotAuthenticated()
    return Viewer(person, "session", stale=stale)


def current_viewer(service: ContextService) -> Viewer:
    """Bearer token if the request carries one, else the session."""
    header = request.headers.get("Authorization")
    if header is not None:
        return bearer_viewer(service, header)
    return session_viewer(service)
