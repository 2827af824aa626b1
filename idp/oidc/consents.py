"""Remembered consent: which scopes a person allowed which client (OIDC Core §3.1.2.4).

A non-trusted client gets the consent page once per set of scopes: a later request for the same
or fewer scopes is answered without asking, so ``prompt=none`` can succeed. A person sees and
revokes their consents on the "connected apps" page, staff with ``oidc consents``; revoking a
consent also revokes that client's tokens and outstanding codes for the person. All are deleted
when the person is deprovisioned (:func:`revoke_all`). The callers commit.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import scope_to_list
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from .. import clock
from ..extensions import db
from .models import OIDCAuthorizationCode, OIDCClient, OIDCConsent, OIDCToken


@dataclass(frozen=True)
class Consent:
    subject: str
    client_id: str
    client_name: str
    scopes: tuple[str, ...]
    granted_at: dt.datetime
    updated_at: dt.datetime


def covers(subject: str, client_id: str, scope: str | None) -> bool:
    """True when ``subject`` already allowed ``client_id`` every scope in ``scope``."""
    wanted = set(scope_to_list(scope) or [])
    held = db.session.execute(select(OIDCConsent.scopes).where(
        OIDCConsent.subject == subject, OIDCConsent.client_id == client_id)).scalar()
    return held is not None and wanted <= set(held)


_REMEMBER = text("""
    INSERT INTO oidc_consents (subject, client_id, scopes, granted_at, updated_at)
    VALUES (:subject, :client_id, CAST(:scopes AS jsonb), :now, :now)
    ON CONFLICT (subject, client_id) DO UPDATE SET updated_at = :now,
        scopes = (SELECT jsonb_agg(DISTINCT s ORDER BY s) FROM jsonb_array_elements_text(
                      oidc_consents.scopes || EXCLUDED.scopes) AS s)""")


def remember(subject: str, client_id: str, scope: str | None) -> None:
    """Add ``scope`` to what ``subject`` allowed ``client_id`` (one upsert, race-free)."""
    scopes = sorted(set(scope_to_list(scope) or []))
    db.session.execute(_REMEMBER, {"subject": subject, "client_id": client_id,
                                   "scopes": json.dumps(scopes), "now": clock.now()})


def list_consents(subject: str | None = None, client_id: str | None = None) -> list[Consent]:
    query = select(OIDCConsent, OIDCClient.name).join(
        OIDCClient, OIDCClient.client_id == OIDCConsent.client_id)
    if subject is not None:
        query = query.where(OIDCConsent.subject == subject)
    if client_id is not None:
        query = query.where(OIDCConsent.client_id == client_id)
    rows = db.session.execute(query.order_by(OIDCConsent.subject, OIDCClient.name)).all()
    return [Consent(c.subject, c.client_id, name, tuple(c.scopes), c.granted_at, c.updated_at)
            for c, name in rows]


def revoke(session: Session, subject: str, client_id: str) -> int | None:
    """Forget ``subject``'s consent for ``client_id`` and revoke that client's tokens and
    codes for them. Returns the number of tokens revoked, None when there was no consent."""
    gone = session.execute(delete(OIDCConsent).where(
        OIDCConsent.subject == subject, OIDCConsent.client_id == client_id)).rowcount
    if not gone:
        return None
    revoked = session.execute(update(OIDCToken).where(
        OIDCToken.subject == subject, OIDCToken.client_id == client_id,
        OIDCToken.revoked_at.is_(None)).values(revoked_at=clock.timestamp())).rowcount or 0
    session.execute(update(OIDCAuthorizationCode).where(
        OIDCAuthorizationCode.subject == subject, OIDCAuthorizationCode.client_id == client_id,
        OIDCAuthorizationCode.used_at.is_(None)).values(used_at=clock.now()))
    return revoked


def revoke_all(session: Session, subject: str) -> int:
    """Delete every consent ``subject`` gave, in the caller's transaction (deprovisioning;
    their tokens are revoked by :func:`.tokens.revoke_subject`)."""
    return session.execute(delete(OIDCConsent).where(
        OIDCConsent.subject == subject)).rowcount or 0
