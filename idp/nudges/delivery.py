"""Delivering planned nudges through the bridge's durable outbox (``idp.outbox``), on a
channel of their own (``zulip_nudges``: the nudge bot's rate limit, pauses and breaker never
hold up provisioning's deactivations).

- :func:`release_due` moves nudges that may go now (released run, outside quiet hours) into
  the outbox, with the nudge's idempotency key as the outbox key, in one transaction;
- :func:`deliver` runs the outbox channel at the configured pace, in one worker at a time
  (a PostgreSQL advisory lock); 429 ``Retry-After`` pauses the channel, 5xx and network
  errors retry with backoff, 400/403 are final (the nudge ``failed``, with the cause);
- :func:`send_nudge`, the handler, marks the nudge claimed (committed on its own) before the
  HTTP call; a later attempt that finds the mark asks Zulip whether the earlier send arrived
  (the bot's conversation with that user since the claim) before sending: a worker killed
  mid-send neither loses nor doubles a message.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable

from sqlalchemy import select, text, update

from .. import clock, outbox
from ..audit import record
from ..extensions import db
from .messages import Refused, Transient, ZulipMessages
from .metrics import DIGESTS, OUTCOMES
from .models import FAILED, PENDING, QUEUED, SENT, Nudge
from .settings import NudgeSettings

CHANNEL = "zulip_nudges"
KIND = "nudge.direct"
LOCK_KEY = 0x6E75_6467  # "nudg": one delivering worker at a time
RECONCILE_SLACK = dt.timedelta(seconds=60)


def seconds_until_quiet_end(settings: NudgeSettings, tz: zoneinfo.ZoneInfo,
                            now: dt.datetime) -> float | None:
    """None outside quiet hours; else how long until they end (school time zone)."""
    local = now.astimezone(tz)
    if not settings.in_quiet_hours(local.time()):
        return None
    end = dt.datetime.combine(local.date(), settings.quiet_end, tz)
    if end <= local:
        end += dt.timedelta(days=1)
    return (end - local).total_seconds()


def release_due(settings: NudgeSettings, tz: zoneinfo.ZoneInfo) -> int:
    """Enqueue every pending nudge into the outbox unless it is quiet time; commits."""
    if seconds_until_quiet_end(settings, tz, clock.now()) is not None:
        return 0
    nudges = db.session.scalars(select(Nudge).where(Nudge.status == PENDING)
                                .order_by(Nudge.id).with_for_update(skip_locked=True)).all()
    outbox.enqueue_many(db.session, [outbox.Message(
        channel=CHANNEL, kind=KIND, ordering_key=n.recipient,
        idempotency_key=n.idempotency_key, payload={"nudge_id": n.id},
        priority=outbox.Priority.MESSAGE, changed_at=n.created_at) for n in nudges])
    for nudge in nudges:
        nudge.status = QUEUED
    db.session.commit()
    return len(nudges)


def _claim(nudge_id: int) -> None:
    """Mark the send started, committed apart from the delivery's own transaction."""
    with db.engine.begin() as conn:
        conn.execute(update(Nudge).where(Nudge.id == nudge_id)
                     .values(claimed_at=clock.now(), attempts=Nudge.attempts + 1))


def _sent(nudge: Nudge, message_id: int, note: str) -> str:
    nudge.status, nudge.sent_at, nudge.zulip_message_id = SENT, clock.now(), message_id
    nudge.last_error = None
    record("nudge_sent", "ok", nudge.recipient, rule=nudge.rule, kind=nudge.kind,
           nudge_id=nudge.id, zulip_message_id=message_id, note=note)
    return note


def make_handler(settings: NudgeSettings, sender: ZulipMessages,
                 tz: zoneinfo.ZoneInfo) -> Callable:
    def send_nudge(session, message) -> str:
        """The outbox handler of ``nudge.direct``: one direct message to one person."""
        nudge = session.get(Nudge, message.payload["nudge_id"])
        if nudge is None or nudge.status in (SENT, FAILED):
            return "nothing to do"
        quiet = seconds_until_quiet_end(settings, tz, clock.now())
        if quiet is not None:  # a retry ran into quiet hours: wait for the morning
            raise Transient("quiet hours in the school's time zone", retry_after=quiet)
        try:
            user_id = sender.user_id(nudge.recipient, nudge.email)
            if nudge.claimed_at is not None:  # an earlier send may have arrived
                for message_id, content in sender.sent_since(
                        user_id, nudge.claimed_at - RECONCILE_SLACK):
                    if content == nudge.content:
                        return _sent(nudge, message_id, "found sent after an interruption")
            _claim(nudge.id)
            return _sent(nudge, sender.send(user_id, nudge.content), "ok")
        except Refused as exc:
            nudge.status, nudge.cause, nudge.last_error = FAILED, exc.cause, str(exc)[:1000]
            record("nudge_sent", "refused", nudge.recipient, rule=nudge.rule,
                   kind=nudge.kind, nudge_id=nudge.id, cause=exc.cause)
            raise
        except Transient as exc:
            nudge.last_error = str(exc)[:1000]
            raise

    return send_nudge


def _outcome(message, outcome: str, note: str | None) -> None:
    nudge = db.session.get(Nudge, message.payload["nudge_id"])
    if nudge is None:
        return
    if outcome == "failed" and nudge.status != FAILED:
        # given up after the outbox's retries (or a handler error): say so on the nudge
        nudge.status, nudge.cause = FAILED, nudge.cause or "gave_up"
        nudge.last_error = (note or "")[:1000]
        db.session.commit()
    label = {"delivered": "sent"}.get(outcome, outcome)
    OUTCOMES.labels(nudge.kind, nudge.rule, label).inc()
    if outcome == "delivered" and nudge.kind == "digest":
        DIGESTS.inc()


def policy(settings: NudgeSettings) -> outbox.RetryPolicy:
    return outbox.RetryPolicy(base=settings.retry_base, maximum=3600.0,
                              max_attempts=settings.max_attempts, breaker_failures=5,
                              breaker_cooldown=5.0)


def deliver(settings: NudgeSettings, sender: ZulipMessages, tz: zoneinfo.ZoneInfo, *,
            limit: int | None = None) -> outbox.DeliveryReport | None:
    """Release what may go, then deliver up to ``limit`` (default: the rate per minute)
    nudges; None when another worker is delivering."""
    release_due(settings, tz)
    with db.engine.connect() as lock:
        if not lock.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}).scalar():
            return None
        try:
            return outbox.channel(CHANNEL, policy(settings)).deliver(
                db.session, {KIND: make_handler(settings, sender, tz)},
                limit=settings.rate_per_minute if limit is None else limit,
                on_outcome=_outcome)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
