"""The learning history: one compact row per active student per school day (the seed's
``StudentAcademicSnapshot``), the subject catalogue its score arrays refer to, and a row per
completed day.

Storage is planned for 100k students × 400 days = 40M rows: fixed-width small integers
(scores and percentiles in tenths), subject scores as one ``smallint[]`` indexed by subject id
instead of JSON, the primary key (student_id, day) as the only B-tree, and a BRIN index on
``day`` (rows arrive day by day) for the "last N days of everyone" scans of the rules.
Measured bytes per row: docs/benchmarks.md (bench/nudge.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, DateTime, Index, Integer, SmallInteger, String
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

UTCDateTime = DateTime(timezone=True)


class HistorySnapshot(db.Model):
    """A student's standing at the end of ``day`` (school time zone)."""

    __tablename__ = "history_snapshots"

    student_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    course_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)            # attempts recorded so far
    exams_taken: Mapped[int | None] = mapped_column(Integer, nullable=True)
    videos_watched: Mapped[int | None] = mapped_column(Integer, nullable=True)
    current_streak: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    best_streak: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    # sum of the scored attempts' percentages, in tenths: the average is sum / scored, and
    # the mean of the attempts made between two days is exact (Δsum / Δscored)
    scored_attempts: Mapped[int] = mapped_column(Integer)
    score_sum_tenths: Mapped[int] = mapped_column(Integer)
    percentile_tenths: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    last_attempt_day: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # subject_tenths[i - 1] = average score (tenths) in subject id i, NULL if none
    subject_tenths: Mapped[list | None] = mapped_column(ARRAY(SmallInteger), nullable=True)

    __table_args__ = (Index("ix_history_snapshots_day_brin", "day", postgresql_using="brin"),)


class HistorySubject(db.Model):
    """Subject names, numbered for the snapshots' score arrays."""

    __tablename__ = "history_subjects"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class HistoryDay(db.Model):
    """A day whose snapshot is complete (the worker's idempotency mark)."""

    __tablename__ = "history_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    taken_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    students: Mapped[int] = mapped_column(Integer)
    seconds: Mapped[float] = mapped_column(db.Float)
    origin: Mapped[str] = mapped_column(String(16))  # "daily" | "backfill"
