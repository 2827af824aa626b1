"""Storing, finding and revoking tokens (RFC 6749 §5.1, §6, §10.4; RFC 7009; RFC 9700 §4.14).

Only digests are stored. A token row holds one access token and maybe one refresh token; rows
descended from one authorization code share a ``family_id``. The callers commit.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from authlib.oauth2.rfc6749.errors import InvalidClientError
from flask import current_app
from sqlalchemy import delete, or_, select, text, update

from .. import clock
from ..dbapi import Prepared, driver_cursor
from ..extensions import autocommit_engine, db
from ..hashing import token_digest
from .credentials import new_token
from .models import OIDCAuthorizationCode, OIDCToken

MAX_TOKEN_CHARS = 512


def settings():
    return current_app.extensions["oidc"].settings


_INSERT_TOKEN_SQL = """
    INSERT INTO oidc_tokens (client_id, subject, scope, access_token_hash, refresh_token_hash,
                             family_id, auth_time, issued_at, expires_in, refresh_expires_at,
                             claims)
    SELECT client_id, :subject, :scope, :access, :refresh, :family, :auth_time, :now,
           :expires_in, :refresh_expires_at, :claims
      FROM oidc_clients WHERE client_id = :client_id"""
_INSERT_TOKEN = text(_INSERT_TOKEN_SQL)
# The same statement in the driver's parameter style, prepared once per connection, for a
# token committed on its own.
_INSERT_TOKEN_DRIVER = Prepared("idp_insert_token",
                                re.sub(r":(\w+)", r"%(\1)s", _INSERT_TOKEN_SQL))
# A refresh token is read first (the person is checked in the LMS before anything is spent:
# an LMS outage must not burn the client's token), then spent and replaced by its successor
# in ONE statement: a data-modifying CTE is one atomic statement on an autocommit connection,
# so the old token is spent exactly when the new row exists. 2 round trips instead of BEGIN,
# UPDATE, INSERT, COMMIT.
_LOOK_UP_REFRESH = Prepared("idp_look_up_refresh", """
    SELECT client_id, subject, scope, family_id, auth_time, claims,
           refresh_used_at IS NOT NULL,
           revoked_at IS NULL AND refresh_expires_at > %(now)s
      FROM oidc_tokens WHERE refresh_token_hash = %(hash)s""")
_ROTATE_REFRESH = Prepared("idp_rotate_refresh", """
    WITH spent AS (
        UPDATE oidc_tokens SET refresh_used_at = %(now)s
         WHERE refresh_token_hash = %(old)s AND client_id = %(client_id)s
           AND refresh_used_at IS NULL AND revoked_at IS NULL
           AND refresh_expires_at > %(now)s
        RETURNING client_id, subject, family_id, auth_time, claims)
    INSERT INTO oidc_tokens (client_id, subject, scope, access_token_hash, refresh_token_hash,
                             family_id, auth_time, issued_at, expires_in, refresh_expires_at,
                             claims)
    SELECT client_id, subject, %(scope)s, %(access)s, %(refresh)s, family_id, auth_time,
           %(now)s, %(expires_in)s, %(refresh_expires_at)s, claims
      FROM spent""")


@dataclass(frozen=True)
class PresentedRefreshToken:
    """The row of a presented refresh token, as read (not yet spent: :func:`store_token` spends
    it in the statement that stores its successor). ``spent``: used before (a replay, RFC 9700
    §4.14.2); ``usable``: neither revoked nor expired."""

    digest: str
    client_id: str
    subject: str | None
    scope: str
    family_id: str
    auth_time: int | None
    claims: str | None   # the claims request of the grant (OIDC Core §5.5), as JSON
    spent: bool
    usable: bool

    def check_client(self, client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope


class RefreshTokenGone(Exception):
    """The refresh token was spent, revoked or expired between its reading and its rotation
    (a concurrent request with the same token won)."""


def store_token(token: dict, *, client_id: str, subject: str | None, family_id: str,
                auth_time: int | None, claims: str | None = None,
                on_its_own: bool = False,
                rotates: PresentedRefreshToken | None = None) -> None:
    """Insert the row for a freshly generated token response. One pre-built statement: this
    is the token endpoint's hot path. Raises :class:`InvalidClientError` when the client was
    removed meanwhile.

    With ``on_its_own`` (a token that nothing else in the request writes with: client
    credentials) the INSERT commits by itself on an autocommit connection, straight on the
    driver: one round trip, durable like any commit, no ORM transaction. With ``rotates`` (a
    refresh), the same one statement also spends that refresh token, or inserts nothing and
    raises :class:`RefreshTokenGone` when it is no longer usable. Otherwise it joins the
    request's transaction (a spent code commits with it) and the caller commits."""
    now = clock.timestamp()
    refresh = token.get("refresh_token")
    params = {
        "client_id": client_id, "subject": subject, "scope": token.get("scope", ""),
        "access": token_digest(token["access_token"]),
        "refresh": token_digest(refresh) if refresh else None, "family": family_id,
        "auth_time": auth_time, "now": now, "claims": claims,
        "expires_in": int(token.get("expires_in", settings().access_token_lifetime)),
        "refresh_expires_at": now + settings().refresh_token_lifetime if refresh else None}
    if rotates is not None:
        with driver_cursor(autocommit_engine()) as cursor:
            _ROTATE_REFRESH.run(cursor, {**params, "old": rotates.digest})
            if cursor.rowcount != 1:
                raise RefreshTokenGone
        return
    if on_its_own:
        with driver_cursor(autocommit_engine()) as cursor:
            _INSERT_TOKEN_DRIVER.run(cursor, params)
            inserted = cursor.rowcount
    else:
        inserted = db.session.connection().execute(_INSERT_TOKEN, params).rowcount
    if inserted != 1:
        raise InvalidClientError(description="The client is no longer registered.")


def new_family_id() -> str:
    return token_digest(new_token())


def find_by_access_token(value: str) -> OIDCToken | None:
    if not value or len(value) > MAX_TOKEN_CHARS:
        return None
    return db.session.execute(select(OIDCToken).where(
        OIDCToken.access_token_hash == token_digest(value))).scalar_one_or_none()


def find_by_refresh_token(value: str) -> OIDCToken | None:
    if not value or len(value) > MAX_TOKEN_CHARS:
        return None
    return db.session.execute(select(OIDCToken).where(
        OIDCToken.refresh_token_hash == token_digest(value))).scalar_one_or_none()


def look_up_refresh_token(value: str) -> PresentedRefreshToken | None:
    """The row of a presented refresh token (one read on the autocommit pool; nothing is
    spent yet), or None when it is unknown or malformed."""
    if not value or len(value) > MAX_TOKEN_CHARS:
        return None
    return refresh_token_by_digest(token_digest(value))


def refresh_token_by_digest(digest: str) -> PresentedRefreshToken | None:
    with driver_cursor(autocommit_engine()) as cursor:
        _LOOK_UP_REFRESH.run(cursor, {"now": clock.timestamp(), "hash": digest})
        row = cursor.fetchone()
    return PresentedRefreshToken(digest, *row) if row is not None else None


def access_token_active(row: OIDCToken) -> bool:
    return row.revoked_at is None and clock.timestamp() < row.access_expires_at


def refresh_token_active(row: OIDCToken) -> bool:
    return (row.revoked_at is None and row.refresh_used_at is None
            and row.refresh_expires_at is not None
            and clock.timestamp() < row.refresh_expires_at)


def revoke_family(family_id: str) -> int:
    """Revoke every access and refresh token of one grant (code reuse, refresh reuse)."""
    result = db.session.execute(
        update(OIDCToken).where(OIDCToken.family_id == family_id,
                                OIDCToken.revoked_at.is_(None))
        .values(revoked_at=clock.timestamp()))
    return result.rowcount or 0


def revoke_row(row: OIDCToken) -> None:
    row.revoked_at = row.revoked_at or clock.timestamp()


def revoke_subject(subject: str) -> int:
    """End everything held for a person: tokens revoked, outstanding codes spent."""
    now = clock.now()
    result = db.session.execute(
        update(OIDCToken).where(OIDCToken.subject == subject, OIDCToken.revoked_at.is_(None))
        .values(revoked_at=clock.timestamp()))
    db.session.execute(
        update(OIDCAuthorizationCode)
        .where(OIDCAuthorizationCode.subject == subject, OIDCAuthorizationCode.used_at.is_(None))
        .values(used_at=now))
    return result.rowcount or 0


def prune() -> tuple[int, int]:
    """Delete codes expired a day ago and tokens whose access and refresh parts have both been
    dead for a day (kept that long so a replay is still recognised and answered)."""
    horizon = clock.timestamp() - 86400
    codes = db.session.execute(delete(OIDCAuthorizationCode).where(
        OIDCAuthorizationCode.expires_at < clock.now() - dt.timedelta(days=1))).rowcount or 0
    tokens = db.session.execute(delete(OIDCToken).where(
        OIDCToken.issued_at + OIDCToken.expires_in < horizon,
        or_(OIDCToken.refresh_expires_at.is_(None), OIDCToken.refresh_expires_at < horizon,
            OIDCToken.revoked_at < horizon))).rowcount or 0
    return codes, tokens
