"""Taking, backfilling and pruning the learning history.

A day's snapshot describes each active student at the end of that day in the school's time
zone; it is taken once the day is over. Writing is idempotent: rows are keyed (student, day)
and inserted with ON CONFLICT DO NOTHING, and the day is marked done in ``history_days`` only
after every row is in, in the same transaction, so a crash half-way leaves nothing to clean
up and a rerun finishes the job.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import zoneinfo
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from .. import clock
from ..extensions import db
from ..lms.history_source import DailyFacts, HistorySource
from .metrics import SNAPSHOT_ROWS, SNAPSHOT_SECONDS
from .models import HistoryDay, HistorySnapshot, HistorySubject

log = logging.getLogger(__name__)
CHUNK = 5000


@dataclass(frozen=True)
class SnapshotResult:
    day: dt.date
    students: int
    inserted: int
    seconds: float
    skipped: bool = False  # the day was already complete


def day_end(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The first instant after ``day`` in the school's zone, as UTC (DST-safe: midnight of the
    next local day, whatever its offset)."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).astimezone(dt.UTC)


def last_complete_day(now: dt.datetime, tz: zoneinfo.ZoneInfo) -> dt.date:
    """Yesterday in the school's zone: the latest day that is over."""
    return now.astimezone(tz).date() - dt.timedelta(days=1)


SMALLINT = 32767


def tenths(value: float | None, scale: float = 10.0) -> int | None:
    return None if value is None else int(round(value * scale))


def small(value: int | None) -> int | None:
    """Clamped into a ``smallint`` column (streaks, scores in tenths): an odd LMS value
    cannot make a whole day's snapshot fail."""
    return None if value is None else max(-SMALLINT, min(SMALLINT, value))


def _subject_ids(names: Iterable[str]) -> dict[str, int]:
    """The catalogue's ids for ``names``, adding new subjects (race-safe)."""
    wanted = set(names)
    known = dict(db.session.execute(select(HistorySubject.name, HistorySubject.id)).all())
    missing = wanted - known.keys()
    if missing:
        db.session.execute(pg_insert(HistorySubject).values([{"name": n} for n in sorted(missing)])
                           .on_conflict_do_nothing(index_elements=["name"]))
        known = dict(db.session.execute(select(HistorySubject.name, HistorySubject.id)).all())
    return known


def _row(day: dt.date, facts: DailyFacts, subject_ids: dict[str, int],
         tz: zoneinfo.ZoneInfo) -> dict:
    scores: list[int | None] = []
    for name, average in facts.subjects.items():
        index = subject_ids[name] - 1
        scores.extend([None] * (index + 1 - len(scores)))
        scores[index] = small(tenths(average))
    return {"student_id": facts.student_id, "day": day, "batch_id": facts.batch_id,
            "course_id": facts.course_id, "attempts": facts.attempts,
            "exams_taken": facts.exams_taken, "videos_watched": facts.videos_watched,
            "current_streak": small(facts.current_streak),
            "best_streak": small(facts.best_streak),
            "scored_attempts": facts.scored_attempts,
            "score_sum_tenths": tenths(facts.score_sum),
            "percentile_tenths": small(tenths(facts.percentile, 1000.0)),
            "last_attempt_day": facts.last_attempt_at.astimezone(tz).date()
            if facts.last_attempt_at is not None else None,
            "subject_tenths": scores or None}


def _chunks(facts: Iterator[DailyFacts], size: int) -> Iterator[list[DailyFacts]]:
    chunk: list[DailyFacts] = []
    for item in facts:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def take_snapshot(source: HistorySource, day: dt.date, tz: zoneinfo.ZoneInfo, *,
                  origin: str = "daily", force: bool = False) -> SnapshotResult:
    """Snapshot every active student at the end of ``day``; a day already complete is skipped
    (``force`` adds the rows still missing, e.g. after students joined). Commits."""
    if day >= clock.now().astimezone(tz).date():
        raise ValueError(f"{day} is not over yet in the school's time zone ({tz.key})")
    if not force and db.session.get(HistoryDay, day) is not None:
        return SnapshotResult(day, 0, 0, 0.0, skipped=True)
    started = time.perf_counter()
    students = inserted = 0
    for chunk in _chunks(source.daily_facts(day, day_end(day, tz)), CHUNK):
        ids = _subject_ids(name for facts in chunk for name in facts.subjects)
        rows = [_row(day, facts, ids, tz) for facts in chunk]
        # executemany of one cached statement (SQLAlchemy batches it into multi-row INSERTs)
        result = db.session.execute(pg_insert(HistorySnapshot).on_conflict_do_nothing()
                                    .returning(HistorySnapshot.student_id), rows)
        students += len(rows)
        inserted += len(result.all())
    seconds = time.perf_counter() - started
    db.session.execute(pg_insert(HistoryDay).values(
        day=day, taken_at=clock.now(), students=students, seconds=seconds, origin=origin)
        .on_conflict_do_update(index_elements=["day"],
                               set_={"taken_at": clock.now(), "students": students,
                                     "seconds": seconds}))
    db.session.commit()
    SNAPSHOT_ROWS.labels(origin).inc(inserted)
    SNAPSHOT_SECONDS.labels(origin).observe(seconds)
    log.info("history snapshot of %s: %d students, %d new rows, %.1fs", day, students,
             inserted, seconds)
    return SnapshotResult(day, students, inserted, seconds)


def backfill(source: HistorySource, first: dt.date, last: dt.date,
             tz: zoneinfo.ZoneInfo) -> list[SnapshotResult]:
    """Snapshots for every day from ``first`` to ``last`` not yet complete, oldest first."""
    results = []
    day = first
    while day <= last:
        results.append(take_snapshot(source, day, tz, origin="backfill"))
        day += dt.timedelta(days=1)
    return results


def prune(retention_days: int, tz: zoneinfo.ZoneInfo) -> int:
    """Delete snapshots older than the retention; return how many rows went. Commits."""
    oldest = clock.now().astimezone(tz).date() - dt.timedelta(days=retention_days)
    deleted = db.session.execute(delete(HistorySnapshot).where(HistorySnapshot.day < oldest))
    db.session.execute(delete(HistoryDay).where(HistoryDay.day < oldest))
    db.session.commit()
    return deleted.rowcount


def subject_names() -> dict[int, str]:
    return dict(db.session.execute(select(HistorySubject.id, HistorySubject.name)).all())


def days_taken() -> int:
    return db.session.execute(select(func.count()).select_from(HistoryDay)).scalar_one()


