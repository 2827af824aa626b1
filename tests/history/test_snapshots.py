"""The learning history: a day's snapshot matches the raw LMS rows computed independently,
is idempotent, follows the school's time zone, is pruned after the retention, and can be
backfilled; the CLI refuses bad input with a clear message."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict

import pytest
from sqlalchemy import func, select

from idp import clock
from idp.config import ConfigError
from idp.extensions import db
from idp.history.models import HistoryDay, HistorySnapshot
from idp.history.read import student_history
from idp.history.settings import load_history_settings
from idp.history.snapshots import (
    backfill,
    day_end,
    last_complete_day,
    prune,
    take_snapshot,
)
from idp.history.worker import run_once

UTC = zoneinfo.ZoneInfo("UTC")
KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")


@pytest.fixture
def source(app):
    return app.extensions["history"].source


def yesterday() -> dt.date:
    return last_complete_day(clock.now(), UTC)


def count_rows(day: dt.date | None = None) -> int:
    query = select(func.count()).select_from(HistorySnapshot)
    if day is not None:
        query = query.where(HistorySnapshot.day == day)
    return db.session.execute(query).scalar_one()


def test_day_boundaries_follow_the_school_time_zone():
    day = dt.date(2026, 11, 26)
    assert day_end(day, UTC) == dt.datetime(2026, 11, 27, tzinfo=dt.UTC)
    assert day_end(day, KOLKATA) == dt.datetime(2026, 11, 26, 18, 30, tzinfo=dt.UTC)
    # 19:00 UTC on the 26th is already the 27th in Kolkata: the 26th is over there
    evening = dt.datetime(2026, 11, 26, 19, 0, tzinfo=dt.UTC)
    assert last_complete_day(evening, KOLKATA) == dt.date(2026, 11, 26)
    assert last_complete_day(evening, UTC) == dt.date(2026, 11, 25)
    # a DST change: the day ends at local midnight of the next day, whatever the offset
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    assert day_end(dt.date(2026, 3, 28), berlin) == dt.datetime(2026, 3, 28, 23, tzinfo=dt.UTC)
    assert day_end(dt.date(2026, 3, 29), berlin) == dt.datetime(2026, 3, 29, 22, tzinfo=dt.UTC)


def test_snapshot_matches_the_raw_lms_rows(app_ctx, source, raw):
    day = yesterday()
    cutoff = day_end(day, UTC)
    result = take_snapshot(source, day, UTC)
    active = raw("SELECT id, batch_id FROM students WHERE is_active AND created < :c", c=cutoff)
    assert result.students == result.inserted == len(active) == count_rows(day)
    attempts = raw("SELECT a.user_id, a.percentage, a.date, s.batch_id FROM attempts a "
                   "JOIN students s ON s.id = a.user_id WHERE a.date < :c", c=cutoff)
    by_student = defaultdict(list)
    for a in attempts:
        by_student[a["user_id"]].append(a)
    averages = {k: sum(a["percentage"] for a in v) / len(v) for k, v in by_student.items()}
    for student_id in (1, 2, 7, 33):
        days = student_history(student_id)
        assert [d.day for d in days] == [day]
        snap, mine = days[0], by_student[student_id]
        assert snap.attempts == len(mine)
        assert abs(snap.average - averages[student_id]) <= 0.05 + 1e-9
        assert snap.last_attempt_day == max(a["date"] for a in mine).astimezone(dt.UTC).date()
        activity = raw("SELECT * FROM student_activities WHERE student_id = :s AND "
                       "fetch_date <= :d ORDER BY fetch_date DESC LIMIT 1",
                       s=str(student_id), d=day)[0]
        assert (snap.current_streak, snap.best_streak, snap.videos_watched,
                snap.exams_taken) == (activity["current_streak"], activity["highest_streak"],
                                      activity["total_videos_watched"],
                                      activity["total_exams_taken"])
        batch = mine[0]["batch_id"]
        peers = sorted(averages[k] for k, v in by_student.items() if v[0]["batch_id"] == batch)
        below = sum(1 for p in peers if p < averages[student_id])
        expected = below / (len(peers) - 1) * 100 if len(peers) > 1 else 0.0
        assert abs(snap.percentile - expected) <= 0.05 + 1e-9
        subjects = raw("SELECT ss.subject, avg(ss.score) AS avg FROM attempts a JOIN "
                       "subject_stats ss ON ss.attempt_id = a.id WHERE a.user_id = :s AND "
                       "a.date < :c AND ss.score IS NOT NULL GROUP BY 1", s=student_id,
                       c=cutoff)
        assert set(snap.subjects) == {s["subject"] for s in subjects}
        for s in subjects:
            assert abs(snap.subjects[s["subject"]] - s["avg"]) <= 0.05 + 1e-9


def test_snapshot_is_idempotent_per_day(app_ctx, source):
    day = yesterday()
    first = take_snapshot(source, day, UTC)
    again = take_snapshot(source, day, UTC)
    forced = take_snapshot(source, day, UTC, force=True)
    assert again.skipped and not first.skipped
    assert forced.students == first.students and forced.inserted == 0
    assert count_rows(day) == first.students


def test_a_day_not_over_is_refused(app_ctx, source):
    today = clock.now().date()
    with pytest.raises(ValueError, match="not over yet"):
        take_snapshot(source, today, UTC)
    assert count_rows() == 0


def test_backfill_then_prune_after_the_retention(app_ctx, source):
    last = yesterday()
    results = backfill(source, last - dt.timedelta(days=2), last, UTC)
    assert [r.skipped for r in results] == [False, False, False]
    assert [r.skipped for r in backfill(source, last - dt.timedelta(days=2), last, UTC)] \
        == [True, True, True]
    assert db.session.execute(select(func.count()).select_from(HistoryDay)).scalar_one() == 3
    oldest, total = count_rows(last - dt.timedelta(days=2)), count_rows()
    clock.advance(400 * 86400)  # 400 days later, the three days are 401 to 403 days old
    assert prune(403, UTC) == 0
    assert prune(402, UTC) == oldest  # only the oldest day is past 402 days
    assert count_rows() == total - oldest


def test_worker_step_snapshots_yesterday_once(app_ctx, app):
    ext = app.extensions["history"]
    first = run_once(ext.source, ext.settings)
    second = run_once(ext.source, ext.settings)
    assert first.snapshot.day == yesterday() and first.snapshot.inserted > 0
    assert second.snapshot.skipped


def test_cli_snapshot_backfill_prune(app):
    runner = app.test_cli_runner()
    day = yesterday()
    out = runner.invoke(args=["history", "snapshot", "--day", day.isoformat()])
    assert out.exit_code == 0 and "new rows" in out.output, out.output
    out = runner.invoke(args=["history", "snapshot", "--day", day.isoformat()])
    assert "already taken" in out.output
    out = runner.invoke(args=["history", "backfill", "--days", "2"])
    assert out.exit_code == 0 and "1 days taken, 1 already there" in out.output, out.output
    assert "rows older than 400 days deleted" in runner.invoke(args=["history", "prune"]).output


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "'; DROP TABLE x", ""])
def test_cli_refuses_bad_days(app, value):
    out = app.test_cli_runner().invoke(args=["history", "snapshot", "--day", value])
    assert out.exit_code != 0 and "Traceback" not in out.output
    assert "is not a date" in out.output or "not over yet" in out.output


def test_cli_refuses_a_future_day(app):
    future = (clock.now() + dt.timedelta(days=3)).date().isoformat()
    out = app.test_cli_runner().invoke(args=["history", "snapshot", "--day", future])
    assert out.exit_code == 1 and "not over yet" in out.output


@pytest.mark.parametrize("name,value", [("IDP_SCHOOL_TIMEZONE", "Mars/Olympus"),
                                        ("IDP_SCHOOL_TIMEZONE", "../../etc/passwd"),
                                        ("IDP_HISTORY_RETENTION_DAYS", "5"),
                                        ("IDP_HISTORY_RETENTION_DAYS", "many")])
def test_bad_settings_name_the_variable(name, value):
    with pytest.raises(ConfigError) as error:
        load_history_settings({name: value})
    assert str(error.value).startswith(name)


def test_odd_lms_values_are_clamped_not_fatal(app_ctx, source, lms_admin):
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE student_activities SET current_streak = 99999, "
                    "highest_streak = 99999 WHERE student_id = '7'")
    result = take_snapshot(source, yesterday(), UTC)
    assert result.inserted > 0
    day = student_history(7)[-1]
    assert day.current_streak == day.best_streak == 32767
