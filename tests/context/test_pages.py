"""Mentor pages (issue 6, "Mentor pages") through the Flask test client: sign-in, my students
with sorting and flags, one student with SVG charts and a Zulip link, the same not-found page
for another mentor's student as for a missing one, CSP-clean markup, audit rows."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent
from tests.helpers import client_login

ROW = re.compile(r'<tr data-student="(\d+)">')


@pytest.fixture
def mentor(client):
    client_login(client, "mentor1")
    return client


def test_pages_need_a_session(client):
    for path in ("/mentor", "/mentor/students/1"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=")
        assert path in response.headers["Location"].replace("%2F", "/")


def test_start_page_links_mentors_and_staff_only(client):
    client_login(client, "mentor1")
    assert 'href="/mentor"' in client.get("/").get_data(as_text=True)
    client_login(client, "staff1")
    assert 'href="/mentor"' in client.get("/").get_data(as_text=True)
    client_login(client, "student1")
    assert 'href="/mentor"' not in client.get("/").get_data(as_text=True)


def test_my_students_lists_the_mentors_students_in_pages(mentor, lms_facts):
    page = mentor.get("/mentor").get_data(as_text=True)
    rows = ROW.findall(page)
    assert len(rows) == min(25, lms_facts["mentor1_students"])
    assert f"{lms_facts['mentor1_students']} students" in page
    assert str(lms_facts["other_student"]) not in rows
    second = mentor.get("/mentor?page=2").get_data(as_text=True)
    rest = ROW.findall(second)
    assert len(rows) + len(rest) == lms_facts["mentor1_students"] and not set(rows) & set(rest)


def test_my_students_sorts_like_the_api(mentor):
    page = mentor.get("/mentor?sort=average_score&order=desc").get_data(as_text=True)
    api = mentor.get("/api/v1/lms/mentors/1/students?sort=average_score&order=desc&limit=25")
    assert [int(i) for i in ROW.findall(page)] == [s["id"] for s in api.json["students"]]
    assert 'aria-sort="descending"' in page


@pytest.mark.parametrize("query", ["sort=password", "order=up", "page=0", "page=x",
                                   "limit=100"])
def test_bad_list_links_are_400_pages(mentor, query):
    response = mentor.get("/mentor?" + query)
    assert response.status_code == 400
    assert "That link is not right" in response.get_data(as_text=True)


def test_students_cannot_open_the_mentor_page(client):
    client_login(client, "student1")
    assert client.get("/mentor").status_code == 403


def test_student_page_has_charts_metrics_and_zulip_link(app, mentor):
    from tests.context.test_zulip_links import known_in_zulip

    with app.app_context():
        known_in_zulip("student:1", "1001")
    response = mentor.get("/mentor/students/1")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'data-chart="score-trend"' in html and 'class="trend-line"' in html
    assert 'data-chart="subjects"' in html and html.count('class="bar ') >= 3
    assert 'data-chart="weekdays"' in html
    assert 'href="https://zulip.example.edu/#narrow/dm/1001-' in html
    assert "percentile in batch" in html and "Recommendations" in html


def test_zulip_url_setting_is_used_for_the_dm_link(make_app):
    # ZULIP_URL is shared with provisioning, which then needs a target too
    from tests.context.test_zulip_links import known_in_zulip

    app = make_app(ZULIP_URL="https://chat.example.org/",
                   ZULIP_SCIM_TOKEN="scim-token-for-tests-0123456789")
    with app.app_context():
        known_in_zulip("student:2", "1002")
    client = app.test_client()
    client_login(client, "mentor1")
    html = client.get("/mentor/students/2").get_data(as_text=True)
    assert 'href="https://chat.example.org/#narrow/dm/1002-' in html


def test_pages_are_csp_clean(mentor):
    for path in ("/mentor", "/mentor/students/1"):
        response = mentor.get(path)
        html = response.get_data(as_text=True)
        assert "<script" not in html and " style=" not in html and "<style" not in html
        assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Cache-Control"] == "no-store"


def test_another_mentors_student_gets_the_same_page_as_a_missing_one(mentor, lms_facts):
    forbidden = mentor.get(f"/mentor/students/{lms_facts['other_student']}")
    missing = mentor.get(f"/mentor/students/{lms_facts['max_student'] + 1000}")
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.get_data() == missing.get_data()
    assert "Student not found" in forbidden.get_data(as_text=True)


@pytest.mark.parametrize("raw", ["abc", "0", "-3", "99999999999"])
def test_bad_student_ids_are_400_pages(mentor, raw):
    response = mentor.get(f"/mentor/students/{raw}")
    assert response.status_code == 400
    assert "whole number" in response.get_data(as_text=True)


def test_student_may_open_their_own_page_only(client):
    client_login(client, "student1")
    assert client.get("/mentor/students/1").status_code == 200
    assert client.get("/mentor/students/2").status_code == 404


def test_page_views_are_audited(app, mentor, lms_facts):
    mentor.get("/mentor")
    mentor.get("/mentor/students/1")
    mentor.get(f"/mentor/students/{lms_facts['other_student']}")
    with app.app_context():
        rows = db.session.scalars(select(AuditEvent).where(
            AuditEvent.event == "context.read").order_by(AuditEvent.id)).all()
    assert [(r.outcome, r.detail["resource"], r.detail["channel"]) for r in rows] == [
        ("ok", "mentor_page", "page"), ("ok", "student_page", "page"),
        ("forbidden", "student_page", "page")]


def test_a_page_past_the_end_starts_over(mentor):
    response = mentor.get("/mentor?page=40&sort=average_score&order=desc")
    assert response.status_code == 302
    assert response.headers["Location"] == "/mentor?sort=average_score&order=desc"
