"""Adoption: take existing Zulip accounts into the ledger by exact email match.

A Zulip account is adopted only when its email equals (case-insensitively, as Zulip compares
emails) the email of an LMS person the ledger does not hold yet, and it is neither a bot nor an
owner. Every adoption is recorded in the audit log. Accounts that match nobody are strangers:
the bridge never touches them.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, clock
from ..lms.directory import Directory
from .models import LedgerAccount
from .targets.base import ZulipTarget

log = logging.getLogger(__name__)


def adopt_existing(session: Session, target: ZulipTarget, directory: Directory) -> int:
    """Adopt matching accounts (commits); returns how many were adopted. Raises TargetError or
    LMSUnavailable before writing anything if either side cannot be read."""
    managed_subjects = set(session.scalars(select(LedgerAccount.subject)))
    managed_ids = {i for i in session.scalars(select(LedgerAccount.zulip_user_id)) if i}
    by_email: dict[str, str] = {}
    for person in directory.iter_people():
        if person.subject not in managed_subjects and person.email:
            by_email.setdefault(person.email.lower(), person.subject)
    accounts = [a for a in target.iter_accounts()
                if a.manageable and a.id not in managed_ids and a.email.lower() in by_email]
    now = clock.now()
    for account in accounts:
        subject = by_email.pop(account.email.lower(), None)
        if subject is None:
            continue  # two Zulip accounts with one email: adopt the first only
        session.add(LedgerAccount(
            subject=subject, zulip_user_id=account.id, email=account.email,
            full_name=account.full_name, role=account.role or "member", groups=[],
            active=account.active, origin="adopted", adopted_at=now, last_synced_at=now))
        audit.record("provision.adopt", "ok", subject=subject, zulip_user_id=account.id,
                     match="email")
    session.commit()
    if accounts:
        log.info("adopted %d existing Zulip accounts by exact email match", len(accounts))
    return len(accounts)
