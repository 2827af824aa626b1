"""Real bearer tokens from the bridge's OIDC provider against the context API (RFC 6750):
client-credentials tokens of a service, authorization-code tokens of a person, expiry and
revocation, a client without the lms.context scope."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from idp import clock
from idp.extensions import db
from tests.context.conftest import basic_auth, register_client
from tests.helpers import http_login, pkce_pair

PROFILE = "/api/v1/lms/students/{}/profile"
MENTOR = "/api/v1/lms/mentors/{}/students"
REDIRECT = "https://agent.example.edu/callback"


def bearer(token: dict) -> dict:
    return {"Authorization": f"Bearer {token['access_token']}"}


def test_service_token_reads_any_student(client, service_token, lms_facts):
    assert "lms.context" in service_token["scope"].split()
    response = client.get(PROFILE.format(lms_facts["other_student"]),
                          headers=bearer(service_token))
    assert response.status_code == 200 and response.json["stale"] is False
    listed = client.get(MENTOR.format(lms_facts["other_mentor"]), headers=bearer(service_token))
    assert listed.status_code == 200


def test_service_token_access_is_audited_with_its_client(app, client, service_token):
    from sqlalchemy import select

    from idp.models import AuditEvent

    client.get(PROFILE.format(1), headers=bearer(service_token))
    with app.app_context():
        row = db.session.scalars(select(AuditEvent).where(
            AuditEvent.event == "context.read")).one()
    assert row.outcome == "ok" and row.subject is None
    assert row.detail["client_id"] == service_token["client"][0]
    assert service_token["access_token"] not in str(row.detail)


def test_expired_token_is_401(client, service_token):
    clock.advance(int(service_token["expires_in"]) + 1)
    response = client.get(PROFILE.format(1), headers=bearer(service_token))
    assert response.status_code == 401 and response.json["error"] == "invalid_token"


def test_revoked_token_is_401(client, service_token):
    client_id, secret = service_token["client"]
    revoked = client.post("/oauth/revoke", headers=basic_auth(client_id, secret),
                          data={"token": service_token["access_token"],
                                "token_type_hint": "access_token"})
    assert revoked.status_code == 200
    response = client.get(PROFILE.format(1), headers=bearer(service_token))
    assert response.status_code == 401 and response.json["error"] == "invalid_token"


def _user_token(app, base_url: str, login: str, scope: str = "openid lms.context") -> dict:
    """The authorization-code flow with PKCE for ``login``, over real HTTP."""
    client_id, secret = register_client(app, f"assistant-{login}", redirect_uris=[REDIRECT],
                                 trusted=True, scopes=scope.split())
    session = http_login(base_url, login)
    verifier, challenge = pkce_pair()
    response = session.get(base_url + "/oauth/authorize", allow_redirects=False, params={
        "response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
        "scope": scope, "state": "s1", "nonce": "n1",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert response.status_code == 302, response.text[:300]
    code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
    token = requests.post(base_url + "/oauth/token", auth=(client_id, secret), data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": verifier})
    assert token.status_code == 200, token.text
    return token.json()


def test_mentor_user_token_sees_own_students_only(app, live_server, lms_facts):
    token = _user_token(app, live_server, "mentor1")
    own = requests.get(live_server + PROFILE.format(1), headers=bearer(token))
    assert own.status_code == 200
    other = requests.get(live_server + PROFILE.format(lms_facts["other_student"]),
                         headers=bearer(token))
    missing = requests.get(live_server + PROFILE.format(lms_facts["max_student"] + 1000),
                           headers=bearer(token))
    assert other.status_code == missing.status_code == 404
    assert other.content == missing.content


def test_student_user_token_sees_only_themselves(app, live_server):
    token = _user_token(app, live_server, "student1")
    assert requests.get(live_server + PROFILE.format(1), headers=bearer(token)) \
        .status_code == 200
    assert requests.get(live_server + PROFILE.format(2), headers=bearer(token)) \
        .status_code == 404
    assert requests.get(live_server + MENTOR.format(1), headers=bearer(token)) \
        .status_code == 404


def test_staff_user_token_sees_everyone(app, live_server, lms_facts):
    token = _user_token(app, live_server, "staff1")
    response = requests.get(live_server + PROFILE.format(lms_facts["other_student"]),
                            headers=bearer(token))
    assert response.status_code == 200


def test_token_without_the_scope_is_403(app, live_server):
    token = _user_token(app, live_server, "staff1", scope="openid profile")
    response = requests.get(live_server + PROFILE.format(1), headers=bearer(token))
    assert response.status_code == 403 and response.json()["error"] == "insufficient_scope"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


def test_token_of_a_person_no_longer_active_is_401(app, live_server, lms_admin):
    token = _user_token(app, live_server, "student1")
    assert requests.get(live_server + PROFILE.format(1), headers=bearer(token)) \
        .status_code == 200
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE id = 1")
    response = requests.get(live_server + PROFILE.format(1), headers=bearer(token))
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"


def test_token_wins_over_session(client):
    from tests.helpers import client_login

    client_login(client, "staff1")
    response = client.get(PROFILE.format(1), headers={"Authorization": "Bearer made-up"})
    assert response.status_code == 401 and response.json["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
