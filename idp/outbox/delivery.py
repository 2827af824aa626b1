"""Delivering a channel's messages: handlers per kind, outcomes classified, backoff honouring
``Retry-After``, and a circuit breaker per channel so an outage causes no retry storm."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .. import clock
from ..breaker import CircuitBreaker
from .models import OutboxChannel, OutboxMessage
from .queue import DONE, FAILED, UNSUPPORTED, ready, retry_now

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A handler could not deliver. Raise one of the subclasses."""


class Transient(DeliveryError):
    """Try again later: network error, timeout, 5xx, 429. ``retry_after`` (seconds) is the
    peer's own ``Retry-After``; it pauses the whole channel."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class Refused(DeliveryError):
    """The peer refused this message (e.g. HTTP 400): never retried, recorded as failed."""


class Unsupported(DeliveryError):
    """The peer does not offer what the message needs (HTTP 501, or 404 on an endpoint):
    recorded as ``unsupported``, never retried; ``feature`` names what is missing."""

    def __init__(self, message: str, *, feature: str):
        super().__init__(message)
        self.feature = feature


Handler = Callable[[Session, OutboxMessage], "str | None"]
"""Delivers one message (may change other rows in ``session``; the outbox commits them with
the message's new status). Returns a note (None or "ok" when there is nothing to say) or raises
a :class:`DeliveryError`."""

_HANDLERS: dict[str, Handler] = {}


def register_handler(kind: str, handler: Handler) -> None:
    """Register the process-wide handler of ``kind`` (a feature package's ``init_app``)."""
    _HANDLERS[kind] = handler


def registered_handlers() -> dict[str, Handler]:
    return dict(_HANDLERS)


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 1.0  # seconds before the second attempt
    maximum: float = 60.0  # cap of the exponential backoff
    max_attempts: int = 1000  # transient failures before a message is given up
    breaker_failures: int = 3  # consecutive transient failures that open the breaker
    breaker_cooldown: float = 5.0  # seconds an open breaker waits before one trial

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1``: base·2^(attempts-1), capped, ±10% jitter."""
        delay = min(self.maximum, self.base * (2 ** min(max(attempts - 1, 0), 30)))
        return delay * random.uniform(0.9, 1.1)


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    unsupported: int = 0
    blocked: bool = False  # stopped early: peer unreachable, paused or breaker open

    @property
    def touched(self) -> int:
        return self.delivered + self.retried + self.failed + self.unsupported

    def add(self, other: DeliveryReport) -> None:
        self.delivered += other.delivered
        self.retried += other.retried
        self.failed += other.failed
        self.unsupported += other.unsupported
        self.blocked = other.blocked


Outcome = Callable[[OutboxMessage, str, "str | None"], None]
"""Called after each message's new state is committed: (message, outcome, note) with outcome
one of delivered, retried, failed, unsupported (metrics, audit, logs)."""


class Channel:
    """Delivery state of one channel in this process: its breaker and its pause."""

    def __init__(self, name: str, policy: RetryPolicy | None = None):
        self.name = name
        self.policy = policy or RetryPolicy()
        self.breaker = CircuitBreaker(self.policy.breaker_failures,
                                      self.policy.breaker_cooldown)
        self.paused_until: dt.datetime | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()

    def paused(self) -> bool:
        return self.paused_until is not None and clock.now() < self.paused_until

    def _record(self, session: Session, *, error: str | None = None,
                success: bool = False) -> None:
        """Write the channel's state for status pages of every process (same transaction)."""
        now = clock.now()
        session.execute(insert(OutboxChannel).values(channel=self.name, capabilities={})
                        .on_conflict_do_nothing(index_elements=["channel"]))
        row = session.get(OutboxChannel, self.name)
        row.breaker = self.breaker.state
        row.paused_until = self.paused_until
        if error is not None:
            row.last_error, row.last_error_at = error[:1000], now
        if success:
            row.last_success_at = now

    def deliver(self, session: Session, handlers: Mapping[str, Handler] | None = None, *,
                limit: int = 100, on_outcome: Outcome | None = None) -> DeliveryReport:
        """Deliver up to ``limit`` ready messages of the kinds in ``handlers`` (default: the
        registered ones), most urgent first, one commit each. Stops at the first transient
        failure, while paused by a ``Retry-After`` and while the breaker is open, and after an
        ``Unsupported`` answer (the queue is read again: the owner may have settled more).

        The messages are read once per round, as detached snapshots; each outcome is one
        UPDATE of the message's row (round trips per delivered message: the handler's own,
        that UPDATE, the commit)."""
        with self._lock:
            return self._deliver(session, handlers if handlers is not None
                                 else registered_handlers(), limit,
                                 on_outcome or (lambda *_: None))

    def _deliver(self, session: Session, handlers: Mapping[str, Handler], limit: int,
                 on_outcome: Outcome) -> DeliveryReport:
        report = DeliveryReport()
        state = self.breaker.state
        if self.paused() or state == "open":
            report.blocked = True
            return report
        if state == "half_open":  # the trial goes to the most urgent message, due or not
            retry_now(session, self.name)
            session.commit()
        messages = ready(session, self.name, handlers.keys(), limit)
        for message in messages:  # snapshots: a commit does not expire (and re-read) them
            session.expunge(message)
        for message in messages:
            if self.paused() or not self.breaker.admit():
                report.blocked = True
                break
            message.attempts += 1
            try:
                note = handlers[message.kind](session, message)
            except Transient as exc:
                self._transient(session, message, exc)
                session.commit()
                report.retried += 1
                report.blocked = True
                on_outcome(message, "retried", str(exc))
                break
            except (Refused, Unsupported) as exc:
                unsupported = isinstance(exc, Unsupported)
                self._close(session, message, status=UNSUPPORTED if unsupported else FAILED,
                            attempts=message.attempts, last_error=str(exc)[:1000])
                recovered = self._answered(session)
                session.commit()
                if unsupported:
                    report.unsupported += 1
                else:
                    report.failed += 1
                on_outcome(message, "unsupported" if unsupported else "failed", str(exc))
                if recovered or unsupported:
                    # recovered: the backlog is due now; unsupported: the owning package may
                    # have settled the rest of the feature's backlog. Read the queue again.
                    break
                continue
            except SQLAlchemyError:
                self.breaker.abandoned()
                raise
            except Exception as exc:  # noqa: BLE001 - a handler bug must not lose a message
                session.rollback()
                log.exception("outbox handler of %s failed on message %s; it will be retried",
                              message.kind, message.id)
                values: dict = {"attempts": message.attempts,
                                "last_error": f"handler error: {exc!r}"[:1000]}
                if message.attempts >= self.policy.max_attempts:
                    values["status"] = FAILED
                else:
                    values["next_attempt_at"] = clock.now() + dt.timedelta(
                        seconds=self.policy.backoff(message.attempts))
                self._close(session, message, **values)
                self.breaker.abandoned()
                session.commit()
                report.retried += 1
                on_outcome(message, "retried", message.last_error)
                continue
            self._close(session, message, status=DONE, delivered_at=clock.now(),
                        attempts=message.attempts,
                        last_error=None if note in (None, "ok") else str(note)[:1000])
            recovered = self._answered(session)
            session.commit()
            report.delivered += 1
            on_outcome(message, "delivered", note)
            if recovered:
                break  # the backlog is due now: read it again, most urgent first
        return report

    @staticmethod
    def _close(session: Session, message: OutboxMessage, **values) -> None:
        """Write ``values`` on the snapshot ``message`` and on its row, in the caller's
        transaction, whose commit then does not wait for the WAL flush: a status lost in a
        crash only means one idempotent redelivery (PostgreSQL docs, "Asynchronous
        Commit"). One round trip (both statements in one message)."""
        for name, value in values.items():
            setattr(message, name, value)
        assignments = ", ".join(f"{name} = :{name}" for name in values)
        session.execute(text(f"SET LOCAL synchronous_commit TO OFF; UPDATE "
                             f"{OutboxMessage.__tablename__} SET {assignments} WHERE id = :id"),
                        {**values, "id": message.id})

    def _answered(self, session: Session) -> bool:
        """The peer answered: the breaker closes; after an outage the backlog is due now, so
        it goes out by priority (deactivations first). True when this was a recovery."""
        if self.breaker.succeeded():
            moved = retry_now(session, self.name)
            self.last_error = None
            log.warning("outbox channel %s: peer reachable again; %d pending messages due "
                        "now, most urgent first", self.name, moved)
            self._record(session, success=True)
            return True
        if self.last_error is not None:
            self.last_error = None
            self._record(session, success=True)
        return False

    def _transient(self, session: Session, message: OutboxMessage, exc: Transient) -> None:
        now = clock.now()
        delay = self.policy.backoff(message.attempts)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
            self.paused_until = now + dt.timedelta(seconds=exc.retry_after)
        values: dict = {"attempts": message.attempts, "last_error": str(exc)[:1000]}
        if message.attempts >= self.policy.max_attempts:
            values["status"] = FAILED
        else:
            values["next_attempt_at"] = now + dt.timedelta(seconds=delay)
        self._close(session, message, **values)
        was = self.breaker.state
        self.breaker.failed(open_now=exc.retry_after is not None)
        self.last_error = str(exc)
        if self.breaker.state != was:
            log.warning("outbox channel %s: breaker %s after %s", self.name,
                        self.breaker.state, exc)
        self._record(session, error=str(exc))


_CHANNELS: dict[str, Channel] = {}
_CHANNELS_LOCK = threading.Lock()


def channel(name: str, policy: RetryPolicy | None = None) -> Channel:
    """This process's :class:`Channel` called ``name`` (created on first use; a different
    ``policy`` replaces it): one breaker per peer however many packages deliver to it."""
    with _CHANNELS_LOCK:
        current = _CHANNELS.get(name)
        if current is None or (policy is not None and policy != current.policy):
            _CHANNELS[name] = current = Channel(name, policy)
        return current


def forget_channels() -> None:
    """Drop every in-process channel state (tests)."""
    with _CHANNELS_LOCK:
        _CHANNELS.clear()
