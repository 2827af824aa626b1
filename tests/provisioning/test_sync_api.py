"""POST /api/v1/lms/sync/students: staff session (with its CSRF token) or a bearer token with
scope lms.sync; a dry run by default, apply=true records the run behind the guard; hostile
input answered in JSON, never a 500, never a partial write."""

from __future__ import annotations

import re

import pytest

from tests.helpers import client_login, stored_bearer

from .conftest import outbox, runs

URL = "/api/v1/lms/sync/students"


def _token(app, scope: str, subject: str | None = None) -> dict:
    return stored_bearer(app, scope, subject)


def _staff(client) -> dict:
    client_login(client, "staff1")
    page = client.get("/admin/provisioning").get_data(as_text=True)
    return {"X-CSRFToken": re.search(r'data-csrf-token="([^"]+)"', page).group(1)}


@pytest.fixture
def sync_app(scim_app, realm):
    from .conftest import adopt_all

    with scim_app.app_context():
        adopt_all(scim_app, realm)
    return scim_app


def test_dry_run_by_service_token_plans_and_writes_nothing(sync_app, lms_admin):
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE id = 3")
    client = sync_app.test_client()
    with sync_app.app_context():
        before = (len(runs()), len(outbox()))
    response = client.post(URL, headers=_token(sync_app, "lms.sync"))
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.json
    assert body["dry_run"] is True and body["counts"] == {"deactivate": 1}
    assert body["actions"] == [{"subject": "student:3", "action": "deactivate",
                                "detail": "inactive"}]
    with sync_app.app_context():
        assert (len(runs()), len(outbox())) == before


def test_apply_by_staff_session_records_the_run(sync_app, lms_admin):
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE id = 3")
    client = sync_app.test_client()
    headers = _staff(client)
    response = client.post(URL, json={"apply": True}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["dry_run"] is False and response.json["run"]["status"] == "applied"
    with sync_app.app_context():
        assert [m.action for m in outbox("pending")] == ["deactivate"]


def test_apply_is_held_by_the_guard(sync_app, lms_admin):
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE id BETWEEN 1 AND 20")
    response = sync_app.test_client().post(URL + "?apply=true",
                                           headers=_token(sync_app, "lms.sync"))
    assert response.status_code == 200
    assert response.json["run"]["status"] == "held" and response.json["guard"]
    with sync_app.app_context():
        assert not outbox("pending")


@pytest.mark.parametrize("kwargs, status, error", [
    ({"json": {"apply": "yes"}}, 400, "invalid_request"),
    ({"json": {"apply": 1}}, 400, "invalid_request"),
    ({"json": [True]}, 400, "invalid_request"),
    ({"json": {"apply": False, "limit": 5}}, 400, "invalid_request"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "invalid_request"),
    ({"query_string": {"apply": "maybe"}}, 400, "invalid_request"),
    ({"data": "x" * (3 * 1024 * 1024), "content_type": "application/json"}, 413, None),
])
def test_hostile_bodies_are_refused_in_json(sync_app, kwargs, status, error):
    client = sync_app.test_client()
    with sync_app.app_context():
        before = len(runs())
    response = client.post(URL, headers=_token(sync_app, "lms.sync"), **kwargs)
    assert response.status_code == status
    if error:
        assert response.json["error"] == error
    with sync_app.app_context():
        assert len(runs()) == before


def test_who_may_call(sync_app):
    client = sync_app.test_client()
    anonymous = client.post(URL)
    assert anonymous.status_code == 401 and "lms.sync" in anonymous.headers["WWW-Authenticate"]
    wrong_scope = client.post(URL, headers=_token(sync_app, "lms.context"))
    assert wrong_scope.status_code == 403 and wrong_scope.json["error"] == "insufficient_scope"
    garbage = client.post(URL, headers={"Authorization": "Bearer " + "x" * 5000})
    assert garbage.status_code == 401 and garbage.json["error"] == "invalid_token"
    student_token = client.post(URL, headers=_token(sync_app, "lms.sync", "student:1"))
    assert student_token.status_code == 403
    mentor = sync_app.test_client()
    client_login(mentor, "mentor1")
    assert mentor.post(URL).status_code == 403
    staff = sync_app.test_client()
    client_login(staff, "staff1")
    no_csrf = staff.post(URL)
    assert no_csrf.status_code == 400 and "CSRF" in no_csrf.json["error_description"]


def test_plan_only_bridge_refuses_to_apply(app, client):
    response = client.post(URL, json={"apply": True}, headers=_token(app, "lms.sync"))
    assert response.status_code == 409 and response.json["error"] == "plan_only"
    assert client.post(URL, headers=_token(app, "lms.sync")).json["dry_run"] is True
