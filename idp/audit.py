"""The audit log: one row per security-relevant event (logins, logouts, launches, API reads).

Callers pass only non-secret facts; :func:`record` adds the row to the current transaction so the
event commits (or rolls back) with the change it describes."""

from __future__ import annotations

from typing import Any

from flask import has_request_context

from . import clock
from .extensions import db
from .models import AuditEvent
from .net import client_ip


def audit_values(event: str, outcome: str, subject: str | None = None,
                 **detail: Any) -> dict[str, Any]:
    """The column values of one audit row (for writers that insert it in a statement of
    their own, e.g. with the change it describes in one round trip)."""
    return {"at": clock.now(), "event": event, "outcome": outcome, "subject": subject,
            "client_ip": client_ip() if has_request_context() else None,
            "detail": {k: v for k, v in detail.items() if v is not None}}


def record(event: str, outcome: str, subject: str | None = None, **detail: Any) -> AuditEvent:
    """Add the row to the current transaction (the caller commits)."""
    row = AuditEvent(**audit_values(event, outcome, subject, **detail))
    db.session.add(row)
    return row
