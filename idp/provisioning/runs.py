"""Plan runs: write a plan, its ledger changes and its outbox rows in one transaction, hold it
behind the safety guard, approve a held run, deprovision one person at once (login path).

A deactivation ends what the person holds in the bridge (:func:`idp.revocation.revoke_person`:
sessions, OIDC tokens, SAML logins, cached answers in every process) in the same transaction
that records it; :data:`idp.events.person_deprovisioned` is still sent after the commit for
in-process listeners.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import audit, clock, outbox, revocation
from ..events import person_changed, person_deprovisioned
from ..outbox import OutboxMessage
from .actions import ACTIONS as VOCABULARY
from .actions import CHANNEL, Kind
from .ledger import commit_to_ledger
from .metrics import ACTIONS, HELD_RUNS, RUNS
from .models import LedgerAccount, ProvisionRun
from .plan import Plan, PlannedAction, guard
from .settings import ProvisionSettings

log = logging.getLogger(__name__)


class ApprovalRefused(Exception):
    """``provision approve`` named a run that cannot be approved; the message says why."""


def _message(run_id: int, index: int, action: PlannedAction,
             changed_at: dt.datetime | None) -> outbox.Message:
    """The outbox message of ``action``, the ``index``-th of run ``run_id`` (its idempotency
    key: a run's actions are enqueued once, whatever retries the caller makes)."""
    kind = Kind(action.action)
    return outbox.Message(channel=CHANNEL, kind=kind.outbox_kind, ordering_key=action.subject,
                          idempotency_key=f"provision:{run_id}:{index}",
                          payload=dict(action.payload), priority=VOCABULARY[kind].priority,
                          changed_at=changed_at, batch_id=run_id)


def _held_actions(session: Session, run_id: int) -> list[PlannedAction]:
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.batch_id == run_id,
                                                       OutboxMessage.channel == CHANNEL)
                           .order_by(OutboxMessage.id))
    return [PlannedAction(r.subject, Kind(r.action), dict(r.payload)) for r in rows]


def record_plan(session: Session, plan: Plan, settings: ProvisionSettings, *, trigger: str,
                changed_at: dict[str, dt.datetime] | None = None,
                recent_deactivations: int = 0) -> ProvisionRun | None:
    """Store ``plan`` (commits). Returns the run, or None when the plan was empty.

    Only a full snapshot supersedes a held run: it has seen everybody, so if it no longer
    plans the held deactivations, the LMS has recovered and the held run must not be approved.
    """
    now = clock.now()
    changed_at = changed_at or {}
    if plan.refused:
        run = _repeat_or_add(session, "refused", plan.refused, trigger, now,
                             people_seen=plan.people_seen, managed=plan.managed)
        session.commit()
        RUNS.labels("refused").inc()
        log.error("provisioning run refused: %s", plan.refused)
        return run
    if not plan.actions:
        if plan.full_snapshot:
            _supersede_held(session, now)
        _touch_empty_run(session, plan, trigger, now)
        session.commit()
        refresh_held_gauge(session)
        return None
    held_reason = guard(plan, max_percent=settings.guard_percent, max_count=settings.guard_max,
                        recent=recent_deactivations)
    if held_reason:
        return _hold(session, plan, trigger, held_reason, now)
    if plan.full_snapshot:
        _supersede_held(session, now)
    run = ProvisionRun(started_at=now, trigger=trigger, status="applied",
                       people_seen=plan.people_seen, managed=plan.managed,
                       deactivations=plan.deactivations, counts=plan.counts())
    session.add(run)
    session.flush()
    _enqueue(session, run, plan.actions, now, changed_at)
    session.commit()
    RUNS.labels("applied").inc()
    refresh_held_gauge(session)
    _after_commit(plan.actions)
    return run


def _repeat_or_add(session: Session, status: str, reason: str, trigger: str, now: dt.datetime,
                   **fields) -> ProvisionRun:
    """A refused or failed run that repeats the latest one (same status and reason, e.g. the
    LMS down for an hour) updates it, counting repeats, instead of adding a row per interval."""
    last = session.scalars(select(ProvisionRun).order_by(ProvisionRun.id.desc()).limit(1)).first()
    if last is not None and last.status == status and last.reason == reason:
        last.started_at = now
        last.counts = {"repeats": int((last.counts or {}).get("repeats", 1)) + 1}
        return last
    run = ProvisionRun(started_at=now, trigger=trigger, status=status, deactivations=0,
                       counts={}, reason=reason, **{"people_seen": 0, "managed": 0, **fields})
    session.add(run)
    audit.record("provision.run", status, reason=reason[:300])
    return run


def record_plan_only(session: Session, plan: Plan, why: str = "no Zulip configured") -> None:
    """Plan-only mode (no target, ``why``): keep one "plan-only" run up to date with what
    would be done, for the status page and ``provision status`` (commits)."""
    now = clock.now()
    last = session.scalars(select(ProvisionRun).order_by(ProvisionRun.id.desc()).limit(1)).first()
    if last is None or last.status != "plan-only":
        last = ProvisionRun(started_at=now, trigger="poll", status="plan-only", deactivations=0,
                            counts={}, people_seen=0, managed=0)
        session.add(last)
    last.started_at, last.people_seen, last.managed = now, plan.people_seen, plan.managed
    last.deactivations, last.counts = plan.deactivations, plan.counts()
    last.reason = plan.refused or f"plan-only: nothing is sent ({why})"
    session.commit()


def _touch_empty_run(session: Session, plan: Plan, trigger: str, now: dt.datetime) -> None:
    """A poll that found nothing to do updates the latest "empty" run instead of adding one
    row every interval (the status page shows when the LMS was last read)."""
    last = session.scalars(select(ProvisionRun).order_by(ProvisionRun.id.desc()).limit(1)).first()
    if last is not None and last.status == "empty":
        last.started_at, last.trigger = now, trigger
        last.people_seen, last.managed = plan.people_seen, plan.managed
    else:
        session.add(ProvisionRun(started_at=now, trigger=trigger, status="empty",
                                 people_seen=plan.people_seen, managed=plan.managed,
                                 deactivations=0, counts={}))
    RUNS.labels("empty").inc()


def _enqueue(session: Session, run: ProvisionRun, actions: list[PlannedAction],
             now: dt.datetime, changed_at: dict[str, dt.datetime]) -> None:
    """Outbox messages, ledger changes and local revocation of ``actions``, all in the
    caller's transaction. A deactivation supersedes the person's create/reactivate not yet
    sent (they must not undo it) and ends what the person holds in the bridge at once."""
    plain = []
    _revoke_and_announce(session, run, actions)
    for index, action in enumerate(actions):
        message = _message(run.id, index, action, changed_at.get(action.subject, now))
        supersedes = VOCABULARY[Kind(action.action)].supersedes
        if supersedes:
            outbox.enqueue(session, message, supersedes=[k.outbox_kind for k in supersedes])
        else:
            plain.append(message)
        commit_to_ledger(session, action)
        ACTIONS.labels(action.action, "planned").inc()
    outbox.enqueue_many(session, plain)


def _revoke_and_announce(session: Session, run: ProvisionRun,
                         actions: list[PlannedAction]) -> None:
    """Revoke the people deactivated; tell every process the others changed."""
    announced: set[str] = set()
    for action in actions:
        if action.action == Kind.DEACTIVATE:
            revocation.revoke_person(session, action.subject,
                                     f"deprovisioned (run {run.id}, {run.trigger}): "
                                     f"{action.payload.get('reason', '')}")
            announced.add(action.subject)
    for action in actions:
        if action.subject not in announced:
            revocation.announce_change(session, action.subject)
            announced.add(action.subject)


def _after_commit(actions: list[PlannedAction]) -> None:
    """Tell this process's listeners (the revocation itself committed with the plan; other
    processes hear it through NOTIFY)."""
    changed = set()
    for action in actions:
        if action.action == Kind.DEACTIVATE:
            person_deprovisioned.send(__name__, subject=action.subject)
        elif action.subject not in changed:
            changed.add(action.subject)
            person_changed.send(__name__, subject=action.subject)


def recent_targeted_deactivations(session: Session, seconds: float) -> int:
    """Deactivations applied by NOTIFY runs in the last ``seconds`` (the guard's window)."""
    since = clock.now() - dt.timedelta(seconds=seconds)
    return session.scalar(select(func.coalesce(func.sum(ProvisionRun.deactivations), 0))
                          .where(ProvisionRun.trigger == "notify",
                                 ProvisionRun.status == "applied",
                                 ProvisionRun.started_at >= since)) or 0


def _hold(session: Session, plan: Plan, trigger: str, reason: str,
          now: dt.datetime) -> ProvisionRun:
    current = session.scalars(select(ProvisionRun).where(ProvisionRun.status == "held")
                              .order_by(ProvisionRun.id.desc())).first()
    if current is not None and sorted(a.key() for a in _held_actions(session, current.id)) \
            == sorted(a.key() for a in plan.actions):
        session.commit()
        return current  # the same situation: keep the run the operator may be looking at
    if plan.full_snapshot:
        _supersede_held(session, now)
    run = ProvisionRun(started_at=now, trigger=trigger, status="held",
                       people_seen=plan.people_seen, managed=plan.managed,
                       deactivations=plan.deactivations, counts=plan.counts(), reason=reason)
    session.add(run)
    session.flush()
    outbox.enqueue_many(session, [_message(run.id, index, action, now)
                                  for index, action in enumerate(plan.actions)],
                        status=outbox.HELD)
    for action in plan.actions:
        ACTIONS.labels(action.action, "held").inc()
    audit.record("provision.run", "held", run_id=run.id, reason=reason,
                 deactivations=plan.deactivations)
    session.commit()
    RUNS.labels("held").inc()
    refresh_held_gauge(session)
    log.warning("provisioning run %s held: %s; approve with `flask --app wsgi provision "
                "approve %s`", run.id, reason, run.id)
    return run


def refresh_held_gauge(session: Session) -> None:
    """``idp_provision_held_runs`` from the database (right after a restart too)."""
    HELD_RUNS.set(session.scalar(select(func.count()).select_from(ProvisionRun)
                                 .where(ProvisionRun.status == "held")) or 0)


def _supersede_held(session: Session, now: dt.datetime) -> None:
    held = session.scalars(select(ProvisionRun).where(ProvisionRun.status == "held")).all()
    for run in held:
        run.status, run.decided_at, run.decided_by = "superseded", now, "a later run"
        outbox.set_batch_status(session, run.id, old=outbox.HELD, new=outbox.CANCELLED)


def approve(session: Session, run_id: int, *, by: str) -> ProvisionRun:
    """Release a held run: its actions become pending and the ledger takes their state."""
    run = session.get(ProvisionRun, run_id, with_for_update=True)
    if run is None:
        raise ApprovalRefused(f"no provisioning run {run_id}")
    if run.status != "held":
        raise ApprovalRefused(f"run {run_id} is {run.status}, not held: only a held run can be "
                              f"approved (see `flask --app wsgi provision status`)")
    now = clock.now()
    actions = _held_actions(session, run.id)
    for action in actions:
        superseded = VOCABULARY[Kind(action.action)].supersedes
        if superseded:
            outbox.cancel_pending(session, CHANNEL, action.subject,
                                  [k.outbox_kind for k in superseded])
    outbox.set_batch_status(session, run.id, old=outbox.HELD, new=outbox.PENDING, now=now)
    _revoke_and_announce(session, run, actions)
    for action in actions:
        commit_to_ledger(session, action)
        ACTIONS.labels(action.action, "planned").inc()
    run.status, run.decided_at, run.decided_by = "approved", now, by[:200]
    audit.record("provision.approve", "ok", run_id=run.id, by=by[:200],
                 deactivations=run.deactivations)
    session.commit()
    refresh_held_gauge(session)
    _after_commit(actions)
    return run


def record_failure(session: Session, trigger: str, reason: str) -> None:
    """The LMS could not be read: a failed run, never a plan (commits)."""
    session.rollback()
    _repeat_or_add(session, "failed", reason[:500], trigger, clock.now())
    session.commit()
    RUNS.labels("failed").inc()


def deprovision_now(session: Session, subject: str, *, lms_confirms_gone: bool,
                    trigger: str = "login") -> bool:
    """Deactivate one managed person at once (the LMS has just said they are inactive).
    Returns True when an action was queued. Local revocation is signalled either way."""
    queued = False
    row = session.get(LedgerAccount, subject, with_for_update=True)
    revoked = False
    if lms_confirms_gone and row is not None and row.active:
        now = clock.now()
        action = PlannedAction(subject, Kind.DEACTIVATE, {"reason": "inactive"})
        managed = session.scalar(select(func.count()).select_from(LedgerAccount)
                                 .where(LedgerAccount.active.is_(True))) or 0
        run = ProvisionRun(started_at=now, trigger=trigger, status="applied", people_seen=1,
                           managed=managed, deactivations=1, counts={"deactivate": 1})
        session.add(run)
        session.flush()
        _enqueue(session, run, [action], now, {})
        audit.record("provision.deprovision", "queued", subject=subject, trigger=trigger)
        queued = revoked = True
        RUNS.labels("applied").inc()
    if not revoked:
        revocation.revoke_person(session, subject, f"{trigger}: inactive in the LMS")
    session.commit()
    person_deprovisioned.send(__name__, subject=subject)
    return queued


def retry_failed(session: Session, action_id: int) -> OutboxMessage:
    """Queue a failed action again (after its cause was fixed in Zulip). Only the person's
    latest action can be retried, so an old change never overtakes a newer one."""
    action = session.get(OutboxMessage, action_id, with_for_update=True)
    if action is None or action.channel != CHANNEL or not action.kind.startswith("provision."):
        raise ApprovalRefused(f"no outbox action {action_id}")
    if action.status not in (outbox.FAILED, outbox.UNSUPPORTED):
        raise ApprovalRefused(f"action {action_id} is {action.status}, not failed")
    newer = session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.channel == CHANNEL, OutboxMessage.ordering_key == action.ordering_key,
        OutboxMessage.id > action.id, OutboxMessage.kind == action.kind,
        OutboxMessage.status != outbox.CANCELLED))
    if newer:
        raise ApprovalRefused(f"action {action_id} has been overtaken by a newer "
                              f"{action.action} of {action.subject}: nothing to retry")
    action.status, action.attempts, action.next_attempt_at = (outbox.PENDING, 0, clock.now())
    audit.record("provision.retry", "ok", subject=action.subject, action_id=action.id)
    session.commit()
    return action
