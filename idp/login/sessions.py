"""Bridge login sessions, stored server-side (``login_sessions``).

The Flask cookie (signed, HttpOnly, SameSite=Lax, Secure under https) carries a random token;
the row is keyed by its SHA-256. A new token is minted at every login (no session fixation),
and revoking a person's rows ends their sessions on every replica at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from flask import current_app, g, session
from sqlalchemy import update

from .. import clock
from ..extensions import db
from ..lms.directory import get_directory
from ..models import LoginSession
from ..net import client_ip
from ..people import Person

_COOKIE_KEY = "sid"
_TOUCH_EVERY = dt.timedelta(minutes=5)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(person: Person, auth_method: str) -> LoginSession:
    """Start a fresh session for ``person``: the old cookie content is dropped, a new token is
    minted (the caller commits)."""
    close_session(reason="replaced")
    session.clear()
    token = secrets.token_urlsafe(32)
    now = clock.now()
    lifetime = current_app.config["IDP"].session_lifetime
    row = LoginSession(id=_digest(token), subject=person.subject, auth_method=auth_method,
                       authenticated_at=now, last_seen_at=now,
                       expires_at=now + dt.timedelta(seconds=lifetime), client_ip=client_ip())
    db.session.add(row)
    session[_COOKIE_KEY] = token
    session.permanent = True
    g.login_session = row
    return row


def current_session() -> LoginSession | None:
    """The live session of this request (not expired, not revoked), or None."""
    if "login_session" in g:
        return g.login_session
    row = None
    token = session.get(_COOKIE_KEY)
    if isinstance(token, str) and len(token) < 100:
        row = db.session.get(LoginSession, _digest(token))
        now = clock.now()
        if row is not None and (row.revoked_at is not None or row.expires_at <= now):
            row = None
        if row is not None and now - row.last_seen_at > _TOUCH_EVERY:
            row.last_seen_at = now
            db.session.commit()
    g.login_session = row
    return row


def current_person() -> Person | None:
    """The signed-in person, checked against the LMS now: a person deactivated or removed in
    the LMS has no session any more (their row is revoked on the spot)."""
    row = current_session()
    if row is None:
        return None
    person = get_directory().get_active(row.subject)
    if person is None:
        revoke_subject(row.subject)
        db.session.commit()
        g.login_session = None
    return person


def close_session(reason: str = "logout") -> LoginSession | None:
    """End this browser's session (the caller commits); returns the row that was ended."""
    row = current_session()
    if row is not None:
        row.revoked_at = clock.now()
    session.pop(_COOKIE_KEY, None)
    g.login_session = None
    return row


def revoke_subject(subject: str) -> int:
    """End every live session of ``subject`` (the caller commits); returns how many ended."""
    result = db.session.execute(
        update(LoginSession)
        .where(LoginSession.subject == subject, LoginSession.revoked_at.is_(None))
        .values(revoked_at=clock.now()))
    return result.rowcount or 0
