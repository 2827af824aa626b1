"""Reading the learning history back: decoded day rows for one student (``/me``, the rules)
or, streamed, for everyone over the last N days (the nightly rule run)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from ..extensions import db
from .models import HistorySnapshot as H
from .snapshots import subject_names


@dataclass(slots=True)
class Day:
    """One student's standing at the end of one school day, in plain units."""

    day: dt.date
    attempts: int = 0
    exams_taken: int | None = None
    videos_watched: int | None = None
    current_streak: int | None = None
    best_streak: int | None = None
    scored_attempts: int = 0
    score_sum: float = 0.0                # sum of the scored attempts' percentages
    percentile: float | None = None       # 0-100 within the batch
    last_attempt_day: dt.date | None = None
    subjects: dict[str, float] = field(default_factory=dict)
    batch_id: int | None = None
    course_id: int | None = None

    @property
    def average(self) -> float | None:
        """Average score (percent) over every scored attempt so far."""
        return self.score_sum / self.scored_attempts if self.scored_attempts else None


_COLUMNS = (H.student_id, H.day, H.attempts, H.exams_taken, H.videos_watched, H.current_streak,
            H.best_streak, H.scored_attempts, H.score_sum_tenths, H.percentile_tenths,
            H.last_attempt_day, H.subject_tenths, H.batch_id, H.course_id)


def _decode(row, names: dict[int, str]) -> Day:
    subjects = {names.get(i + 1, f"subject {i + 1}"): v / 10.0
                for i, v in enumerate(row.subject_tenths or ()) if v is not None}
    return Day(day=row.day, attempts=row.attempts, exams_taken=row.exams_taken,
               videos_watched=row.videos_watched, current_streak=row.current_streak,
               best_streak=row.best_streak,
               scored_attempts=row.scored_attempts, score_sum=row.score_sum_tenths / 10.0,
               percentile=row.percentile_tenths / 10.0
               if row.percentile_tenths is not None else None,
               last_attempt_day=row.last_attempt_day, subjects=subjects,
               batch_id=row.batch_id, course_id=row.course_id)


def student_history(student_id: int, since: dt.date | None = None) -> list[Day]:
    """One student's days, oldest first."""
    query = select(*_COLUMNS).where(H.student_id == student_id)
    if since is not None:
        query = query.where(H.day >= since)
    names = subject_names()
    return [_decode(row, names) for row in db.session.execute(query.order_by(H.day))]


def _arrays(since: dt.date, student_ids: list[int] | None):
    """One row per student: the student id and one array per column, ordered by day."""
    query = select(H.student_id, *(func.array_agg(aggregate_order_by(column, H.day)) for column in (
        H.day, H.attempts, H.exams_taken, H.videos_watched, H.current_streak, H.best_streak,
        H.scored_attempts, H.score_sum_tenths, H.percentile_tenths, H.last_attempt_day,
        H.batch_id, H.course_id))).where(H.day >= since)
    if student_ids is not None:
        query = query.where(H.student_id.in_(student_ids))
    return query.group_by(H.student_id).subquery("history")


def recent_histories(since: dt.date, student_ids: list[int] | None = None,
                     subjects_on: dt.date | None = None,
                     chunk: int = 5000) -> Iterator[tuple[int, list[Day]]]:
    """(student id, days oldest first) for everyone with a row since ``since``, streamed in
    student order: one row of arrays per student (the BRIN index on ``day`` keeps the scan to
    the last days' pages). Subject scores are decoded for the day ``subjects_on`` only (the
    day the rules judge; no rule reads older ones)."""
    history = _arrays(since, student_ids)
    latest = H.__table__.alias("latest")
    query = (select(history, latest.c.subject_tenths)
             .select_from(history.outerjoin(latest, and_(
                 latest.c.student_id == history.c.student_id,
                 latest.c.day == (subjects_on or dt.date.min))))
             .order_by(history.c.student_id))
    names = subject_names()
    # yield_per: the ORM session's way to a server-side cursor (stream_results alone left
    # the whole result buffered: 1.4 GB for 100k students in bench/nudge.py)
    result = db.session.execute(query, execution_options={"yield_per": chunk})
    for (student_id, days, attempts, exams, videos, streaks, bests, scored, sums, ranks,
         lasts, batches, courses, subjects) in result:
        out = [Day(day, attempts[i], exams[i], videos[i], streaks[i], bests[i], scored[i],
                   sums[i] / 10.0, ranks[i] / 10.0 if ranks[i] is not None else None,
                   lasts[i], {}, batches[i], courses[i]) for i, day in enumerate(days)]
        if subjects and out[-1].day == subjects_on:
            out[-1].subjects = {names.get(i + 1, f"subject {i + 1}"): v / 10.0
                                for i, v in enumerate(subjects) if v is not None}
        yield student_id, out
