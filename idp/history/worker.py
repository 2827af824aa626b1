"""The history worker: after midnight in the school's time zone, snapshot the day that just
ended, then prune what is past the retention. ``flask --app wsgi history run`` loops over
:func:`run_once`; each step is idempotent, so several workers or a restart are harmless (a
PostgreSQL advisory lock keeps two from working the same day at once)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from sqlalchemy import text

from .. import clock
from ..extensions import db
from ..lms.db import LMSUnavailable
from .settings import HistorySettings
from .snapshots import SnapshotResult, last_complete_day, prune, take_snapshot

log = logging.getLogger(__name__)
LOCK_KEY = 0x6869_7374  # "hist"


@dataclass(frozen=True)
class StepResult:
    snapshot: SnapshotResult | None
    pruned: int
    locked_out: bool = False


def run_once(source, settings: HistorySettings) -> StepResult:
    """Snapshot yesterday (school time zone) if not done, then prune."""
    got = db.session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"),
                             {"k": LOCK_KEY}).scalar()
    if not got:
        db.session.rollback()
        return StepResult(None, 0, locked_out=True)
    day = last_complete_day(clock.now(), settings.timezone)
    result = take_snapshot(source, day, settings.timezone)  # commits (and frees the lock)
    return StepResult(result, prune(settings.retention_days, settings.timezone))


def run_forever(source, settings: HistorySettings, stop: threading.Event,
                after_step=None) -> None:
    """Loop until ``stop`` is set; LMS outages are logged and retried at the next check."""
    while not stop.is_set():
        try:
            step = run_once(source, settings)
            if after_step is not None:
                after_step(step)
        except LMSUnavailable as exc:
            db.session.rollback()
            log.warning("history snapshot postponed: %s", exc)
        stop.wait(settings.interval)
