"""/me/privacy: a student's own choice about AI agents, behind sign-in and CSRF."""

from __future__ import annotations

import pytest

from idp.extensions import db
from tests.helpers import client_login, csrf_from


def _choice(app, subject: str) -> bool:
    from idp.agents.sharing import shares

    with app.test_request_context():
        return shares(subject)


def test_student_sees_and_changes_the_choice(app, client):
    client_login(client, "student1")
    start = client.get("/").get_data(as_text=True)
    assert "/me/privacy" in start
    page = client.get("/me/privacy")
    assert page.status_code == 200 and "<strong>may</strong>" in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    saved = client.post("/me/privacy", data={"csrf_token": token, "share": "no"})
    assert saved.status_code == 200 and "<strong>may not</strong>" in saved.get_data(
        as_text=True)
    assert _choice(app, "student:1") is False and _choice(app, "student:2") is True
    with app.app_context():
        audit = db.session.execute(db.text(
            "SELECT subject, outcome FROM audit_events WHERE event = 'agents.sharing'")).all()
    assert [tuple(r) for r in audit] == [("student:1", "off")]
    client.post("/me/privacy", data={"csrf_token": token, "share": "yes"})
    assert _choice(app, "student:1") is True


def test_without_csrf_nothing_changes(app, client):
    client_login(client, "student1")
    response = client.post("/me/privacy", data={"share": "no"})
    assert response.status_code == 400
    assert _choice(app, "student:1") is True


@pytest.mark.parametrize("value", ["", "maybe", "NO", "x" * 5000])
def test_bad_choice_is_refused(app, client, value):
    client_login(client, "student1")
    token = csrf_from(client.get("/me/privacy").get_data(as_text=True))
    response = client.post("/me/privacy", data={"csrf_token": token, "share": value})
    assert response.status_code == 400 and _choice(app, "student:1") is True


def test_signed_out_goes_to_login_and_mentors_have_no_form(client):
    assert client.get("/me/privacy").status_code == 302
    client_login(client, "mentor1")
    page = client.get("/me/privacy").get_data(as_text=True)
    assert "not a student account" in page and "<form" not in page


def test_school_default_off(make_app):
    strict = make_app(IDP_AGENTS_SHARE_DEFAULT="false")
    assert _choice(strict, "student:3") is False
