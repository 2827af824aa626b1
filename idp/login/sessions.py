"""Bridge login sessions, stored server-side (``login_sessions``).

The Flask cookie (signed, HttpOnly, SameSite=Lax, Secure under https) carries a random token;
the row is keyed by its SHA-256. A new token is minted at every login (no session fixation),
and revoking a person's rows ends their sessions on every replica at once.
"""

from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app, g, session
from sqlalchemy import bindparam, insert, select, update

from .. import clock
from ..audit import audit_values
from ..extensions import autocommit_connection, db
from ..hashing import token_digest
from ..lms.directory import get_directory
from ..models import AuditEvent, LoginSession
from ..net import client_ip
from ..people import Person

_COOKIE_KEY = "sid"
_TOUCH_EVERY = dt.timedelta(minutes=5)
_SESSION_COLUMNS = ("id", "subject", "auth_method", "authenticated_at", "last_seen_at",
                    "expires_at", "revoked_at", "client_ip")
_AUDIT_COLUMNS = ("at", "event", "outcome", "subject", "client_ip", "detail")
_SESSIONS = LoginSession.__table__


def _open_statement(replacing: bool):
    """Built once: insert the session and its audit row (and end the replaced session) in one
    statement. Parameters are prefixed (``session_*``, ``audit_*``) so that none is taken for
    a column of the other table."""
    audit = AuditEvent.__table__
    statement = insert(_SESSIONS).values({c: bindparam("session_" + c, type_=_SESSIONS.c[c].type)
                                          for c in _SESSION_COLUMNS}) \
        .add_cte(insert(audit).values({c: bindparam("audit_" + c, type_=audit.c[c].type)
                                       for c in _AUDIT_COLUMNS}).cte("audit"))
    if replacing:
        statement = statement.add_cte(update(_SESSIONS)
                                      .where(_SESSIONS.c.id == bindparam("replaced_id"))
                                      .values(revoked_at=bindparam("session_authenticated_at"))
                                      .cte("replaced"))
    return statement


_OPEN_SESSION = _open_statement(replacing=False)
_REPLACE_SESSION = _open_statement(replacing=True)
_FIND = select(_SESSIONS).where(_SESSIONS.c.id == bindparam("session_id"))
_TOUCH = update(_SESSIONS).where(_SESSIONS.c.id == bindparam("session_id")) \
    .values(last_seen_at=bindparam("now"))


def open_session(person: Person, auth_method: str) -> LoginSession:
    """Start a fresh session for ``person``: the old cookie content is dropped and a new token
    minted (no fixation). The session row, the end of the browser's previous session and the
    ``login`` audit row are written by one atomic statement, committed on return."""
    previous = current_session()
    session.clear()
    token = secrets.token_urlsafe(32)
    now = clock.now()
    lifetime = current_app.config["IDP"].session_lifetime
    values = {"id": token_digest(token), "subject": person.subject, "auth_method": auth_method,
              "authenticated_at": now, "last_seen_at": now, "revoked_at": None,
              "expires_at": now + dt.timedelta(seconds=lifetime), "client_ip": client_ip()}
    audit = audit_values("login", "success", person.subject, method=auth_method)
    params = {**{"session_" + k: v for k, v in values.items()},
              **{"audit_" + k: v for k, v in audit.items()}}
    if previous is not None:
        params["replaced_id"] = previous.id
    with autocommit_connection() as conn:
        conn.execute(_REPLACE_SESSION if previous is not None else _OPEN_SESSION, params)
    session[_COOKIE_KEY] = token
    session.permanent = True
    g.login_session = LoginSession(**values)
    return g.login_session


def current_session() -> LoginSession | None:
    """The live session of this request (not expired, not revoked), or None. The row is a
    read-only view (not attached to ``db.session``): it is read in one round trip outside any
    transaction, and ``last_seen_at`` is refreshed at most every five minutes."""
    if "login_session" in g:
        return g.login_session
    row = None
    token = session.get(_COOKIE_KEY)
    if isinstance(token, str) and len(token) < 100:
        with autocommit_connection() as conn:
            found = conn.execute(_FIND, {"session_id": token_digest(token)}).mappings().first()
            now = clock.now()
            if found is not None and found["revoked_at"] is None and found["expires_at"] > now:
                row = LoginSession(**found)
                if now - row.last_seen_at > _TOUCH_EVERY:
                    conn.execute(_TOUCH, {"session_id": row.id, "now": now})
                    row.last_seen_at = now
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


def close_session() -> LoginSession | None:
    """End this browser's session (in the caller's transaction: the caller commits); returns
    the row that was ended."""
    row = current_session()
    if row is not None:
        row.revoked_at = clock.now()
        db.session.execute(update(_SESSIONS).where(_SESSIONS.c.id == row.id)
                           .values(revoked_at=row.revoked_at))
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
