"""Delivering planned nudges to Zulip, one at a time, at a bounded pace.

Until the generic outbox (``idp.outbox``, issue 11) is merged, the ``nudges`` table is this
package's outbox, written the way provisioning's is (claim, send, record, each committed):

- a nudge is claimed (``pending`` → ``sending``, committed) before the HTTP call, so a worker
  killed mid-send leaves a trace; :func:`reconcile_interrupted` then asks Zulip whether the
  message arrived (the bot's conversation with that user since the claim) and marks it sent,
  or sends it again: none lost, none doubled;
- 429 honours ``Retry-After`` and pauses the whole run; 5xx and network errors retry with
  backoff ``base·2^n`` up to ``max_attempts``; 400/403 are final (``failed``, with the cause);
- nothing is sent during quiet hours (school time zone); held runs wait for approval.

Switching to ``idp.outbox``: ``send_nudge`` is already a handler's shape (raises Transient or
Refused), so the switch is ``outbox.enqueue`` in ``plan.record_run`` and
``outbox.register_handler("nudge.direct", ...)`` here.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass, field

from sqlalchemy import select, update

from .. import clock
from ..audit import record
from ..extensions import db
from .messages import Refused, Transient, ZulipMessages
from .metrics import DIGESTS, OUTCOMES
from .models import FAILED, PENDING, SENDING, SENT, Nudge
from .settings import NudgeSettings

log = logging.getLogger(__name__)
INTERRUPTED_AFTER = dt.timedelta(minutes=2)  # a send claimed longer ago was interrupted


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    reconciled: int = 0
    quiet: bool = False
    paused_for: float | None = None
    errors: list[str] = field(default_factory=list)


def _claim(now: dt.datetime) -> Nudge | None:
    """Take the next due nudge (digests after student nudges, oldest first) for this worker."""
    due = (select(Nudge.id).where(Nudge.status == PENDING, Nudge.next_attempt_at <= now)
           .order_by(Nudge.id).limit(1).with_for_update(skip_locked=True).scalar_subquery())
    nudge_id = db.session.scalar(update(Nudge).where(Nudge.id == due)
                                 .values(status=SENDING, claimed_at=now,
                                         attempts=Nudge.attempts + 1).returning(Nudge.id))
    db.session.commit()
    return db.session.get(Nudge, nudge_id) if nudge_id is not None else None


def send_nudge(sender: ZulipMessages, nudge: Nudge) -> int:
    """Send one nudge; the Zulip message id. Raises Transient or Refused."""
    return sender.send(sender.user_id(nudge.recipient, nudge.email), nudge.content)


def _sent(nudge: Nudge, message_id: int, now: dt.datetime) -> None:
    nudge.status, nudge.sent_at, nudge.zulip_message_id = SENT, now, message_id
    nudge.last_error = None
    record("nudge_sent", "ok", nudge.recipient, rule=nudge.rule, kind=nudge.kind,
           nudge_id=nudge.id, zulip_message_id=message_id)
    OUTCOMES.labels(nudge.kind, nudge.rule, "sent").inc()
    if nudge.kind == "digest":
        DIGESTS.inc()


def reconcile_interrupted(settings: NudgeSettings, sender: ZulipMessages) -> int:
    """Nudges left ``sending`` by a worker that died: sent if Zulip has them, else due again."""
    now = clock.now()
    stale = db.session.scalars(select(Nudge).where(
        Nudge.status == SENDING, Nudge.claimed_at < now - INTERRUPTED_AFTER)
        .with_for_update(skip_locked=True)).all()
    done = 0
    for nudge in stale:
        user_id = sender.user_id(nudge.recipient, nudge.email)
        match = [mid for mid, content in
                 sender.sent_since(user_id, nudge.claimed_at - dt.timedelta(seconds=60))
                 if content == nudge.content]
        if match:
            _sent(nudge, match[0], now)
        else:
            nudge.status, nudge.next_attempt_at = PENDING, now
        done += 1
    db.session.commit()
    return done


def deliver_due(settings: NudgeSettings, sender: ZulipMessages, tz: zoneinfo.ZoneInfo, *,
                limit: int | None = None) -> DeliveryReport:
    """Send up to ``limit`` (default: the rate per minute) due nudges, unless quiet hours."""
    report = DeliveryReport()
    now = clock.now()
    if settings.in_quiet_hours(now.astimezone(tz).time()):
        report.quiet = True
        return report
    try:
        report.reconciled = reconcile_interrupted(settings, sender)
    except (Transient, Refused) as exc:
        db.session.rollback()
        report.errors.append(f"reconcile: {exc}")
        return report
    for _ in range(limit or settings.rate_per_minute):
        nudge = _claim(clock.now())
        if nudge is None:
            break
        try:
            message_id = send_nudge(sender, nudge)
        except Refused as exc:
            nudge.status, nudge.cause, nudge.last_error = FAILED, exc.cause, str(exc)
            record("nudge_sent", "refused", nudge.recipient, rule=nudge.rule,
                   kind=nudge.kind, nudge_id=nudge.id, cause=exc.cause)
            OUTCOMES.labels(nudge.kind, nudge.rule, "failed").inc()
            report.failed += 1
            db.session.commit()
            continue
        except Transient as exc:
            nudge.last_error = str(exc)
            if nudge.attempts >= settings.max_attempts:
                nudge.status, nudge.cause = FAILED, "gave_up"
                OUTCOMES.labels(nudge.kind, nudge.rule, "failed").inc()
                report.failed += 1
            else:
                wait = settings.retry_base * 2 ** (nudge.attempts - 1)
                if exc.retry_after is not None:
                    wait = max(wait, exc.retry_after)
                nudge.status = PENDING
                nudge.next_attempt_at = clock.now() + dt.timedelta(seconds=wait)
                OUTCOMES.labels(nudge.kind, nudge.rule, "retry").inc()
                report.retried += 1
            db.session.commit()
            report.errors.append(str(exc))
            if exc.retry_after is not None:
                # Zulip asked us to wait: pause everything, not just this message
                report.paused_for = exc.retry_after
                db.session.execute(update(Nudge).where(
                    Nudge.status == PENDING, Nudge.next_attempt_at < nudge.next_attempt_at)
                    .values(next_attempt_at=nudge.next_attempt_at))
                db.session.commit()
                break
            continue
        _sent(nudge, message_id, clock.now())
        report.sent += 1
        db.session.commit()
    return report
