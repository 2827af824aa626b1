"""Academic queries against the LMS, written for a large LMS (100k students, millions of
attempts): every query is keyed by an indexed column (docs/lms-indexes.md), the percentile
rank is computed in SQL with ``percent_rank()`` over a whole batch at once, and a mentor's
student list with its metrics is one query (LATERAL joins, no N+1).

Each function opens one ``lms_query`` connection (failures raise LMSUnavailable) and returns
plain JSON-ready dicts; the views never see SQL. Time windows are relative to ``now`` (passed
in, from :func:`idp.clock.now`); weekdays and weeks are counted in UTC.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ..lms.db import lms_query

RECENT_ATTEMPTS = 5
EXAM_HISTORY_LIMIT = 50
TREND_WEEKS = 12

_OWNER = text("SELECT id, mentor_id, batch_id, is_active FROM students WHERE id = :sid")

_STUDENT = text("""
    SELECT s.id, s.username, s.email, s.first_name, s.last_name, s.display_name, s.is_active,
           s.created, s.batch_id, b.name AS batch_name, c.id AS course_id, c.name AS course_name,
           m.id AS mentor_id, m.username AS mentor_username, m.email AS mentor_email,
           m.first_name AS mentor_first_name, m.last_name AS mentor_last_name,
           m.display_name AS mentor_display_name
      FROM students s
      LEFT JOIN batches b ON b.id = s.batch_id
      LEFT JOIN courses c ON c.id = b.course_id
      LEFT JOIN mentors m ON m.id = s.mentor_id
     WHERE s.id = :sid""")

# The two latest snapshots (one per fetch_date; rows without a fetch_date are ignored): the
# second tells whether the current streak was reset since. Walks the (student_id, fetch_date)
# index backwards and stops after two rows, however long the history.
_ACTIVITY = text("""
    SELECT current_streak, highest_streak, total_videos_watched, total_exams_taken,
           "timestamp", fetch_date
      FROM student_activities
     WHERE student_id = :sid_text AND fetch_date IS NOT NULL
     ORDER BY fetch_date DESC
     LIMIT 2""")
# A batch's or a mentor's students are a few hundred index probes: parallel workers only add
# start-up cost (measured: 18 ms → 3 ms for a 250-student batch on the 100k demo).
_NO_PARALLEL = text("SET LOCAL max_parallel_workers_per_gather = 0")

_ATTEMPT_SUMMARY = text("""
    SELECT count(*) AS attempts, avg(percentage) AS average, max(date) AS last_at,
           count(*) FILTER (WHERE date >= :now - interval '7 days') AS last_7_days,
           count(*) FILTER (WHERE date >= :now - interval '30 days') AS last_30_days,
           regr_slope(percentage, extract(epoch FROM date) / 86400.0)
               FILTER (WHERE date >= :now - interval '90 days') AS slope_per_day,
           count(percentage) FILTER (WHERE date >= :now - interval '90 days') AS last_90_days
      FROM attempts
     WHERE user_id = :sid""")

_LATEST_ATTEMPTS = text("""
    SELECT id, date, percentage FROM attempts
     WHERE user_id = :sid ORDER BY date DESC, id DESC LIMIT :limit""")

_SUBJECTS = text("""
    SELECT ss.subject, avg(ss.score) AS average, max(ss.score) AS best,
           min(ss.score) AS lowest, count(*) AS attempts,
           avg(ss.score) FILTER (WHERE a.date >= :now - interval '30 days') AS recent_average
      FROM attempts a JOIN subject_stats ss ON ss.attempt_id = a.id
     WHERE a.user_id = :sid AND ss.score IS NOT NULL
     GROUP BY ss.subject
     ORDER BY ss.subject""")

# Percentile rank within the batch, for every student of the batch in one pass.
_BATCH = text("""
    SELECT b.id, b.name, b.course_id, c.name AS course_name
      FROM batches b LEFT JOIN courses c ON c.id = b.course_id WHERE b.id = :batch""")
_BATCH_RANKS = text("""
    WITH scores AS (
        SELECT a.user_id, avg(a.percentage) AS average
          FROM students s JOIN attempts a ON a.user_id = s.id
         WHERE s.batch_id = :batch AND a.percentage IS NOT NULL
         GROUP BY a.user_id)
    SELECT user_id, percent_rank() OVER (ORDER BY average) AS rank FROM scores""")

_EXAM_HISTORY = text("""
    SELECT a.id, a.date, a.percentage,
           coalesce(json_agg(json_build_object('subject', ss.subject, 'score', ss.score)
                             ORDER BY ss.subject) FILTER (WHERE ss.id IS NOT NULL),
                    '[]'::json) AS subjects
      FROM (SELECT id, date, percentage FROM attempts WHERE user_id = :sid
             ORDER BY date DESC, id DESC LIMIT :limit) a
      LEFT JOIN subject_stats ss ON ss.attempt_id = a.id
     GROUP BY a.id, a.date, a.percentage
     ORDER BY a.date DESC, a.id DESC""")

_WEEKDAYS = text("""
    SELECT extract(isodow FROM date AT TIME ZONE 'UTC')::int AS weekday, count(*) AS attempts,
           avg(percentage) AS average
      FROM attempts WHERE user_id = :sid GROUP BY 1 ORDER BY 1""")

_WEEKLY = text("""
    SELECT date_trunc('week', date AT TIME ZONE 'UTC')::date AS week_start,
           count(*) AS attempts, avg(percentage) AS average
      FROM attempts
     WHERE user_id = :sid AND date >= :since
     GROUP BY 1 ORDER BY 1""")

_MENTOR = text("""
    SELECT id, username, email, first_name, last_name, display_name
      FROM mentors WHERE id = :mentor""")

# One query for a whole page of a mentor's students with their key metrics.
_MENTOR_STUDENTS = """
    WITH mine AS (
        SELECT s.id, s.username, s.email, s.first_name, s.last_name, s.display_name,
               s.is_active, s.batch_id, b.name AS batch_name,
               lower(coalesce(nullif(s.display_name, ''),
                              nullif(trim(concat_ws(' ', s.first_name, s.last_name)), ''),
                              s.username)) AS sort_name
          FROM students s LEFT JOIN batches b ON b.id = s.batch_id
         WHERE s.mentor_id = :mentor),
    measured AS (
        SELECT m.*, act.current_streak, act.highest_streak, act.total_videos_watched,
               act.total_exams_taken, act.previous_streak, sc.attempts, sc.average, sc.last_at,
               coalesce(act.total_exams_taken, sc.attempts) AS total_exams,
               rec.recent_average, rec.previous_average,
               nullif(rec.recent_average - rec.previous_average, 'NaN') AS score_change
          FROM mine m
          LEFT JOIN LATERAL (
              SELECT y.current_streak, y.highest_streak, y.total_videos_watched,
                     y.total_exams_taken,
                     lead(y.current_streak) OVER (ORDER BY y.fetch_date DESC) AS previous_streak
                FROM (SELECT x.current_streak, x.highest_streak, x.total_videos_watched,
                             x.total_exams_taken, x.fetch_date
                        FROM student_activities x
                       WHERE x.student_id = m.id::text AND x.fetch_date IS NOT NULL
                       ORDER BY x.fetch_date DESC LIMIT 2) y
               ORDER BY y.fetch_date DESC LIMIT 1) act ON true
          LEFT JOIN LATERAL (
              SELECT count(*) AS attempts, nullif(avg(a.percentage), 'NaN') AS average,
                     max(a.date) AS last_at
                FROM attempts a WHERE a.user_id = m.id) sc ON true
          LEFT JOIN LATERAL (
              SELECT avg(t.p) FILTER (WHERE t.rn <= 5) AS recent_average,
                     CASE WHEN count(*) FILTER (WHERE t.rn > 5) >= 3
                          THEN avg(t.p) FILTER (WHERE t.rn > 5) END AS previous_average
                FROM (SELECT a.percentage AS p,
                             row_number() OVER (ORDER BY a.date DESC, a.id DESC) AS rn
                        FROM attempts a
                       WHERE a.user_id = m.id AND a.percentage IS NOT NULL
                       ORDER BY a.date DESC, a.id DESC LIMIT 10) t) rec ON true)
    SELECT *, count(*) OVER () AS total_count
      FROM measured
     ORDER BY {order} NULLS LAST, id
     LIMIT :limit OFFSET :offset"""

# Sort keys offered by the API and pages → the SQL column they order by (a fixed whitelist:
# nothing from the request reaches the SQL text).
MENTOR_SORTS = {
    "name": "sort_name",
    "current_streak": "current_streak",
    "average_score": "average",
    "last_activity": "last_at",
    "score_change": "score_change",
    "total_exams": "total_exams",   # what is displayed: the snapshot's count, else attempts
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FALLING_POINTS = 10.0


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return value.isoformat()


def _finite(value: Any) -> float | None:
    """``value`` as a float, or None for a missing or non-finite one: the LMS's float columns
    can hold NaN/Infinity, which JSON (RFC 8259 §6) cannot carry; such a score is "no score"."""
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value)


def _num(value: Any, places: int = 1) -> float | None:
    finite = _finite(value)
    return None if finite is None else round(finite, places)


def _name(first: str | None, last: str | None, display: str | None, username: str) -> str:
    return (display or "").strip() or f"{first or ''} {last or ''}".strip() or username


def fetch_owner(engine: Engine, student_id: int) -> dict | None:
    """Who a student belongs to (mentor, batch): what authorization needs, nothing more."""
    with lms_query(engine, "context_owner") as conn:
        row = conn.execute(_OWNER, {"sid": student_id}).mappings().first()
    if row is None:
        return None
    return {"id": row["id"], "mentor_id": row["mentor_id"], "batch_id": row["batch_id"],
            "active": bool(row["is_active"])}


def fetch_student(engine: Engine, student_id: int, now: dt.datetime) -> dict | None:
    """Student info, current course, recent activity and subject standing (profile TTL)."""
    params = {"sid": student_id, "now": now}
    with lms_query(engine, "context_student") as conn:
        row = conn.execute(_STUDENT, params).mappings().first()
        if row is None:
            return None
        summary = conn.execute(_ATTEMPT_SUMMARY, params).mappings().one()
        latest = conn.execute(_LATEST_ATTEMPTS, {**params, "limit": RECENT_ATTEMPTS}) \
            .mappings().all()
        subjects = conn.execute(_SUBJECTS, params).mappings().all()
        activity = conn.execute(_ACTIVITY, {"sid_text": str(student_id)}).mappings().first()
    mentor = None
    if row["mentor_id"] is not None:
        mentor = {"id": row["mentor_id"], "subject": f"mentor:{row['mentor_id']}",
                  "display_name": _name(row["mentor_first_name"], row["mentor_last_name"],
                                        row["mentor_display_name"], row["mentor_username"]),
                  "email": row["mentor_email"]}
    batch = None
    if row["batch_id"] is not None:
        batch = {"id": row["batch_id"], "name": row["batch_name"]}
    courses = []
    if row["course_id"] is not None:
        courses.append({"id": row["course_id"], "name": row["course_name"],
                        "batch_id": row["batch_id"], "batch_name": row["batch_name"]})
    return {
        "student": {
            "id": row["id"], "subject": f"student:{row['id']}", "username": row["username"],
            "email": row["email"], "first_name": row["first_name"] or "",
            "last_name": row["last_name"] or "",
            "display_name": _name(row["first_name"], row["last_name"], row["display_name"],
                                  row["username"]),
            "active": bool(row["is_active"]), "created": _iso(row["created"]),
            "batch": batch, "mentor": mentor},
        "current_courses": courses,
        "subjects": [_subject(s) for s in subjects],
        "recent_activity": {
            "last_attempt_at": _iso(summary["last_at"]),
            "attempts_last_7_days": summary["last_7_days"],
            "attempts_last_30_days": summary["last_30_days"],
            "activity_updated_at": _iso(activity["fetch_date"]) if activity else None,
            "recent_attempts": [{"id": a["id"], "date": _iso(a["date"]),
                                 "percentage": _num(a["percentage"])} for a in latest]},
    }


def _subject(row) -> dict:
    return {"subject": row["subject"], "average_score": _num(row["average"]),
            "best_score": _num(row["best"]), "lowest_score": _num(row["lowest"]),
            "attempts": row["attempts"], "recent_average": _num(row["recent_average"])}


def fetch_metrics(engine: Engine, student_id: int, now: dt.datetime) -> dict:
    """Streaks, average score, exams and videos, and recent-vs-previous scores (metrics TTL)."""
    params = {"sid": student_id, "now": now}
    with lms_query(engine, "context_metrics") as conn:
        snapshots = conn.execute(_ACTIVITY, {"sid_text": str(student_id)}).mappings().all()
        summary = conn.execute(_ATTEMPT_SUMMARY, params).mappings().one()
        latest = conn.execute(_LATEST_ATTEMPTS, {**params, "limit": 10}).mappings().all()
    latest_snapshot = snapshots[0] if snapshots else None
    scores = [a["percentage"] for a in latest if a["percentage"] is not None]
    recent = scores[:5]
    previous = scores[5:10]
    slope = summary["slope_per_day"] if (summary["last_90_days"] or 0) >= 3 else None
    return {
        "current_streak": latest_snapshot["current_streak"] if latest_snapshot else None,
        "highest_streak": latest_snapshot["highest_streak"] if latest_snapshot else None,
        "previous_streak": snapshots[1]["current_streak"] if len(snapshots) > 1 else None,
        "average_score": _num(summary["average"]),
        "total_exams": (latest_snapshot["total_exams_taken"]
                        if latest_snapshot and latest_snapshot["total_exams_taken"] is not None
                        else summary["attempts"]),
        "attempts_count": summary["attempts"],
        "videos_watched": latest_snapshot["total_videos_watched"] if latest_snapshot else None,
        "recent_average": _num(sum(recent) / len(recent)) if recent else None,
        "previous_average": _num(sum(previous) / len(previous)) if len(previous) >= 3 else None,
        "points_per_30_days": _num(slope * 30, 2) if slope is not None else None,
        "last_attempt_at": _iso(summary["last_at"]),
    }


def fetch_batch(engine: Engine, batch_id: int) -> dict | None:
    """The batch, its course, and every member's percentile rank (0-100) by average score."""
    with lms_query(engine, "context_batch") as conn:
        batch = conn.execute(_BATCH, {"batch": batch_id}).mappings().first()
        if batch is None:
            return None
        conn.execute(_NO_PARALLEL)
        ranks = conn.execute(_BATCH_RANKS, {"batch": batch_id}).all()
    return {"id": batch["id"], "name": batch["name"], "course_id": batch["course_id"],
            "course_name": batch["course_name"], "size": len(ranks),
            "ranks": {user_id: round(float(rank) * 100, 1) for user_id, rank in ranks}}


def fetch_performance(engine: Engine, student_id: int, now: dt.datetime) -> dict:
    """Exam history, subject performance and learning patterns (metrics TTL)."""
    params = {"sid": student_id, "now": now}
    since = dt.datetime.combine((now - dt.timedelta(weeks=TREND_WEEKS - 1)).date()
                                - dt.timedelta(days=now.weekday()), dt.time(), dt.UTC)
    with lms_query(engine, "context_performance") as conn:
        history = conn.execute(_EXAM_HISTORY, {**params, "limit": EXAM_HISTORY_LIMIT}) \
            .mappings().all()
        summary = conn.execute(_ATTEMPT_SUMMARY, params).mappings().one()
        subjects = conn.execute(_SUBJECTS, params).mappings().all()
        weekdays = {r["weekday"]: r for r in conn.execute(_WEEKDAYS, params).mappings()}
        weekly = conn.execute(_WEEKLY, {**params, "since": since}).mappings().all()
    return {
        "exam_history": {
            "total": summary["attempts"],
            "attempts": [{"id": h["id"], "date": _iso(h["date"]),
                          "percentage": _num(h["percentage"]),
                          "subjects": [{"subject": s["subject"], "score": _num(s["score"])}
                                       for s in h["subjects"]]} for h in history]},
        "subjects": [_subject(s) for s in subjects],
        "activity_by_weekday": [
            {"weekday": name, "iso_weekday": number,
             "attempts": weekdays[number]["attempts"] if number in weekdays else 0,
             "average_score": _num(weekdays[number]["average"]) if number in weekdays else None}
            for number, name in enumerate(WEEKDAYS, start=1)],
        "weekly_scores": [{"week_start": _iso(w["week_start"]), "attempts": w["attempts"],
                           "average_score": _num(w["average"])} for w in weekly],
        "slope_per_day": (_finite(summary["slope_per_day"])
                          if (summary["last_90_days"] or 0) >= 3 else None),
    }


def fetch_mentor(engine: Engine, mentor_id: int) -> dict | None:
    with lms_query(engine, "context_mentor") as conn:
        row = conn.execute(_MENTOR, {"mentor": mentor_id}).mappings().first()
    if row is None:
        return None
    return {"id": row["id"], "subject": f"mentor:{row['id']}", "email": row["email"],
            "display_name": _name(row["first_name"], row["last_name"], row["display_name"],
                                  row["username"])}


def fetch_mentor_students(engine: Engine, mentor_id: int, *, sort: str, descending: bool,
                          limit: int, offset: int) -> dict:
    """One page of the mentor's students with their metrics and flags, plus the total."""
    order = f"{MENTOR_SORTS[sort]} {'DESC' if descending else 'ASC'}"
    statement = text(_MENTOR_STUDENTS.format(order=order))
    with lms_query(engine, "context_mentor_students") as conn:
        conn.execute(_NO_PARALLEL)
        rows = conn.execute(statement, {"mentor": mentor_id, "limit": limit,
                                        "offset": offset}).mappings().all()
    total = rows[0]["total_count"] if rows else None
    return {"total": total, "students": [_listed(r) for r in rows]}


def _listed(row) -> dict:
    current, previous = row["current_streak"], row["previous_streak"]
    flags = []
    if not row["is_active"]:
        flags.append("inactive")
    if current is not None and ((current == 0 and (row["highest_streak"] or 0) > 0)
                                or (previous is not None and current < previous)):
        flags.append("streak_broken")
    if row["score_change"] is not None and row["score_change"] <= -FALLING_POINTS:
        flags.append("scores_falling")
    return {
        "id": row["id"], "subject": f"student:{row['id']}", "username": row["username"],
        "email": row["email"],
        "display_name": _name(row["first_name"], row["last_name"], row["display_name"],
                              row["username"]),
        "active": bool(row["is_active"]),
        "batch": {"id": row["batch_id"], "name": row["batch_name"]}
        if row["batch_id"] is not None else None,
        "current_streak": current, "highest_streak": row["highest_streak"],
        "average_score": _num(row["average"]), "total_exams": row["total_exams"],
        "videos_watched": row["total_videos_watched"],
        "last_attempt_at": _iso(row["last_at"]),
        "recent_average": _num(row["recent_average"]),
        "previous_average": _num(row["previous_average"]),
        "score_change": _num(row["score_change"]),
        "flags": flags,
    }
