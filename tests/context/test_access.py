"""Who may see what (issue 6, "Who may see what"): the authorization matrix over sessions and
bearer tokens, 404 for forbidden exactly like missing, and an audit row for every access."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from idp.extensions import db
from idp.models import AuditEvent, LoginSession
from tests.helpers import client_login

PROFILE = "/api/v1/lms/students/{}/profile"
PERFORMANCE = "/api/v1/lms/students/{}/performance"
MENTOR = "/api/v1/lms/mentors/{}/students"


def audit_rows(app) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(
            AuditEvent.event == "context.read").order_by(AuditEvent.id)))


def missing_id(facts) -> int:
    return facts["max_student"] + 1000


@pytest.mark.parametrize("path", [PROFILE, PERFORMANCE])
def test_mentor_sees_own_student(client, path):
    client_login(client, "mentor1")
    response = client.get(path.format(1))
    assert response.status_code == 200
    assert response.json["student"]["id"] == 1 and response.json["stale"] is False
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Vary"] == "Authorization, Cookie"


@pytest.mark.parametrize("path", [PROFILE, PERFORMANCE])
def test_mentor_gets_404_for_another_mentors_student_same_as_missing(client, lms_facts, path):
    client_login(client, "mentor1")
    forbidden = client.get(path.format(lms_facts["other_student"]))
    missing = client.get(path.format(missing_id(lms_facts)))
    assert forbidden.status_code == missing.status_code == 404
    assert forbidden.get_data() == missing.get_data()
    assert dict(forbidden.headers) == dict(missing.headers)
    assert forbidden.json["error"] == "not_found"


def test_mentor_list_own_only(client, lms_facts):
    client_login(client, "mentor1")
    own = client.get(MENTOR.format(1))
    assert own.status_code == 200 and own.json["mentor"]["id"] == 1
    assert own.json["paging"]["total"] == lms_facts["mentor1_students"]
    other = client.get(MENTOR.format(lms_facts["other_mentor"]))
    missing = client.get(MENTOR.format(999999))
    assert other.status_code == missing.status_code == 404
    assert other.get_data() == missing.get_data()


@pytest.mark.parametrize("path", [PROFILE, PERFORMANCE])
def test_student_sees_only_themselves(client, path):
    client_login(client, "student1")
    assert client.get(path.format(1)).status_code == 200
    other = client.get(path.format(2))
    assert other.status_code == 404 and other.json["error"] == "not_found"
    assert client.get(MENTOR.format(1)).status_code == 404


def test_staff_sees_everyone(client, lms_facts):
    client_login(client, "staff1")
    assert client.get(PROFILE.format(lms_facts["other_student"])).status_code == 200
    assert client.get(PERFORMANCE.format(1)).status_code == 200
    listed = client.get(MENTOR.format(lms_facts["other_mentor"]))
    assert listed.status_code == 200 and listed.json["mentor"]["id"] == lms_facts["other_mentor"]
    assert client.get(PROFILE.format(missing_id(lms_facts))).status_code == 404


def test_no_credentials_is_401_with_bearer_challenge(client):
    response = client.get(PROFILE.format(1))
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="lms-context", scope="lms.context"'


def test_session_of_a_person_deactivated_in_the_lms_ends(app, client, lms_admin):
    client_login(client, "student1")
    assert client.get(PROFILE.format(1)).status_code == 200
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE id = 1")
    assert client.get(PROFILE.format(1)).status_code == 401
    with app.app_context():
        live = db.session.scalars(select(LoginSession).where(
            LoginSession.subject == "student:1", LoginSession.revoked_at.is_(None))).all()
    assert live == []


# -- audit ------------------------------------------------------------------------------------

def test_every_access_is_audited(app, client, service_token, lms_facts):
    client.get(PROFILE.format(1))                                          # unauthenticated
    client_login(client, "mentor1")
    client.get(PROFILE.format(1))                                          # ok
    client.get(PERFORMANCE.format(lms_facts["other_student"]))             # forbidden
    client.get(PROFILE.format(missing_id(lms_facts)))                      # missing
    client.get(PROFILE.format("abc"))                                      # bad id
    client.get(MENTOR.format(1), query_string={"limit": "0"})              # bad paging
    client.get(MENTOR.format(1))                                           # ok
    client.get(PROFILE.format(1), headers=service_token["headers"])        # service ok
    client.get(PROFILE.format(1), headers={"Authorization": "Bearer nope"})  # refused
    rows = audit_rows(app)
    seen = [(r.outcome, r.subject, r.detail.get("resource"), r.detail.get("target"))
            for r in rows]
    other = f"student:{lms_facts['other_student']}"
    assert seen == [
        ("unauthenticated", None, "student_profile", None),
        ("ok", "mentor:1", "student_profile", "student:1"),
        ("forbidden", "mentor:1", "student_performance", other),
        ("not_found", "mentor:1", "student_profile", f"student:{missing_id(lms_facts)}"),
        ("bad_request", "mentor:1", "student_profile", None),
        ("bad_request", "mentor:1", "mentor_students", None),
        ("ok", "mentor:1", "mentor_students", "mentor:1"),
        ("ok", None, "student_profile", "student:1"),
        ("refused", None, "student_profile", None),
    ]
    assert rows[7].detail["client_id"] == service_token["client"][0]
    assert rows[7].detail["via"] == "token"
    assert all(r.detail["channel"] == "api" for r in rows)
    assert all("Bearer" not in str(r.detail) for r in rows)  # no token material
