"""GraphQL at /api/graphql: the same authorization as the JSON API and the MCP tools, and
its limits (depth, cost, aliases, introspection) against hostile queries."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.agents.conftest import bound_token

URL = "/api/graphql"


@pytest.fixture
def mentor_headers(app) -> dict:
    token = bound_token(app, "mentor1", resource=None)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def gql(client, headers, query, variables=None, **extra):
    body = {"query": query, **extra}
    if variables is not None:
        body["variables"] = variables
    return client.post(URL, json=body, headers=headers)


def test_mentor_reads_own_student_with_performance(client, mentor_headers):
    response = gql(client, mentor_headers, """
        query { me { subject kind }
                student(id: 1) { id displayName summary performance { trend
                                 subjects { subject status } recommendations { title } } } }""")
    assert response.status_code == 200, response.json
    data = response.json["data"]
    assert data["me"] == {"subject": "mentor:1", "kind": "mentor"}
    assert data["student"]["id"] == 1 and data["student"]["summary"]
    assert data["student"]["performance"]["trend"] in {"improving", "declining", "steady",
                                                       "unknown"}
    assert "errors" not in response.json


def test_other_mentors_student_is_null_and_not_found(app, client, mentor_headers):
    with app.app_context():
        conn = app.extensions["lms_directory"].engine.connect()
        other = conn.execute(text("SELECT id FROM students WHERE mentor_id <> 1 "
                                  "ORDER BY id LIMIT 1")).scalar()
        conn.close()
    for sid in (other, 1999999):
        response = gql(client, mentor_headers, "query($id: Int!) { student(id: $id) { id } }",
                       {"id": sid})
        assert response.json["data"] == {"student": None}
        assert response.json["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_email_is_an_unauthorised_field_without_its_scope(app, client, mentor_headers):
    response = gql(client, mentor_headers, "{ student(id: 1) { username email } }")
    assert response.json["data"]["student"] is None or \
        response.json["data"]["student"].get("email") is None
    assert response.json["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    token = bound_token(app, "mentor1", resource=None,
                        scope="lms.context lms.context.email")["access_token"]
    allowed = gql(client, {"Authorization": f"Bearer {token}"}, "{ student(id: 1) { email } }")
    assert "@" in allowed.json["data"]["student"]["email"]


def test_student_token_sees_only_themselves(app, client):
    token = bound_token(app, "student1", resource=None)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert gql(client, headers, "{ student(id: 1) { id } }").json["data"]["student"]["id"] == 1
    other = gql(client, headers, "{ student(id: 2) { id } }").json
    assert other["data"]["student"] is None
    listing = gql(client, headers, "{ myStudents { id } }").json
    assert listing["data"] is None or listing["errors"]


def test_cost_attack_is_refused_before_execution(app, client, mentor_headers):
    query = "{ myStudents(limit: 200) { profile { performance { recommendations { title } } } } }"
    response = gql(client, mentor_headers, query)
    assert response.status_code == 400
    assert response.json["errors"][0]["extensions"]["code"] == "TOO_COSTLY"
    with app.app_context():
        from idp.extensions import db

        reads = db.session.execute(text(
            "SELECT count(*) FROM audit_events WHERE detail->>'channel' = 'graphql'")).scalar()
    assert reads == 0


def test_alias_and_fragment_attacks_are_refused(client, mentor_headers):
    aliases = "{ " + " ".join(f"a{i}: student(id: 1) {{ id }}" for i in range(40)) + " }"
    assert gql(client, mentor_headers, aliases).status_code == 400
    fragments = """
        query { myStudents(limit: 100) { ...A } }
        fragment A on ListedStudent { profile { ...B } }
        fragment B on Student { performance { subjects { subject } } }"""
    assert gql(client, mentor_headers, fragments).status_code == 400
    cycle = "query { myStudents { ...A } } fragment A on ListedStudent { id ...A }"
    assert gql(client, mentor_headers, cycle).status_code == 400


def test_depth_limit(make_app, app):
    shallow = make_app(IDP_GRAPHQL_MAX_DEPTH="2").test_client()
    token = bound_token(app, "mentor1", resource=None)["access_token"]
    response = gql(shallow, {"Authorization": f"Bearer {token}"},
                   "{ student(id: 1) { performance { subjects { subject } } } }")
    assert response.status_code == 400 and "depth" in response.json["errors"][0]["message"]


def test_introspection_off_unless_enabled(make_app, app, client, mentor_headers):
    query = "{ __schema { types { name } } }"
    assert gql(client, mentor_headers, query).status_code == 400
    open_app = make_app(IDP_GRAPHQL_INTROSPECTION="true").test_client()
    assert gql(open_app, mentor_headers, query).json["data"]["__schema"]["types"]


def test_authentication(app, client, live_server):
    assert client.post(URL, json={"query": "{ me { kind } }"}).status_code == 401
    bad = client.post(URL, json={"query": "{ me { kind } }"},
                      headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and "WWW-Authenticate" in bad.headers
    mcp_token = bound_token(app, "mentor1", resource=live_server + "/mcp")["access_token"]
    refused = client.post(URL, json={"query": "{ me { kind } }"},
                          headers={"Authorization": f"Bearer {mcp_token}"})
    assert refused.status_code == 401


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"query": 5}', b'{"query": "{ me { kind }'
                                  b' }", "variables": []}', b'{"query": "{ nope }"}',
                                  b'{"query": "query($id: Int!) { student(id: $id) { id } }",'
                                  b' "variables": {"id": "x"}}',
                                  b'{"query": "{ student(id: 99999999999) { id } }"}',
                                  b'{"query": "{ myStudents(limit: -1) { id } }"}',
                                  b'{"query": "mutation { x }"}'])
def test_malformed_requests_get_graphql_errors_not_500(client, mentor_headers, body):
    response = client.post(URL, data=body, content_type="application/json",
                           headers=mentor_headers)
    assert response.status_code in (200, 400)
    assert response.json["errors"]
