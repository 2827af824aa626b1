"""The context service's academic reads: a thin layer over the LMS adapter
(:mod:`idp.lms.academics`) that adds what the API promises on top of the adapter's rows: the
mentor list's order, pages and flags. No SQL lives here any more (docs/lms-adapter.md)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.engine import Engine

from ..lms.academics import MENTOR_SORTS, SqlAcademics
from . import insights

__all__ = ["MENTOR_SORTS", "fetch_batch", "fetch_mentor", "fetch_mentor_students",
           "fetch_metrics", "fetch_owner", "fetch_performance", "fetch_roster", "fetch_student",
           "sort_roster"]

# Sort keys → the roster field they order by.
_SORT_FIELDS = {"name": "sort_name", "current_streak": "current_streak",
                "average_score": "average_score", "last_activity": "last_attempt_at",
                "score_change": "score_change", "total_exams": "total_exams"}


def fetch_owner(engine: Engine, student_id: int) -> dict | None:
    return SqlAcademics(engine).owner(student_id)


def fetch_student(engine: Engine, student_id: int, now: dt.datetime) -> dict | None:
    return SqlAcademics(engine).student(student_id, now)


def fetch_metrics(engine: Engine, student_id: int, now: dt.datetime) -> dict:
    return SqlAcademics(engine).metrics(student_id, now)


def fetch_batch(engine: Engine, batch_id: int) -> dict | None:
    return SqlAcademics(engine).batch(batch_id)


def fetch_performance(engine: Engine, student_id: int, now: dt.datetime) -> dict:
    return SqlAcademics(engine).performance(student_id, now)


def fetch_mentor(engine: Engine, mentor_id: int) -> dict | None:
    return SqlAcademics(engine).mentor(mentor_id)


def fetch_roster(engine: Engine, mentor_id: int) -> list[dict]:
    return SqlAcademics(engine).roster(mentor_id)


def sort_roster(students: list[dict], sort: str, descending: bool) -> list[dict]:
    """Order by one column, ties and empty values (always last) by LMS id."""
    field = _SORT_FIELDS[sort]

    def value(s: dict):
        return s["display_name"].lower() if field == "sort_name" else s[field]

    present = [s for s in students if value(s) is not None]
    present.sort(key=lambda s: s["id"])
    present.sort(key=value, reverse=descending)  # stable: ties stay in id order
    empty = sorted((s for s in students if value(s) is None), key=lambda s: s["id"])
    return present + empty


def fetch_mentor_students(engine: Engine, mentor_id: int, *, sort: str, descending: bool,
                          limit: int, offset: int) -> dict:
    """One page of the mentor's students with their metrics and flags, plus the total."""
    roster = SqlAcademics(engine).roster(mentor_id)
    ordered = sort_roster(roster, sort, descending)
    page = ordered[offset:offset + limit]
    return {"total": len(roster) if page else None, "students": [_listed(s) for s in page]}


def _listed(student: dict) -> dict:
    flags = []
    if not student["active"]:
        flags.append("inactive")
    if insights.streak_broken(student):
        flags.append("streak_broken")
    if student["score_change"] is not None and student["score_change"] <= -insights.FALLING_POINTS:
        flags.append("scores_falling")
    hidden = ("course", "previous_streak", "attempts_count")
    return {**{k: v for k, v in student.items() if k not in hidden}, "flags": flags}
