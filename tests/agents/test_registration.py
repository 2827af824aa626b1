"""Dynamic client registration (RFC 7591) within its limits, and the switch that turns it off
or puts it behind approval."""

from __future__ import annotations

import pytest

from tests.agents.conftest import REDIRECT, authorize_code, register_agent
from tests.helpers import client_login, pkce_pair


def test_registers_a_public_untrusted_client(app, client):
    info = register_agent(client)
    assert info["token_endpoint_auth_method"] == "none" and "client_secret" not in info
    assert info["redirect_uris"] == [REDIRECT] and info["scope"] == "lms.context"
    with app.app_context():
        from idp.oidc.clients import find_client

        stored = find_client(info["client_id"])
        assert stored.public and not stored.trusted and stored.secret_hash is None


@pytest.mark.parametrize("metadata, error", [
    ({"redirect_uris": []}, "invalid_redirect_uri"),
    ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["cursor://callback"]}, "invalid_redirect_uri"),
    ({"redirect_uris": ["https://ok.example/cb#frag"]}, "invalid_redirect_uri"),
    ({"redirect_uris": "http://127.0.0.1/cb"}, "invalid_client_metadata"),
    ({"redirect_uris": [REDIRECT] * 6}, "invalid_redirect_uri"),
    ({"token_endpoint_auth_method": "client_secret_basic"}, "invalid_client_metadata"),
    ({"grant_types": ["client_credentials"]}, "invalid_client_metadata"),
    ({"grant_types": ["authorization_code", "implicit"]}, "invalid_client_metadata"),
    ({"response_types": ["token"]}, "invalid_client_metadata"),
    ({"scope": "lms.context admin"}, "invalid_client_metadata"),
    ({"scope": "email"}, "invalid_client_metadata"),
    ({"client_name": {"x": 1}}, "invalid_client_metadata"),
])
def test_metadata_outside_the_limits_is_refused(client, metadata, error):
    body = {"redirect_uris": [REDIRECT], **metadata}
    response = client.post("/oauth/register", json=body)
    assert response.status_code == 400 and response.json["error"] == error


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b"null", b"\xff\xfe", b'"str"'])
def test_malformed_bodies_are_refused(client, raw):
    response = client.post("/oauth/register", data=raw, content_type="application/json")
    assert response.status_code == 400 and response.json["error"] == "invalid_client_metadata"


def test_oversize_body_is_refused(client):
    response = client.post("/oauth/register", json={"redirect_uris": [REDIRECT],
                                                    "client_name": "x" * 20000})
    assert response.status_code == 413


def test_registration_is_rate_limited_per_address(make_app):
    limited = make_app(IDP_AGENTS_REGISTRATIONS_PER_HOUR="2")
    client = limited.test_client()
    for _ in range(2):
        register_agent(client)
    refused = client.post("/oauth/register", json={"redirect_uris": [REDIRECT]})
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "3600"
    other = client.post("/oauth/register", json={"redirect_uris": [REDIRECT]},
                        environ_base={"REMOTE_ADDR": "127.0.0.9"})
    assert other.status_code == 201


def test_registration_off(make_app):
    closed = make_app(IDP_AGENTS_REGISTRATION="off")
    client = closed.test_client()
    assert client.post("/oauth/register", json={"redirect_uris": [REDIRECT]}).status_code == 403
    metadata = client.get("/.well-known/oauth-authorization-server").json
    assert "registration_endpoint" not in metadata


def test_registration_behind_approval(make_app):
    held = make_app(IDP_AGENTS_REGISTRATION="approval")
    client = held.test_client()
    info = register_agent(client)
    assert "pending" in info["approval"]
    client_login(client, "mentor1")
    _verifier, challenge = pkce_pair()
    query = {"response_type": "code", "client_id": info["client_id"], "redirect_uri": REDIRECT,
             "scope": "lms.context", "state": "s", "code_challenge": challenge,
             "code_challenge_method": "S256"}
    refused = client.get("/oauth/authorize", query_string=query)
    assert refused.status_code == 302 and "error=unauthorized_client" in \
        refused.headers["Location"]
    result = held.test_cli_runner().invoke(args=["agents", "approve-client", info["client_id"]])
    assert result.exit_code == 0, result.output
    assert authorize_code(client, info["client_id"], resource=None, challenge=challenge)
    unknown = held.test_cli_runner().invoke(args=["agents", "approve-client", "nope"])
    assert unknown.exit_code != 0


@pytest.mark.parametrize("variable, value", [
    ("IDP_AGENTS_REGISTRATION", "maybe"), ("IDP_AGENTS_REGISTRATIONS_PER_HOUR", "0"),
    ("IDP_AGENTS_SHARE_DEFAULT", "perhaps"), ("ZULIP_CONTEXT_BOT_TOKEN", "short"),
    ("IDP_GRAPHQL_MAX_DEPTH", "1"), ("IDP_GRAPHQL_INTROSPECTION", "2")])
def test_bad_setting_stops_start(make_app, variable, value):
    from idp.config import ConfigError

    with pytest.raises(ConfigError, match=variable):
        make_app(**{variable: value})


@pytest.mark.parametrize("challenge, method", [(None, None), ("x" * 43, "plain")])
def test_registered_clients_must_use_pkce_s256(client, challenge, method):
    info = register_agent(client)
    client_login(client, "mentor1")
    query = {"response_type": "code", "client_id": info["client_id"], "redirect_uri": REDIRECT,
             "scope": "lms.context", "state": "s"}
    if challenge:
        query.update(code_challenge=challenge, code_challenge_method=method)
    response = client.get("/oauth/authorize", query_string=query)
    assert response.status_code == 302 and "error=invalid_request" in response.headers["Location"]


def test_prune_removes_abandoned_clients_and_dead_bindings(app, live_server):
    from idp.extensions import db
    from tests.agents.conftest import bound_token

    used = bound_token(app, "mentor1", resource=live_server + "/mcp")
    abandoned = register_agent(app.test_client())
    runner = app.test_cli_runner()
    with app.app_context():
        db.session.execute(db.text(
            "UPDATE oauth_client_registrations SET created_at = now() - interval '40 days'"))
        db.session.execute(db.text(
            "UPDATE oauth_resource_bindings SET created_at = now() - interval '2 days'"))
        db.session.commit()
    result = runner.invoke(args=["agents", "prune"])
    assert result.exit_code == 0, result.output
    assert "removed 1 unused registered clients, 0 resource bindings" in result.output
    with app.app_context():
        from idp.oidc.clients import find_client

        assert find_client(abandoned["client_id"]) is None
        assert find_client(used["client_id"]) is not None
        db.session.execute(db.text("DELETE FROM oidc_tokens"))
        db.session.execute(db.text("DELETE FROM oidc_authorization_codes"))
        db.session.commit()
    result = runner.invoke(args=["agents", "prune"])
    assert "removed 1 unused registered clients, 1 resource bindings" in result.output
