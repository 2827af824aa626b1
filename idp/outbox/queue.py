"""Writing to and reading from the outbox table (no delivery here).

Every write joins the caller's transaction (the transactional-outbox pattern): the business
change and its messages commit together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, aliased

from .. import clock
from .models import OutboxMessage

PENDING, HELD, DONE, FAILED, UNSUPPORTED, CANCELLED = (
    "pending", "held", "done", "failed", "unsupported", "cancelled")


class Priority(IntEnum):
    """Lower goes first. A security action never waits behind a cosmetic one (DESIGN.md)."""

    REVOCATION = 0  # deactivations: before everything, of anyone
    ACCOUNT = 10  # create, reactivate
    PROFILE = 50  # rename, name, role, groups
    MESSAGE = 100  # nudges, digests


@dataclass(frozen=True)
class Message:
    """A message to enqueue. ``idempotency_key`` is unique over the whole table: enqueueing the
    same key twice stores it once."""

    channel: str
    kind: str
    ordering_key: str
    idempotency_key: str
    payload: dict = field(default_factory=dict)
    priority: int = Priority.PROFILE
    changed_at: dt.datetime | None = None
    batch_id: int | None = None


def _row(message: Message, status: str, now: dt.datetime) -> dict:
    return {"channel": message.channel, "kind": message.kind,
            "ordering_key": message.ordering_key, "priority": int(message.priority),
            "idempotency_key": message.idempotency_key, "batch_id": message.batch_id,
            "payload": message.payload, "status": status, "attempts": 0,
            "next_attempt_at": now, "created_at": now,
            "changed_at": message.changed_at or now}


def enqueue(session: Session, message: Message, *, status: str = PENDING,
            supersedes: Iterable[str] = ()) -> int | None:
    """Add ``message`` in the caller's transaction; returns its id, or None when a message with
    the same idempotency key already exists (nothing is written). ``supersedes``: kinds whose
    pending messages with the same channel and ordering key are cancelled first (e.g. a
    deactivation cancels a reactivation that has not gone out)."""
    kinds = list(supersedes)
    if kinds and status == PENDING:
        cancel_pending(session, message.channel, message.ordering_key, kinds)
    return session.scalar(insert(OutboxMessage).values(**_row(message, status, clock.now()))
                          .on_conflict_do_nothing(index_elements=["idempotency_key"])
                          .returning(OutboxMessage.id))


def enqueue_many(session: Session, messages: list[Message], *, status: str = PENDING) -> int:
    """Add many messages in one statement (no ``supersedes``); returns how many were new."""
    if not messages:
        return 0
    now = clock.now()
    inserted = 0
    for start in range(0, len(messages), 1000):
        chunk = [_row(m, status, now) for m in messages[start:start + 1000]]
        inserted += len(session.scalars(
            insert(OutboxMessage).values(chunk)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
            .returning(OutboxMessage.id)).all())
    return inserted


def cancel_pending(session: Session, channel: str, ordering_key: str,
                   kinds: Iterable[str]) -> int:
    result = session.execute(update(OutboxMessage).where(
        OutboxMessage.channel == channel, OutboxMessage.ordering_key == ordering_key,
        OutboxMessage.status == PENDING, OutboxMessage.kind.in_(list(kinds)))
        .values(status=CANCELLED, last_error="superseded by a newer message"))
    return result.rowcount or 0


def settle_pending(session: Session, channel: str, kinds: Iterable[str], *, status: str,
                   reason: str) -> int:
    """Close every pending message of ``kinds`` on ``channel`` in one statement (e.g. all of
    a feature's backlog the peer turned out not to support: ``unsupported``, never retried);
    returns how many. Closed messages block nothing, so per-key order is kept."""
    result = session.execute(update(OutboxMessage).where(
        OutboxMessage.channel == channel, OutboxMessage.status == PENDING,
        OutboxMessage.kind.in_(list(kinds)))
        .values(status=status, last_error=reason[:1000]))
    return result.rowcount or 0


def requeue(session: Session, channel: str, kinds: Iterable[str], *, status: str,
            note: str) -> int:
    """Make every ``status`` message of ``kinds`` on ``channel`` pending again, due now, in
    their original order (e.g. the peer now supports what they need); returns how many."""
    result = session.execute(update(OutboxMessage).where(
        OutboxMessage.channel == channel, OutboxMessage.status == status,
        OutboxMessage.kind.in_(list(kinds)))
        .values(status=PENDING, attempts=0, next_attempt_at=clock.now(),
                last_error=note[:1000]))
    return result.rowcount or 0


def set_batch_status(session: Session, batch_id: int, *, old: str, new: str,
                     now: dt.datetime | None = None) -> int:
    """Move a batch's messages from ``old`` to ``new`` (release held messages: ``held`` →
    ``pending``, which also restarts their clock; cancel them: ``held`` → ``cancelled``)."""
    values: dict = {"status": new}
    if new == PENDING:
        now = now or clock.now()
        values.update(next_attempt_at=now, changed_at=now)
    result = session.execute(update(OutboxMessage).where(
        OutboxMessage.batch_id == batch_id, OutboxMessage.status == old).values(**values))
    return result.rowcount or 0


def ready(session: Session, channel: str, kinds: Iterable[str], limit: int) -> list[OutboxMessage]:
    """Pending messages of ``kinds`` whose time has come and that no older pending message of
    the same ordering key with equal or more urgent priority precedes; by priority, then age."""
    older = aliased(OutboxMessage)
    blocked = exists().where(and_(
        older.channel == OutboxMessage.channel, older.ordering_key == OutboxMessage.ordering_key,
        older.status == PENDING, older.id < OutboxMessage.id,
        older.priority <= OutboxMessage.priority))
    return list(session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.channel == channel, OutboxMessage.status == PENDING,
            OutboxMessage.kind.in_(list(kinds)), OutboxMessage.next_attempt_at <= clock.now(),
            ~blocked)
        .order_by(OutboxMessage.priority, OutboxMessage.id).limit(limit)))


def pending_count(session: Session, channel: str | None = None, *,
                  kinds: Iterable[str] | None = None, retrying: bool = False) -> int:
    query = select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == PENDING)
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    if kinds is not None:
        query = query.where(OutboxMessage.kind.in_(list(kinds)))
    if retrying:
        query = query.where(OutboxMessage.attempts > 0)
    return session.scalar(query) or 0


def oldest_pending(session: Session, channel: str | None = None, *,
                   kinds: Iterable[str] | None = None) -> dt.datetime | None:
    """``changed_at`` of the oldest pending message (the age operators watch)."""
    query = select(func.min(OutboxMessage.changed_at)).where(OutboxMessage.status == PENDING)
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    if kinds is not None:
        query = query.where(OutboxMessage.kind.in_(list(kinds)))
    return session.scalar(query)


def retry_now(session: Session, channel: str) -> int:
    """Make every pending message of ``channel`` due now (the peer has recovered: its backlog
    goes out in priority order, not in the order its backoffs happen to end)."""
    now = clock.now()
    result = session.execute(update(OutboxMessage).where(
        OutboxMessage.channel == channel, OutboxMessage.status == PENDING,
        OutboxMessage.next_attempt_at > now).values(next_attempt_at=now))
    return result.rowcount or 0
