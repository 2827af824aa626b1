"""The ledger: which Zulip accounts the bridge manages, and the state it committed them to.

Only accounts the bridge created or adopted (exact email match, recorded in the audit log) are
here; bots, owners and strangers never are, so nothing else is ever touched.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from .models import LedgerAccount
from .plan import LedgerEntry, PlannedAction


def load_ledger(session: Session, subjects: list[str] | None = None) -> dict[str, LedgerEntry]:
    """subject → LedgerEntry, read as plain tuples (100k rows in well under a second)."""
    query = select(LedgerAccount.subject, LedgerAccount.email, LedgerAccount.full_name,
                   LedgerAccount.role, LedgerAccount.groups, LedgerAccount.active)
    if subjects is not None:
        query = query.where(LedgerAccount.subject.in_(subjects))
    result = session.execute(query.execution_options(yield_per=10_000))
    return {row[0]: LedgerEntry(row[0], row[1], row[2], row[3], tuple(row[4] or ()), row[5])
            for row in result}


def commit_to_ledger(session: Session, action: PlannedAction) -> None:
    """Record in the ledger the state ``action`` will give the account (same transaction as
    its outbox row, so the next diff does not plan it again)."""
    row = session.get(LedgerAccount, action.subject)
    payload = action.payload
    if action.action == "create":
        if row is None:
            session.add(LedgerAccount(
                subject=action.subject, zulip_user_id=None, email=payload["email"],
                full_name=payload["full_name"], role=payload["role"],
                groups=list(payload["groups"]), active=True, origin="created",
                adopted_at=clock.now()))
        return
    if row is None:
        return
    if action.action == "deactivate":
        row.active = False
    elif action.action == "reactivate":
        row.active = True
    elif action.action == "rename":
        row.email = payload["email"]
    elif action.action == "name":
        row.full_name = payload["full_name"]
    elif action.action == "role":
        row.role = payload["role"]
    elif action.action == "groups":
        row.groups = list(payload["groups"])
