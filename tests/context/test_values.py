"""The numbers are right: answers compared with the same facts computed independently in Python
from the raw LMS rows, and the judgement rules (insights) checked on hand-made cases."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from sqlalchemy import text

from idp.context import insights
from tests.helpers import client_login


@pytest.fixture
def raw(app):
    engine = app.extensions["lms_directory"].engine

    def query(sql: str, **params):
        with engine.connect() as conn:
            return conn.execute(text(sql), params).mappings().all()

    return query


def close(reported: float | None, exact: float) -> bool:
    """One-decimal rounding of the same mean summed in another order."""
    return reported is not None and abs(reported - exact) <= 0.05 + 1e-9


@pytest.fixture
def staff(client):
    client_login(client, "staff1")
    return client


def averages_by_student(raw, batch_id: int) -> dict[int, float]:
    rows = raw("SELECT a.user_id, a.percentage FROM attempts a JOIN students s "
               "ON s.id = a.user_id WHERE s.batch_id = :b AND a.percentage IS NOT NULL",
               b=batch_id)
    scores = defaultdict(list)
    for r in rows:
        scores[r["user_id"]].append(r["percentage"])
    return {k: sum(v) / len(v) for k, v in scores.items()}


@pytest.mark.parametrize("student_id", [1, 2, 7, 33])
def test_profile_metrics_match_the_raw_rows(staff, raw, student_id):
    body = staff.get(f"/api/v1/lms/students/{student_id}/profile").json
    m = body["performance_metrics"]
    student = raw("SELECT batch_id FROM students WHERE id = :i", i=student_id)[0]
    averages = averages_by_student(raw, student["batch_id"])
    mine = averages[student_id]
    assert close(m["average_score"], mine)
    below = sum(1 for v in averages.values() if v < mine)
    assert m["percentile_rank"] == round(below / (len(averages) - 1) * 100, 1)
    assert m["batch_size"] == len(averages)
    snapshot = raw("SELECT * FROM student_activities WHERE student_id = :s "
                   "ORDER BY fetch_date DESC LIMIT 1", s=str(student_id))[0]
    assert m["current_streak"] == snapshot["current_streak"]
    assert m["highest_streak"] == snapshot["highest_streak"]
    assert m["total_exams"] == snapshot["total_exams_taken"]
    assert m["videos_watched"] == snapshot["total_videos_watched"]
    attempts = raw("SELECT id, date, percentage FROM attempts WHERE user_id = :i "
                   "ORDER BY date DESC", i=student_id)
    assert m["attempts_count"] == len(attempts)
    assert [a["id"] for a in body["recent_activity"]["recent_attempts"]] == \
        [a["id"] for a in attempts[:5]]


@pytest.mark.parametrize("student_id", [1, 3, 12])
def test_subject_standing_follows_the_documented_rule(staff, raw, student_id):
    rows = raw("SELECT ss.subject, ss.score FROM attempts a JOIN subject_stats ss "
               "ON ss.attempt_id = a.id WHERE a.user_id = :i", i=student_id)
    scores = defaultdict(list)
    for r in rows:
        scores[r["subject"]].append(r["score"])
    exact = {k: sum(v) / len(v) for k, v in scores.items()}
    avg = {k: round(v, 1) for k, v in exact.items()}
    mean = sum(avg.values()) / len(avg)
    struggling = sorted(k for k, v in avg.items() if v < 50 or v <= mean - 5)
    strong = sorted(k for k, v in avg.items()
                    if k not in struggling and (v >= 80 or v >= mean + 5))
    body = staff.get(f"/api/v1/lms/students/{student_id}/profile").json
    assert sorted(body["struggling_subjects"]) == struggling
    assert sorted(body["strong_subjects"]) == strong
    perf = staff.get(f"/api/v1/lms/students/{student_id}/performance").json
    reported = {s["subject"]: s["average_score"] for s in perf["subject_performance"]}
    assert reported.keys() == exact.keys()
    assert all(close(reported[k], exact[k]) for k in exact)


def test_performance_history_and_patterns(staff, raw):
    perf = staff.get("/api/v1/lms/students/1/performance").json
    attempts = raw("SELECT id, date FROM attempts WHERE user_id = 1 ORDER BY date DESC")
    history = perf["exam_history"]
    assert history["total"] == len(attempts)
    assert [a["id"] for a in history["attempts"]] == [a["id"] for a in attempts[:50]]
    assert all(len(a["subjects"]) == 2 for a in history["attempts"])
    weekdays = perf["learning_patterns"]["activity_by_weekday"]
    counted = defaultdict(int)
    for a in attempts:
        counted[a["date"].astimezone(dt.UTC).isoweekday()] += 1
    assert {d["iso_weekday"]: d["attempts"] for d in weekdays} == \
        {i: counted.get(i, 0) for i in range(1, 8)}
    assert all(r["reason"] for r in perf["recommendations"])


def test_mentor_list_metrics_match_the_raw_rows(staff, raw):
    listed = staff.get("/api/v1/lms/mentors/1/students?limit=200").json["students"]
    mine = raw("SELECT id FROM students WHERE mentor_id = 1")
    assert sorted(s["id"] for s in listed) == sorted(r["id"] for r in mine)
    for s in listed[:10]:
        rows = raw("SELECT percentage FROM attempts WHERE user_id = :i ORDER BY date DESC, "
                   "id DESC", i=s["id"])
        values = [r["percentage"] for r in rows]
        assert close(s["average_score"], sum(values) / len(values))
        assert close(s["recent_average"], sum(values[:5]) / 5)
        assert close(s["previous_average"], sum(values[5:10]) / 5)
        assert ("scores_falling" in s["flags"]) == (s["score_change"] <= -10)


# -- the rules on hand-made cases --------------------------------------------------------

def subject(name: str, average: float | None, attempts: int = 10) -> dict:
    return {"subject": name, "average_score": average, "attempts": attempts}


def test_classify_subjects():
    status = insights.classify_subjects([subject("A", 45.0), subject("B", 70.0),
                                         subject("C", 82.0), subject("D", None)])
    assert status == {"A": "struggling", "B": "steady", "C": "strong"}
    relative = insights.classify_subjects([subject("A", 60.0), subject("B", 70.0),
                                           subject("C", 71.0)])  # mean 67
    assert relative == {"A": "struggling", "B": "steady", "C": "steady"}
    assert insights.classify_subjects([subject("Only", 65.0)]) == {"Only": "steady"}


@pytest.mark.parametrize("metrics,broken", [
    ({"current_streak": 0, "highest_streak": 12, "previous_streak": None}, True),
    ({"current_streak": 1, "highest_streak": 12, "previous_streak": 9}, True),
    ({"current_streak": 3, "highest_streak": 12, "previous_streak": 9}, False),  # shorter
    ({"current_streak": 25, "highest_streak": 29, "previous_streak": 29}, False),  # issue 13
    ({"current_streak": 0, "highest_streak": 12, "previous_streak": 4}, False),  # short one
    ({"current_streak": 10, "highest_streak": 12, "previous_streak": 9}, False),
    ({"current_streak": 0, "highest_streak": 0, "previous_streak": None}, False),
    ({"current_streak": None, "highest_streak": None, "previous_streak": None}, False),
])
def test_streak_broken(metrics, broken):
    assert insights.streak_broken(metrics) is broken


def test_scores_falling_and_trend():
    assert insights.scores_falling({"recent_average": 60.0, "previous_average": 70.0})
    assert not insights.scores_falling({"recent_average": 61.0, "previous_average": 70.0})
    assert not insights.scores_falling({"recent_average": 60.0, "previous_average": None})
    assert [insights.trend_direction(v) for v in (None, 3.0, 2.9, -3.0)] == \
        ["unknown", "improving", "steady", "declining"]


def test_recommendations_carry_their_reasons():
    now = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    metrics = {"current_streak": 0, "highest_streak": 20, "previous_streak": 5,
               "recent_average": 50.0, "previous_average": 72.0, "videos_watched": 3,
               "total_exams": 10, "attempts_count": 10,
               "last_attempt_at": "2026-11-01T10:00:00Z"}
    weekdays = [{"weekday": d, "attempts": 8 if d == "Sunday" else 1} for d in
                ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")]
    recs = insights.recommendations(metrics, [subject("Physics", 41.0), subject("Maths", 75.0)],
                                    weekdays, 95.0, now)
    by_code = {r["code"]: r for r in recs}
    assert list(by_code) == ["scores_falling", "review_subject", "resume_practice",
                             "restart_streak", "watch_lessons", "spread_practice",
                             "stretch_goals", "peer_help"]
    assert "50.0%" in by_code["scores_falling"]["reason"] and \
        "72.0%" in by_code["scores_falling"]["reason"]
    assert by_code["review_subject"]["subject"] == "Physics"
    assert by_code["peer_help"]["subject"] == "Maths"
    assert "23 days" in by_code["resume_practice"]["reason"]  # 23 days 14 hours
    assert "8 of 14 attempts fell on a Sunday" in by_code["spread_practice"]["reason"]
    assert "it was 5 days" in by_code["restart_streak"]["reason"]
    fresh = insights.recommendations({"attempts_count": 0, "last_attempt_at": None}, [], [],
                                     None, now)
    assert [r["code"] for r in fresh] == ["first_attempt"]
