"""Context API regressions of issue 12 item 12: 405 carries Allow, a NaN score is null (valid
JSON), sort=total_exams orders by the displayed value."""

from __future__ import annotations

import json

import pytest

from tests.helpers import client_login


@pytest.fixture
def staff(client):
    client_login(client, "staff1")
    return client


def _strict(response) -> dict:
    """Parse as RFC 8259 JSON: NaN/Infinity are refused, as browsers' JSON.parse does."""
    def refuse(token):
        raise ValueError(f"not JSON: {token}")
    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_405_names_the_allowed_methods(staff, method):
    response = getattr(staff, method)("/api/v1/lms/students/1/profile")
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"GET", "HEAD"}
    assert "POST" not in response.headers["Allow"]


def test_nan_scores_are_null_and_the_answer_is_valid_json(staff, lms_admin):
    with lms_admin.cursor() as cur:
        cur.execute("SELECT id FROM students WHERE mentor_id = 1 ORDER BY id LIMIT 1")
        student = cur.fetchone()[0]
        cur.execute("INSERT INTO attempts (id, user_id, date, percentage) "
                    "SELECT max(id) + 1, %s, now(), 'NaN' FROM attempts RETURNING id",
                    (student,))
        attempt = cur.fetchone()[0]
        cur.execute("INSERT INTO subject_stats (id, attempt_id, subject, score) "
                    "SELECT max(id) + 1, %s, 'Physics', 'NaN' FROM subject_stats", (attempt,))
    profile = _strict(staff.get(f"/api/v1/lms/students/{student}/profile"))
    assert profile["performance_metrics"]["average_score"] is None
    performance = _strict(staff.get(f"/api/v1/lms/students/{student}/performance"))
    assert performance["learning_patterns"]["score_trend"]["points_per_30_days"] is None
    listed = _strict(staff.get("/api/v1/lms/mentors/1/students?sort=average_score&order=desc"
                               "&limit=200"))["students"]
    mine = [s for s in listed if s["id"] == student][0]
    assert mine["average_score"] is None
    assert listed.index(mine) > max(i for i, s in enumerate(listed)
                                    if s["average_score"] is not None)   # nulls sort last


def test_total_exams_sorts_by_the_displayed_value(staff, lms_admin):
    """A student without an activity snapshot shows their attempt count; sorting uses it too."""
    with lms_admin.cursor() as cur:
        cur.execute("SELECT s.id FROM students s WHERE s.mentor_id = 1 ORDER BY s.id LIMIT 3")
        ids = [r[0] for r in cur.fetchall()]
        cur.execute("DELETE FROM student_activities WHERE student_id = ANY(%s)",
                    ([str(i) for i in ids],))
        cur.execute("DELETE FROM attempts WHERE user_id = %s", (ids[0],))
    for order in ("desc", "asc"):
        listed = staff.get(f"/api/v1/lms/mentors/1/students?sort=total_exams&order={order}"
                           "&limit=200").json["students"]
        shown = [s["total_exams"] for s in listed]
        assert None not in shown
        assert shown == sorted(shown, reverse=order == "desc")
        assert [s["total_exams"] for s in listed if s["id"] == ids[0]] == [0]
