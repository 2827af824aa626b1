"""Deliver the outbox to Zulip: in ``id`` order per person, retried with exponential backoff,
idempotent in effect.

Only the oldest pending action of each person is eligible, so a person's actions arrive in
the order they were planned; a failed (given-up) action does not block the next one, so a
deactivation is never stuck behind, say, a refused group change. Each delivered action commits
on its own: a worker killed mid-batch redelivers at most the action it was sending, and every
operation is idempotent (``PATCH active=false`` twice deactivates once; a create first looks the
``userName`` up), so nothing is lost and nothing is applied twice in effect.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from .. import audit, clock
from .metrics import ACTIONS, LAG, PENDING
from .models import LedgerAccount, OutboxAction
from .settings import ProvisionSettings
from .targets.base import TargetError, ZulipAccount, ZulipTarget

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    blocked: bool = False  # stopped early: Zulip unreachable or answering 5xx

    @property
    def touched(self) -> int:
        return self.delivered + self.retried + self.failed


def backoff(attempts: int, settings: ProvisionSettings) -> float:
    """Seconds before attempt ``attempts + 1``: base·2^(attempts-1), capped, ±10% jitter."""
    delay = min(settings.retry_max, settings.retry_base * (2 ** min(attempts - 1, 30)))
    return delay * random.uniform(0.9, 1.1)


def ready_actions(session: Session, limit: int) -> list[OutboxAction]:
    """The oldest pending action of each person, if its retry time has come, oldest first."""
    heads = (select(OutboxAction.id)
             .where(OutboxAction.status == "pending")
             .ext(distinct_on(OutboxAction.subject))
             .order_by(OutboxAction.subject, OutboxAction.id)).subquery()
    return list(session.scalars(
        select(OutboxAction).where(OutboxAction.id.in_(select(heads.c.id)),
                                   OutboxAction.next_attempt_at <= clock.now())
        .order_by(OutboxAction.id).limit(limit)))


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(OutboxAction)
                          .where(OutboxAction.status == "pending")) or 0


class Outcome(Exception):
    """Finished without a Zulip change worth retrying (e.g. the account no longer exists)."""


def _resolve_account(target: ZulipTarget, ledger: LedgerAccount | None,
                     action: OutboxAction) -> str:
    if ledger is not None and ledger.zulip_user_id:
        return ledger.zulip_user_id
    emails = [e for e in (action.payload.get("from"), ledger.email if ledger else None) if e]
    for email in emails:
        account = target.find_by_email(email)
        if account is not None and account.manageable:
            if ledger is not None:
                ledger.zulip_user_id = account.id
            return account.id
    if action.action == "deactivate":
        raise Outcome("no Zulip account: nothing to deactivate")
    raise TargetError(f"{action.action}: no Zulip account for {action.subject}", transient=False)


def _create(session: Session, target: ZulipTarget, ledger: LedgerAccount | None,
            action: OutboxAction) -> str:
    """Create, or adopt the account that already has this ``userName`` (a retried create, or a
    person who signed in through SAML first). Owners and bots are never adopted, nor an account
    the ledger already gives to another person (two LMS people sharing one email)."""
    payload = action.payload
    account: ZulipAccount | None = target.find_by_email(payload["email"])
    if account is not None and not account.manageable:
        raise TargetError(f"create: {payload['email']} belongs to a Zulip owner or bot; the "
                          f"bridge does not manage it", transient=False)
    if account is not None:
        holder = session.scalar(select(LedgerAccount.subject).where(
            LedgerAccount.zulip_user_id == account.id, LedgerAccount.subject != action.subject))
        if holder is not None:
            raise TargetError(f"create: {payload['email']} is already the Zulip account of "
                              f"{holder}: two LMS people share this email", transient=False)
    if account is None:
        account = target.create(payload["email"], payload["full_name"], payload["role"])
        note = "created"
    else:
        if not account.active:
            target.set_active(account.id, True)
        if account.full_name != payload["full_name"]:
            target.set_name(account.id, payload["full_name"])
        if account.role and account.role != payload["role"]:
            target.set_role(account.id, payload["role"])
        note = "adopted existing account"
        audit.record("provision.adopt", "ok", subject=action.subject, zulip_user_id=account.id,
                     match="email")
    if payload.get("groups"):
        target.set_groups(account.id, list(payload["groups"]), [])
    if ledger is not None:
        ledger.zulip_user_id = account.id
    return note


def perform(session: Session, target: ZulipTarget, ledger: LedgerAccount | None,
            action: OutboxAction) -> str:
    """Send one action; returns a note for the log. Raises TargetError or Outcome."""
    if action.action == "create":
        return _create(session, target, ledger, action)
    user_id = _resolve_account(target, ledger, action)
    payload = action.payload
    if action.action in ("deactivate", "reactivate"):
        try:
            target.set_active(user_id, action.action == "reactivate")
        except TargetError as exc:
            if exc.status == 404 and action.action == "deactivate":
                raise Outcome("the Zulip account no longer exists") from exc
            raise
    elif action.action == "rename":
        target.rename(user_id, payload["email"])
    elif action.action == "name":
        target.set_name(user_id, payload["full_name"])
    elif action.action == "role":
        target.set_role(user_id, payload["role"])
    elif action.action == "groups":
        missing = target.set_groups(user_id, list(payload["add"]), list(payload["remove"]))
        if missing:
            return "groups Zulip does not have were skipped: " + ", ".join(missing)
    return "ok"


def deliver_batch(session: Session, target: ZulipTarget, settings: ProvisionSettings,
                  *, limit: int | None = None) -> DeliveryReport:
    """Deliver up to ``limit`` ready actions (default PROVISION_BATCH), one commit each."""
    report = DeliveryReport()
    for action in ready_actions(session, limit or settings.batch_size):
        ledger = session.get(LedgerAccount, action.subject)
        now = clock.now()
        action.attempts += 1
        try:
            note = perform(session, target, ledger, action)
        except Outcome as outcome:
            note = str(outcome)
        except TargetError as exc:
            action.last_error = str(exc)[:1000]
            if exc.transient and action.attempts < settings.max_attempts:
                action.next_attempt_at = now + dt.timedelta(seconds=backoff(action.attempts,
                                                                            settings))
                session.commit()
                ACTIONS.labels(action.action, "retried").inc()
                report.retried += 1
                report.blocked = True
                log.warning("provisioning %s of %s will be retried (attempt %s): %s",
                            action.action, action.subject, action.attempts, exc)
                break  # Zulip is down or struggling: do not hammer it with the rest
            action.status = "failed"
            audit.record("provision.deliver", "failed", subject=action.subject,
                         action=action.action, error=str(exc)[:300])
            session.commit()
            ACTIONS.labels(action.action, "failed").inc()
            report.failed += 1
            log.error("provisioning %s of %s failed: %s", action.action, action.subject, exc)
            continue
        now = clock.now()
        action.status, action.delivered_at, action.last_error = "done", now, None
        if note != "ok":
            action.last_error = note[:1000]
        if ledger is not None:
            ledger.last_synced_at = now
        session.commit()
        ACTIONS.labels(action.action, "delivered").inc()
        LAG.labels(action.action).observe(max(0.0, (now - action.changed_at).total_seconds()))
        report.delivered += 1
    PENDING.set(pending_count(session))
    return report
