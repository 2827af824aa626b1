"""Bridge login sessions, stored server-side (``login_sessions``).

The Flask cookie (signed, HttpOnly, SameSite=Lax, Secure under https) carries a random token;
the row is keyed by its SHA-256. A new token is minted at every login (no session fixation),
and revoking a person's rows ends their sessions on every replica at once.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, fields

from flask import current_app, g, session
from sqlalchemy import bindparam, insert, update

from .. import clock, liveness
from ..audit import audit_values
from ..dbapi import driver_cursor
from ..extensions import autocommit_connection, autocommit_engine, db
from ..hashing import token_digest
from ..models import AuditEvent, LoginSession
from ..net import client_ip
from ..people import Person

_COOKIE_KEY = "sid"
_TOUCH_EVERY = dt.timedelta(minutes=5)
_AUDIT_COLUMNS = ("at", "event", "outcome", "subject", "client_ip", "detail")
_SESSIONS = LoginSession.__table__


@dataclass(slots=True)
class SessionView:
    """One ``login_sessions`` row as this request read it: plain values, not attached to
    ``db.session`` (building an ORM instance costs more than the round trip that read it)."""

    id: str
    subject: str
    auth_method: str
    authenticated_at: dt.datetime
    last_seen_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    client_ip: str | None


_SESSION_COLUMNS = tuple(field.name for field in fields(SessionView))


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
# On the driver (idp.dbapi): read on every signed-in request.
_FIND = f"SELECT {', '.join(_SESSION_COLUMNS)} FROM login_sessions WHERE id = %(session_id)s"
_TOUCH = "UPDATE login_sessions SET last_seen_at = %(now)s WHERE id = %(session_id)s"


def open_session(person: Person, auth_method: str) -> SessionView:
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
    g.login_session = SessionView(**values)
    return g.login_session


def current_session() -> SessionView | None:
    """The live session of this request (not expired, not revoked), or None. It is read in
    one round trip outside any transaction, and ``last_seen_at`` is refreshed at most every
    five minutes."""
    if "login_session" in g:
        return g.login_session
    row = None
    token = session.get(_COOKIE_KEY)
    if isinstance(token, str) and len(token) < 100:
        with driver_cursor(autocommit_engine()) as cursor:
            cursor.execute(_FIND, {"session_id": token_digest(token)})
            found = cursor.fetchone()
            now = clock.now()
            if found is not None:
                row = SessionView(*found)
                if row.revoked_at is not None or row.expires_at <= now:
                    row = None
                elif now - row.last_seen_at > _TOUCH_EVERY:
                    cursor.execute(_TOUCH, {"session_id": row.id, "now": now})
                    row.last_seen_at = now
    g.login_session = row
    return row


def current_person() -> Person | None:
    """The signed-in person, checked against the LMS now: a person deactivated or removed in
    the LMS has no session any more (their row is revoked on the spot)."""
    row = current_session()
    if row is None:
        return None
    person = liveness.active_person(row.subject, liveness.Policy.FAIL_CLOSED)
    if person is None:
        revoke_subject(row.subject)
        db.session.commit()
        g.login_session = None
    return person


def close_session() -> SessionView | None:
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
