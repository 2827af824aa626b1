"""The official MCP SDK client against the live bridge: 401 → protected-resource metadata →
authorization-server metadata → dynamic registration → PKCE authorization in Chromium →
token bound to /mcp → tool calls; then what that token may and may not do."""

from __future__ import annotations

import json

import requests
from sqlalchemy import text

from idp.extensions import db


def _structured(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


def test_whole_flow_as_mentor(app, live_server, mcp_agent):
    run = mcp_agent("mentor1", [("list_my_students", {"limit": 5}),
                                ("get_student_profile", {"student_id": 1}),
                                ("find_student", {"query": "student2"}),
                                ("students_needing_attention", {})])
    paths = [url.split(live_server)[-1] for _method, url in run.seen_urls]
    # the discovery order the MCP authorization spec prescribes
    first_401 = paths.index("/mcp")
    assert paths.index("/.well-known/oauth-protected-resource/mcp") > first_401
    assert paths.index("/.well-known/oauth-authorization-server") > \
        paths.index("/.well-known/oauth-protected-resource/mcp")
    assert paths.index("/oauth/register") < paths.index("/oauth/token")
    assert {t.name for t in run.tools} == {
        "find_student", "get_student_profile", "get_student_performance",
        "get_learning_patterns", "list_my_students", "students_needing_attention"}
    assert all(t.output_schema for t in run.tools)
    listing, profile, found, attention = (_structured(r) for r in run.results)
    assert 1 <= len(listing["students"]) <= 5 and listing["summary"]
    assert profile["student"]["id"] == 1 and "email" not in profile["student"]
    assert profile["summary"].startswith(profile["student"]["display_name"])
    assert [m["username"] for m in found["matches"]] == ["student2"]
    assert found["matches"][0]["email"] is None
    assert isinstance(attention["students"], list) and attention["summary"]
    # the plain-language summary is also the text content
    assert json.loads(run.results[1].content[0].text)["summary"] == profile["summary"]
    # the token is bound to /mcp (RFC 8707) and every call is audited with person and client
    with app.app_context():
        bound = db.session.execute(text("SELECT resource FROM oauth_resource_bindings")) \
            .scalars().all()
        audited = db.session.execute(text(
            "SELECT subject, detail FROM audit_events WHERE event = 'context.read' "
            "AND detail->>'channel' = 'mcp' ORDER BY id")).all()
    assert bound == [live_server + "/mcp"]
    tools = [(row.subject, row.detail["resource"], row.detail.get("target")) for row in audited]
    assert ("mentor:1", "get_student_profile", "student:1") in tools
    client_id = run.storage.client_info.client_id
    assert all(row.detail["client_id"] == client_id for row in audited)


def test_mcp_token_is_refused_by_the_json_api_and_a_json_token_by_mcp(live_server, mcp_agent):
    run = mcp_agent("mentor1", [])
    token = run.storage.tokens.access_token
    api = requests.get(live_server + "/api/v1/lms/students/1/profile",
                       headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401 and api.json()["error"] == "invalid_token"
