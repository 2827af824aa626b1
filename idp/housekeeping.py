"""Housekeeping of the bridge database, one entry point: ``flask --app wsgi maintenance
prune``, run hourly by the shipped timer (deploy/systemd/lms-zulip-bridge-housekeeping.timer).

The foundation prunes its own tables (sessions over for a week, throttle counters, spent
launch-token ids, audit rows past ``IDP_AUDIT_RETENTION_DAYS``); feature packages add their
pruners with :func:`add_pruner` in ``init_app`` (SAML records, OIDC codes and tokens). Each
pruner deletes, the caller commits once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy import delete, or_

from . import clock
from .config import env_int
from .extensions import db
from .models import AuditEvent, LoginSession

Pruner = Callable[[], dict[str, int]]
SESSION_RETENTION = dt.timedelta(days=7)
"""How long an ended session's row is kept (its SAML login rows go with it, by cascade)."""


def add_pruner(app: Flask, pruner: Pruner) -> None:
    app.extensions.setdefault("pruners", []).append(pruner)


def audit_retention_days(app: Flask) -> int:
    """``IDP_AUDIT_RETENTION_DAYS`` (default 365; 0 keeps audit rows for ever)."""
    return env_int(app.config.get("IDP_ENV") or {}, "IDP_AUDIT_RETENTION_DAYS", 365,
                   minimum=0, maximum=36500)


def prune_foundation() -> dict[str, int]:
    from .login.launch import prune_used_tokens
    from .login.throttle import prune as prune_throttle

    now = clock.now()
    horizon = now - SESSION_RETENTION
    counts = {"login sessions": db.session.execute(delete(LoginSession).where(or_(
        LoginSession.expires_at < horizon, LoginSession.revoked_at < horizon))).rowcount or 0,
        "throttle counters": prune_throttle(current_app.config["IDP"]),
        "launch-token ids": prune_used_tokens()}
    days = audit_retention_days(current_app)
    counts["audit rows"] = db.session.execute(delete(AuditEvent).where(
        AuditEvent.at < now - dt.timedelta(days=days))).rowcount or 0 if days else 0
    return counts


def prune_all() -> dict[str, int]:
    """Run every pruner in one transaction (committed here)."""
    counts = prune_foundation()
    for pruner in current_app.extensions.get("pruners", ()):
        counts.update(pruner())
    db.session.commit()
    return counts
