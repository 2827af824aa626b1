"""The nudge surfaces: a student turns nudges off and on at /me (CSRF-protected), a mentor
mutes one of their own students (another mentor's gets the same 404 as a missing one),
/admin/nudges is staff-only and shows the plan and the counts."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.nudges.models import NudgeMute, NudgePreference
from tests.helpers import client_login, csrf_from
from tests.nudges.test_nudges import run, send_all


class Web:
    """A test client whose every request gets a fresh app context (the tests hold one open
    for database work; sharing its ``g`` across requests would share cached CSRF tokens)."""

    def __init__(self, app):
        self.app, self.client = app, app.test_client()

    def get(self, *args, **kwargs):
        with self.app.app_context():
            return self.client.get(*args, **kwargs)

    def post(self, *args, **kwargs):
        with self.app.app_context():
            return self.client.post(*args, **kwargs)


def signed_in(app, login: str) -> Web:
    web = Web(app)
    with app.app_context():
        client_login(web.client, login)
    return web


@pytest.fixture
def web(napp):
    return Web(napp)


def test_student_turns_nudges_off_and_on(napp, findings):
    web = signed_in(napp, "student2")
    page = web.get("/me").get_data(as_text=True)
    assert "Turn reminders off" in page
    token = csrf_from(page)
    response = web.post("/me/nudges", data={"csrf_token": token, "nudges": "off"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/me#nudges")
    assert db.session.get(NudgePreference, "student:2").nudges_off
    assert "Turn reminders on" in web.get("/me").get_data(as_text=True)
    token = csrf_from(web.get("/me").get_data(as_text=True))
    web.post("/me/nudges", data={"csrf_token": token, "nudges": "on"})
    db.session.expire_all()
    assert not db.session.get(NudgePreference, "student:2").nudges_off


@pytest.mark.parametrize("data,status", [({"nudges": "maybe"}, 400), ({}, 400)])
def test_preference_refuses_bad_input(napp, data, status):
    web = signed_in(napp, "student2")
    token = csrf_from(web.get("/me").get_data(as_text=True))
    assert web.post("/me/nudges", data={"csrf_token": token, **data}).status_code == status
    assert db.session.get(NudgePreference, "student:2") is None


def test_preference_needs_csrf_and_a_student(napp):
    web = signed_in(napp, "student2")
    assert web.post("/me/nudges", data={"nudges": "off"}).status_code == 400
    mentor = signed_in(napp, "mentor1")
    token = csrf_from(mentor.get("/mentor/students/3").get_data(as_text=True))
    assert mentor.post("/me/nudges", data={"csrf_token": token,
                                           "nudges": "off"}).status_code == 403
    assert db.session.get(NudgePreference, "student:2") is None


@pytest.fixture
def lms_facts(app):
    from sqlalchemy import text
    with app.extensions["lms_directory"].engine.connect() as conn:
        other = conn.execute(text("SELECT id FROM students WHERE mentor_id <> 1 "
                                  "ORDER BY id LIMIT 1")).scalar()
        top = conn.execute(text("SELECT max(id) FROM students")).scalar()
    return {"other_student": other, "max_student": top}


def test_mentor_mutes_own_student_only(napp, lms_facts):
    web = signed_in(napp, "mentor1")
    page = web.get("/mentor/students/3").get_data(as_text=True)
    assert "Mute nudges for this student" in page
    token = csrf_from(page)
    response = web.post("/mentor/students/3/mute", data={"csrf_token": token, "mute": "on"})
    assert response.status_code == 303
    assert db.session.get(NudgeMute, (1, 3)) is not None
    assert "Unmute" in web.get("/mentor/students/3").get_data(as_text=True)
    other = web.post(f"/mentor/students/{lms_facts['other_student']}/mute",
                     data={"csrf_token": token, "mute": "on"})
    missing = web.post(f"/mentor/students/{lms_facts['max_student'] + 99}/mute",
                       data={"csrf_token": token, "mute": "on"})
    assert other.status_code == missing.status_code == 404
    assert web.post("/mentor/students/abc/mute",
                    data={"csrf_token": token, "mute": "on"}).status_code == 400
    assert web.post("/mentor/students/3/mute",
                    data={"csrf_token": token, "mute": "loud"}).status_code == 400
    token = csrf_from(web.get("/mentor/students/3").get_data(as_text=True))
    web.post("/mentor/students/3/mute", data={"csrf_token": token, "mute": "off"})
    db.session.expire_all()
    assert db.session.get(NudgeMute, (1, 3)) is None


def test_admin_page_is_staff_only_and_shows_plan_and_counts(web, napp, findings):
    assert web.get("/admin/nudges").status_code == 302
    assert signed_in(napp, "mentor1").get("/admin/nudges").status_code == 403
    web = signed_in(napp, "staff1")
    html = web.get("/admin/nudges").get_data(as_text=True)
    assert "Plan for" in html and "course_not_started" in html and "digest" in html
    run(napp)
    send_all(napp)
    html = web.get("/admin/nudges").get_data(as_text=True)
    assert 'id="count-sent">4<' in html and "Run " in html and "(released)" in html
    assert html.count("<td>sent</td>") == 4
