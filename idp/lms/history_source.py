"""What the LMS says about every active student at the end of one day, for the learning
history (``idp.history``): one set query streamed through a server-side cursor, built on the
contract's tables (``lms/schema.py``).

For a past day, attempts (dated) give exact counts, averages, subjects and percentiles;
streaks, videos and the LMS's exam counter come from the latest ``student_activities`` row
fetched on or before that day (the LMS keeps no finer history). "Active" is today's flag: the
LMS keeps no history of it (docs/history.md, "Backfill").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Date, Text, bindparam, cast, func, or_, select, text
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.engine import Engine

from .db import lms_query
from .schema import attempts as A
from .schema import batches as B
from .schema import student_activities as SA
from .schema import students as S
from .schema import subject_stats as SS


@dataclass(frozen=True)
class DailyFacts:
    """One active student at the end of a day."""

    student_id: int
    batch_id: int | None
    course_id: int | None
    attempts: int
    scored_attempts: int
    score_sum: float              # sum of the scored attempts' percentages
    last_attempt_at: dt.datetime | None
    percentile: float | None      # 0..1 within the batch, by average score
    exams_taken: int | None
    videos_watched: int | None
    current_streak: int | None
    best_streak: int | None
    subjects: dict[str, float]


class HistorySource(Protocol):
    def daily_facts(self, day: dt.date, cutoff: dt.datetime) -> Iterator[DailyFacts]: ...


def _daily_statement():
    cutoff = bindparam("cutoff", type_=A.c.date.type)
    day = bindparam("day", type_=Date)
    scores = (select(A.c.user_id, func.count().label("attempts"),
                     func.avg(A.c.percentage).label("average"),
                     func.count(A.c.percentage).label("scored"),
                     func.sum(A.c.percentage).label("score_sum"),
                     func.max(A.c.date).label("last_at"))
              .where(A.c.date < cutoff).group_by(A.c.user_id).cte("scores"))
    ranks = (select(S.c.id.label("student_id"),
                    func.percent_rank().over(partition_by=S.c.batch_id,
                                             order_by=scores.c.average).label("rank"))
             .select_from(S.join(scores, scores.c.user_id == S.c.id))
             .where(scores.c.average.isnot(None), S.c.batch_id.isnot(None)).cte("ranks"))
    activity = (select(SA.c.student_id, SA.c.current_streak, SA.c.highest_streak,
                       SA.c.total_videos_watched, SA.c.total_exams_taken)
                .ext(distinct_on(SA.c.student_id))
                .where(SA.c.fetch_date <= day)
                .order_by(SA.c.student_id, SA.c.fetch_date.desc()).cte("activity"))
    per_subject = (select(A.c.user_id, SS.c.subject, func.avg(SS.c.score).label("average"))
                   .select_from(A.join(SS, SS.c.attempt_id == A.c.id))
                   .where(A.c.date < cutoff, SS.c.score.isnot(None))
                   .group_by(A.c.user_id, SS.c.subject).cte("per_subject"))
    subjects = (select(per_subject.c.user_id,
                       func.array_agg(per_subject.c.subject).label("names"),
                       func.array_agg(per_subject.c.average).label("averages"))
                .group_by(per_subject.c.user_id).cte("subjects"))
    return (
        select(S.c.id, S.c.batch_id, B.c.course_id,
               func.coalesce(scores.c.attempts, 0).label("attempts"),
               func.coalesce(scores.c.scored, 0).label("scored"),
               func.coalesce(scores.c.score_sum, 0).label("score_sum"),
               scores.c.last_at, ranks.c.rank, activity.c.total_exams_taken,
               activity.c.total_videos_watched, activity.c.current_streak,
               activity.c.highest_streak, subjects.c.names, subjects.c.averages)
        .select_from(
            S.outerjoin(B, B.c.id == S.c.batch_id)
            .outerjoin(scores, scores.c.user_id == S.c.id)
            .outerjoin(ranks, ranks.c.student_id == S.c.id)
            .outerjoin(activity, activity.c.student_id == cast(S.c.id, Text))
            .outerjoin(subjects, subjects.c.user_id == S.c.id))
        .where(S.c.is_active, or_(S.c.created.is_(None), S.c.created < cutoff))
        .order_by(S.c.id))


DAILY_FACTS = _daily_statement()


@dataclass
class SqlHistorySource:
    """:class:`HistorySource` over the contract's tables."""

    engine: Engine
    chunk: int = 5000
    statement_timeout_ms: int = 900_000  # one set query over all attempts: minutes, not ms

    def daily_facts(self, day: dt.date, cutoff: dt.datetime) -> Iterator[DailyFacts]:
        """Every active student as of ``cutoff`` (the end of ``day`` in the school's zone)."""
        with lms_query(self.engine, "history_daily_facts") as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            conn.execute(text(f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}"))
            result = conn.execute(DAILY_FACTS, {"cutoff": cutoff, "day": day},
                                  execution_options={"stream_results": True,
                                                     "max_row_buffer": self.chunk})
            for row in result:
                yield DailyFacts(
                    student_id=row.id, batch_id=row.batch_id, course_id=row.course_id,
                    attempts=row.attempts,
                    scored_attempts=row.scored, score_sum=float(row.score_sum),
                    last_attempt_at=row.last_at,
                    percentile=float(row.rank) if row.rank is not None else None,
                    exams_taken=row.total_exams_taken,
                    videos_watched=row.total_videos_watched,
                    current_streak=row.current_streak, best_streak=row.highest_streak,
                    subjects=dict(zip(row.names or (), (float(v) for v in row.averages or ()),
                                      strict=True)))
