"""Housekeeping of the SAML tables: expired pending requests and logout chains, logins whose
bridge session is long over, and ending a deprovisioned person's SAML logins."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, or_, update

from .. import clock
from ..extensions import db
from .models import LogoutChain, PendingAuthnRequest, SamlLogin, SeenLogoutRequest

LOGIN_RETENTION = dt.timedelta(days=7)
"""How long a SAML login row outlives its session's lifetime (audit of recent logins)."""


def prune(session_lifetime: int) -> dict[str, int]:
    """Delete what can no longer be used; the caller commits."""
    now = clock.now()
    counts = {}
    counts["pending requests"] = db.session.execute(delete(PendingAuthnRequest).where(
        PendingAuthnRequest.expires_at < now)).rowcount or 0
    counts["seen logout requests"] = db.session.execute(delete(SeenLogoutRequest).where(
        SeenLogoutRequest.expires_at < now)).rowcount or 0
    counts["logout chains"] = db.session.execute(delete(LogoutChain).where(
        LogoutChain.expires_at < now)).rowcount or 0
    horizon = now - LOGIN_RETENTION
    counts["SAML logins"] = db.session.execute(delete(SamlLogin).where(or_(
        SamlLogin.ended_at < horizon,
        SamlLogin.created_at < horizon - dt.timedelta(seconds=session_lifetime)))).rowcount or 0
    return counts


def end_logins(session, subject: str) -> int:
    """``idp.revocation``: the person's SAML logins are over (no SLO is owed for them;
    provisioning deactivates the Zulip account itself). In the caller's transaction."""
    return session.execute(update(SamlLogin).where(
        SamlLogin.subject == subject, SamlLogin.ended_at.is_(None))
        .values(ended_at=clock.now())).rowcount or 0
