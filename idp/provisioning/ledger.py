"""The ledger: which Zulip accounts the bridge manages, and the state it committed them to.

Only accounts the bridge created or adopted (exact email match, recorded in the audit log) are
here; bots, owners and strangers never are, so nothing else is ever touched.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import actions
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
    its outbox message, so the next diff does not plan it again)."""
    actions.commit_to_ledger(session, action.subject, action.action, action.payload)
