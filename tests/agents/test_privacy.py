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


def _profile_errors(live_server, token) -> bool:
    from tests.agents.conftest import mcp_calls_with_token

    run = mcp_calls_with_token(live_server, token, [("get_student_profile", {"student_id": 1})])
    return run.results[0].is_error


def test_a_choice_changes_the_next_call_although_the_first_was_cached(app, live_server):
    from idp.agents.sharing import set_sharing
    from tests.agents.conftest import bound_token

    token = bound_token(app, "mentor1", resource=live_server + "/mcp")["access_token"]
    assert not _profile_errors(live_server, token)
    with app.app_context():
        set_sharing("student:1", False)
        db.session.commit()
    assert _profile_errors(live_server, token)
    with app.app_context():
        set_sharing("student:1", True)
        db.session.commit()
    assert not _profile_errors(live_server, token)


def test_a_choice_saved_by_another_process_applies_when_its_notice_arrives(app, live_server):
    """Another process's change reaches this one as the revocation listener's notice, which
    runs the cache droppers (idp.revocation.drop_from_caches)."""
    from sqlalchemy import event

    from idp import revocation
    from tests.agents.conftest import bound_token

    token = bound_token(app, "mentor1", resource=live_server + "/mcp")["access_token"]
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def seen(_conn, _cursor, sql, *_args) -> None:
        statements.append(sql)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert not _profile_errors(live_server, token)
        assert not _profile_errors(live_server, token)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert sum("FROM agent_sharing" in s for s in statements) == 1   # then this process's copy
    with app.app_context():   # as another process would: the row, no local drop
        db.session.execute(db.text(
            "INSERT INTO agent_sharing (subject, shares, updated_at) "
            "VALUES ('student:1', false, now())"))
        db.session.commit()
    assert not _profile_errors(live_server, token)   # this process has not heard yet
    revocation.drop_from_caches("student:1", app)     # the listener's notice
    assert _profile_errors(live_server, token)


def test_cached_choices_expire():
    from idp.agents.sharing import SharingChoices

    now = [0.0]
    choices = SharingChoices(ttl=10, timer=lambda: now[0])
    choices.put("student:1", False)
    now[0] = 9.9
    assert choices.get("student:1") is False
    now[0] = 10.1
    from idp.agents.sharing import _UNKNOWN

    assert choices.get("student:1") is _UNKNOWN
