"""/mcp's authorization: the 401 and the metadata documents, audience binding (RFC 8707),
what a mentor's and a student's agents may see, revocation, AI opt-out, hostile arguments."""

from __future__ import annotations

import pytest
import requests

from idp import revocation
from idp.extensions import db
from tests.agents.conftest import bound_token, mcp_calls_with_token


@pytest.fixture
def mcp_url(live_server) -> str:
    return live_server + "/mcp"


def _initialize(url: str, token: str | None = None) -> requests.Response:
    headers = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.post(url, headers=headers, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "t", "version": "1"}}})


def test_401_points_to_the_protected_resource_metadata(live_server, mcp_url):
    response = _initialize(mcp_url)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert (f'resource_metadata="{live_server}/.well-known/oauth-protected-resource/mcp"'
            in challenge)
    prm = requests.get(f"{live_server}/.well-known/oauth-protected-resource/mcp").json()
    assert prm["resource"] == mcp_url and prm["authorization_servers"] == [live_server]
    assert "lms.context" in prm["scopes_supported"]
    asm = requests.get(f"{live_server}/.well-known/oauth-authorization-server").json()
    assert asm["issuer"] == live_server
    assert asm["registration_endpoint"] == live_server + "/oauth/register"
    assert asm["code_challenge_methods_supported"] == ["S256"]


@pytest.mark.parametrize("header", ["Bearer nonsense", "Basic Zm9vOmJhcg==", "Bearer " + "a" * 700,
                                    "Bearer \u00e9t\u00e9"])
def test_bad_tokens_get_401_invalid_token(mcp_url, header):
    response = requests.post(mcp_url, headers={"Authorization": header.encode().decode(
        "latin-1"), "Content-Type": "application/json"}, data=b"{}")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_json_api_token_is_refused_by_mcp(app, mcp_url, live_server):
    unbound = bound_token(app, "mentor1", resource=None)
    response = _initialize(mcp_url, unbound["access_token"])
    assert response.status_code == 401
    assert "another resource" in response.json()["error_description"]
    # ... and still works where it belongs
    api = requests.get(live_server + "/api/v1/lms/students/1/profile",
                       headers={"Authorization": f"Bearer {unbound['access_token']}"})
    assert api.status_code == 200


def test_unknown_resource_is_invalid_target(app, live_server):
    from tests.agents.conftest import REDIRECT, register_agent
    from tests.helpers import client_login, pkce_pair

    client = app.test_client()
    info = register_agent(client)
    client_login(client, "mentor1")
    _verifier, challenge = pkce_pair()
    response = client.get("/oauth/authorize", query_string={
        "response_type": "code", "client_id": info["client_id"], "redirect_uri": REDIRECT,
        "scope": "lms.context", "state": "s", "code_challenge": challenge,
        "code_challenge_method": "S256", "resource": "https://evil.example/mcp"})
    assert response.status_code == 302
    assert "error=invalid_target" in response.headers["Location"]


def test_token_request_cannot_change_the_resource(app, live_server):
    from tests.agents.conftest import REDIRECT, authorize_code, register_agent
    from tests.helpers import client_login, pkce_pair

    client = app.test_client()
    info = register_agent(client)
    client_login(client, "mentor1")
    verifier, challenge = pkce_pair()
    code = authorize_code(client, info["client_id"], resource=None, challenge=challenge)
    response = client.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": info["client_id"], "code_verifier": verifier,
        "resource": live_server + "/mcp"})
    assert response.status_code == 400 and response.json["error"] == "invalid_target"


def test_refresh_keeps_the_binding(app, live_server, mcp_url):
    token = bound_token(app, "mentor1", resource=mcp_url)
    client = app.test_client()
    refreshed = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": token["refresh_token"],
        "client_id": token["client_id"], "resource": mcp_url})
    assert refreshed.status_code == 200, refreshed.get_data(as_text=True)
    assert _initialize(mcp_url, refreshed.json["access_token"]).status_code == 200
    api = requests.get(live_server + "/api/v1/lms/students/1/profile",
                       headers={"Authorization": f"Bearer {refreshed.json['access_token']}"})
    assert api.status_code == 401


def _call(live_server, token, name, arguments):
    run = mcp_calls_with_token(live_server, token, [(name, arguments)])
    return run.results[0]


def test_mentor_agent_does_not_find_another_mentors_student(app, live_server, mcp_url):
    from sqlalchemy import text

    with app.app_context():
        other = app.extensions["lms_directory"].engine.connect().execute(text(
            "SELECT id, username FROM students WHERE mentor_id <> 1 ORDER BY id LIMIT 1")).one()
    token = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    run = mcp_calls_with_token(live_server, token, [
        ("get_student_profile", {"student_id": other.id}),
        ("get_student_profile", {"student_id": 2_000_000}),
        ("find_student", {"query": other.username}),
        ("get_learning_patterns", {"student_id": other.id})])
    texts = [r.content[0].text for r in run.results]
    assert all(r.is_error for r in run.results)
    assert texts[0] == texts[1]          # forbidden and missing look the same
    assert all("is visible to you" in t for t in texts)


def test_student_agent_sees_only_themselves(app, live_server, mcp_url):
    token = bound_token(app, "student1", resource=mcp_url)["access_token"]
    run = mcp_calls_with_token(live_server, token, [
        ("get_student_profile", {"student_id": 1}),
        ("get_student_profile", {"student_id": 2}),
        ("list_my_students", {}),
        ("find_student", {"query": "student2"})])
    own, other, listing, found = run.results
    assert not own.is_error and own.structured_content["student"]["username"] == "student1"
    assert other.is_error and listing.is_error and found.is_error


def test_email_only_with_the_email_scope(app, live_server, mcp_url):
    token = bound_token(app, "mentor1", resource=mcp_url,
                        scope="lms.context lms.context.email")["access_token"]
    result = _call(live_server, token, "get_student_profile", {"student_id": 1})
    assert result.structured_content["student"]["email"].endswith("@example.edu")
    assert "@" in result.structured_content["student"]["mentor"]["email"]


@pytest.mark.parametrize("name, arguments", [
    ("get_student_profile", {"student_id": "1; DROP TABLE students"}),
    ("get_student_profile", {"student_id": -5}),
    ("get_student_profile", {"student_id": 2**63}),
    ("get_student_profile", {}),
    ("get_student_performance", {"student_id": None}),
    ("find_student", {"query": ""}),
    ("find_student", {"query": "x" * 5000}),
    ("find_student", {"query": "\x00"}),
    ("list_my_students", {"limit": 10**9}),
    ("list_my_students", {"offset": -1}),
    ("no_such_tool", {}),
])
def test_hostile_arguments_are_tool_errors(app, live_server, mcp_url, name, arguments):
    token = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    result = _call(live_server, token, name, arguments)
    assert result.is_error


def test_opted_out_student_is_not_found(app, live_server, mcp_url):
    from idp.agents.sharing import set_sharing

    with app.app_context():
        set_sharing("student:1", False)
        db.session.commit()
    token = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    run = mcp_calls_with_token(live_server, token, [
        ("get_student_profile", {"student_id": 1}),
        ("get_student_profile", {"student_id": 2_000_000}),
        ("find_student", {"query": "student1"}),
        ("list_my_students", {"limit": 200})])
    profile, missing, found, listing = run.results
    assert profile.is_error and profile.content[0].text == missing.content[0].text
    assert found.is_error
    assert 1 not in [s["id"] for s in listing.structured_content["students"]]


def test_mentor_removed_from_the_lms_loses_the_agent(app, live_server, mcp_url, lms_admin):
    token = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    assert _initialize(mcp_url, token).status_code == 200
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET mentor_id = NULL WHERE mentor_id = 1")
        cur.execute("DELETE FROM mentors WHERE id = 1")
    refused = _initialize(mcp_url, token)
    assert refused.status_code == 401 and 'error="invalid_token"' in \
        refused.headers["WWW-Authenticate"]
    with app.app_context():
        revocation.revoke_person(db.session, "mentor:1", "left the school")
        db.session.commit()
        revoked = db.session.execute(db.text(
            "SELECT count(*) FROM oidc_tokens WHERE subject = 'mentor:1' "
            "AND revoked_at IS NULL")).scalar()
    assert revoked == 0


def test_service_token_bound_to_mcp_reaches_every_student(app, live_server, mcp_url):
    from tests.context.conftest import basic_auth, register_client

    client_id, secret = register_client(app, "mcp-service", redirect_uris=[],
                                        grant_types=["client_credentials"],
                                        scopes=["lms.context"])
    response = requests.post(live_server + "/oauth/token", headers=basic_auth(client_id, secret),
                             data={"grant_type": "client_credentials", "scope": "lms.context",
                                   "resource": mcp_url})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    run = mcp_calls_with_token(live_server, token, [("get_student_profile", {"student_id": 7})])
    assert not run.results[0].is_error
    api = requests.get(live_server + "/api/v1/lms/students/7/profile",
                       headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401
    wrong = requests.post(live_server + "/oauth/token", headers=basic_auth(client_id, secret),
                          data={"grant_type": "client_credentials", "scope": "lms.context",
                                "resource": "https://elsewhere.example/mcp"})
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_target"


def test_get_and_unknown_methods_on_mcp(app, mcp_url):
    token = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    stream = requests.get(mcp_url, headers={"Authorization": f"Bearer {token}",
                                            "Accept": "text/event-stream"}, timeout=10)
    assert stream.status_code == 405
    assert requests.put(mcp_url, headers={"Authorization": f"Bearer {token}"}).status_code == 405


def test_hostile_json_rpc_bodies_are_protocol_errors(app, mcp_url):
    token = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
    for body in (b"", b"{", b"[]", b"null", b'{"jsonrpc": "2.0"}', b"\xff\xfe" * 10,
                 b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": 5}'):
        response = requests.post(mcp_url, headers=headers, data=body, timeout=10)
        assert 400 <= response.status_code < 500 or (
            response.status_code == 200 and "error" in response.json()), (body, response.text)
    wrong_host = requests.post(mcp_url, data=b"{}", headers={**headers, "Host": "evil.example"},
                               timeout=10)
    assert wrong_host.status_code in (400, 403, 421)


def test_oversize_body_and_a_forged_caller_header(app, mcp_url):
    token = bound_token(app, "mentor1", resource=mcp_url)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    big = requests.post(mcp_url, headers=headers, data=b" " * (300 * 1024), timeout=10)
    assert big.status_code == 413 and big.json()["error"]["code"] == -32600
    forged = _initialize(mcp_url)
    assert forged.status_code == 401
    response = requests.post(mcp_url, timeout=10, headers={
        **headers, "MCP-Protocol-Version": "2025-06-18", "X-Bridge-Agent-Call": "guess"},
        json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
              "params": {"name": "get_student_profile", "arguments": {"student_id": 1}}})
    assert response.status_code == 200 and not response.json()["result"].get("isError")
