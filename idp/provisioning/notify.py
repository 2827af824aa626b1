"""The LISTEN/NOTIFY fast path: the LMS's DBA installs a trigger (docs/sql/lms_notify.sql) that
sends ``NOTIFY lms_people_changed, '<subject> <epoch seconds>'`` when a student or mentor row
changes; the bridge only LISTENs, on its read-only LMS role (PostgreSQL docs, "LISTEN").

A lost connection is reported and retried later; it never stands for "people left" (the
periodic snapshot keeps running regardless).
"""

from __future__ import annotations

import datetime as dt
import logging
import select
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from ..people import parse_subject

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    subject: str
    at: dt.datetime | None  # when the LMS row changed (trigger's clock), if the payload says


def parse_payload(payload: str) -> Change | None:
    """``"student:42 1732500000.25"`` → Change; anything malformed → None (ignored)."""
    parts = payload.strip().split()
    if not parts or len(parts) > 2 or parse_subject(parts[0]) is None:
        return None
    at = None
    if len(parts) == 2:
        try:
            at = dt.datetime.fromtimestamp(float(parts[1]), dt.UTC)
        except (ValueError, OverflowError, OSError):
            at = None
    return Change(parts[0], at)


class LmsListener:
    """One dedicated LMS connection in autocommit mode, LISTENing on ``channel``."""

    def __init__(self, engine: Engine, channel: str):
        self.engine, self.channel = engine, channel
        self._conn = None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def connect(self) -> bool:
        try:
            pooled = self.engine.raw_connection()
            conn = pooled.driver_connection
            pooled.detach()  # ours for good: never returned to the pool
            conn.rollback()
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'LISTEN "{self.channel}"')
        except Exception as exc:  # noqa: BLE001 - any driver failure means "not listening"
            log.warning("LMS LISTEN %s unavailable (%s); polling continues", self.channel,
                        type(exc).__name__)
            self._conn = None
            return False
        self._conn = conn
        log.info("listening for LMS changes on channel %s", self.channel)
        return True

    def wait(self, timeout: float) -> list[Change]:
        """Block up to ``timeout`` seconds for notifications; returns the changes received."""
        conn = self._conn
        if conn is None:
            return []
        try:
            if not conn.notifies:
                ready, _, _ = select.select([conn], [], [], max(timeout, 0.0))
                if ready:
                    conn.poll()
            else:
                conn.poll()
            notes, conn.notifies[:] = list(conn.notifies), []
        except Exception as exc:  # noqa: BLE001 - a dead socket: reconnect later
            log.warning("LMS LISTEN connection lost (%s); polling continues",
                        type(exc).__name__)
            self.close()
            return []
        changes = [parse_payload(n.payload) for n in notes]
        return [c for c in changes if c is not None]

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - closing a broken socket
                log.debug("closing the LISTEN connection failed")
            self._conn = None
