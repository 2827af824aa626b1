"""Client credentials for services and the bearer contract of the context API, introspection,
revocation, RP-initiated logout, discovery and JWKS."""

from __future__ import annotations

import pytest
import requests
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

from idp import clock
from idp.oidc.resource import BearerError, BearerGrant, validate_bearer
from tests.oidc.conftest import ZULIP_REDIRECT, exchange, get_code


def client_credentials(base_url, client, **data) -> requests.Response:
    return requests.post(base_url + "/oauth/token", auth=(client.client_id, client.secret),
                         data={"grant_type": "client_credentials", **data})


def bearer(app, header, scope="lms.context"):
    with app.test_request_context():
        return validate_bearer(header, scope)


def bearer_error(app, header, scope="lms.context") -> tuple[int, str]:
    with pytest.raises(BearerError) as error:
        bearer(app, header, scope)
    return error.value.status, error.value.error


def test_client_credentials_token_for_the_context_api(app, live_server, service):
    response = client_credentials(live_server, service)
    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == "lms.context" and "refresh_token" not in body
    assert "id_token" not in body
    grant = bearer(app, f"Bearer {body['access_token']}")
    assert grant == BearerGrant(client_id=service.client_id, scopes=frozenset({"lms.context"}),
                                subject=None)
    # the scheme is case-insensitive (RFC 7235 §2.1)
    assert bearer(app, f"bearer {body['access_token']}").client_id == service.client_id


def test_client_credentials_scope_rules(live_server, service, make_client):
    for scope in ("openid", "lms.context openid", "email"):
        response = client_credentials(live_server, service, scope=scope)
        assert response.status_code == 400 and response.json()["error"] == "invalid_scope"
    unknown = client_credentials(live_server, service, scope="admin")
    assert unknown.json()["error"] == "invalid_scope"
    ok = client_credentials(live_server, service, scope="lms.context")
    assert ok.json()["scope"] == "lms.context"
    code_only = make_client("code-only")
    refused = client_credentials(live_server, code_only)
    assert refused.json()["error"] == "unauthorized_client"
    post = requests.post(live_server + "/oauth/token", data={
        "grant_type": "client_credentials", "client_id": service.client_id,
        "client_secret": service.secret})
    assert post.status_code == 200


def test_validate_bearer_contract(app, live_server, rp, service, browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    user_token = exchange(live_server, rp, code).json()["access_token"]
    assert bearer(app, f"Bearer {user_token}", "openid") == BearerGrant(
        client_id=rp.client_id, scopes=frozenset({"openid", "profile", "email"}),
        subject="student:1")
    assert bearer_error(app, f"Bearer {user_token}") == (403, "insufficient_scope")
    for header in (None, "", "Bearer", "Bearer unknown-token", "Basic abc",
                   "Bearer " + "a" * 700, f"Bearer {user_token} extra"):
        assert bearer_error(app, header) == (401, "invalid_token")
    service_token = client_credentials(live_server, service).json()["access_token"]
    requests.post(live_server + "/oauth/revoke", auth=(service.client_id, service.secret),
                  data={"token": service_token})
    assert bearer_error(app, f"Bearer {service_token}") == (401, "invalid_token")
    fresh = client_credentials(live_server, service).json()["access_token"]
    clock.advance(3600)
    assert bearer_error(app, f"Bearer {fresh}") == (401, "invalid_token")


def test_introspection_only_for_resource_servers(live_server, rp, make_client,
                                                 browser_session):
    resource = make_client("context-api", None, grant_types=["client_credentials"],
                           scopes=["lms.context"], resource_server=True)
    code, _ = get_code(browser_session, live_server, rp)
    tokens = exchange(live_server, rp, code).json()
    url = live_server + "/oauth/introspect"
    seen = requests.post(url, auth=(resource.client_id, resource.secret),
                         data={"token": tokens["access_token"]}).json()
    assert seen["active"] is True and seen["sub"] == "student:1"
    assert seen["client_id"] == rp.client_id and seen["scope"] == "openid profile email"
    assert seen["exp"] > clock.timestamp()
    refresh = requests.post(url, auth=(resource.client_id, resource.secret),
                            data={"token": tokens["refresh_token"],
                                  "token_type_hint": "refresh_token"}).json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    not_allowed = requests.post(url, auth=(rp.client_id, rp.secret),
                                data={"token": tokens["access_token"]})
    assert not_allowed.status_code == 200 and not_allowed.json() == {"active": False}
    anonymous = requests.post(url, data={"token": tokens["access_token"]})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    unknown = requests.post(url, auth=(resource.client_id, resource.secret),
                            data={"token": "nope"})
    assert unknown.json() == {"active": False}
    missing = requests.post(url, auth=(resource.client_id, resource.secret), data={})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    bad_hint = requests.post(url, auth=(resource.client_id, resource.secret),
                             data={"token": "x", "token_type_hint": "id_token"})
    assert bad_hint.json()["error"] == "unsupported_token_type"


def test_revocation(live_server, rp, make_client, browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    tokens = exchange(live_server, rp, code).json()
    other = make_client("other", ZULIP_REDIRECT)
    url = live_server + "/oauth/revoke"
    foreign = requests.post(url, auth=(other.client_id, other.secret),
                            data={"token": tokens["access_token"]})
    assert foreign.status_code == 400 and foreign.json()["error"] == "invalid_grant"
    assert requests.post(url, auth=(rp.client_id, rp.secret),
                         data={"token": "unknown"}).status_code == 200
    assert requests.post(url, auth=(rp.client_id, rp.secret),
                         data={"token": tokens["access_token"]}).status_code == 200
    userinfo = requests.get(live_server + "/oauth/userinfo",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401
    wrong = requests.post(url, auth=(rp.client_id, "bad"), data={"token": "x"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"


def _id_token(live_server, rp, browser_session) -> str:
    code, _ = get_code(browser_session, live_server, rp)
    return exchange(live_server, rp, code).json()["id_token"]


def test_rp_initiated_logout_with_registered_uri(live_server, rp, browser_session):
    id_token = _id_token(live_server, rp, browser_session)
    response = browser_session.get(live_server + "/oauth/logout", params={
        "id_token_hint": id_token,
        "post_logout_redirect_uri": "https://zulip.example.edu/accounts/login/",
        "state": "bye"}, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == \
        "https://zulip.example.edu/accounts/login/?state=bye"
    assert browser_session.get(live_server + "/", allow_redirects=False).status_code == 302


def test_rp_logout_never_redirects_to_an_unregistered_uri(live_server, rp, browser_session):
    id_token = _id_token(live_server, rp, browser_session)
    response = browser_session.get(live_server + "/oauth/logout", params={
        "id_token_hint": id_token, "post_logout_redirect_uri": "https://evil.example.com/"},
        allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
                                  "x" * 9000, "é"])
def test_rp_logout_with_a_bad_hint_is_an_error_not_a_logout(live_server, rp,
                                                             browser_session, hint):
    response = browser_session.get(live_server + "/oauth/logout", params={
        "id_token_hint": hint,
        "post_logout_redirect_uri": "https://zulip.example.edu/accounts/login/"},
        allow_redirects=False)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert browser_session.get(live_server + "/", allow_redirects=False).status_code == 200


def test_rp_logout_without_hint_asks_for_confirmation(live_server, browser_session):
    response = browser_session.get(live_server + "/oauth/logout", allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/logout"


def test_discovery_is_valid_and_every_endpoint_answers(live_server, make_app):
    config = requests.get(live_server + "/.well-known/openid-configuration").json()
    assert config["issuer"] == live_server
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert config[key].startswith(live_server)
        assert requests.get(config[key], allow_redirects=False).status_code != 404
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert {"zulip_role", "zulip_groups", "lms_kind"} <= set(config["claims_supported"])
    jwks = requests.get(config["jwks_uri"]).json()
    assert all(k["kid"] and k["alg"] == "RS256" and "d" not in k for k in jwks["keys"])
    # Authlib's metadata validators (they require https, as production does)
    https_app = make_app(IDP_ISSUER="https://sso.example.edu")
    document = https_app.test_client().get("/.well-known/openid-configuration",
                                           base_url="https://sso.example.edu").get_json()
    OpenIDProviderMetadata(document).validate()
    AuthorizationServerMetadata(document).validate()


def test_public_client_revokes_its_refresh_token_with_its_id_only(live_server, make_client,
                                                                  browser_session):
    from tests.helpers import pkce_pair

    public = make_client("spa", public=True)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser_session, live_server, public, code_challenge=challenge,
                       code_challenge_method="S256")
    tokens = exchange(live_server, public, code, code_verifier=verifier).json()
    revoked = requests.post(live_server + "/oauth/revoke", data={
        "token": tokens["refresh_token"], "client_id": public.client_id})
    assert revoked.status_code == 200
    refresh = requests.post(live_server + "/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": public.client_id})
    assert refresh.json()["error"] == "invalid_grant"
    # revoking the refresh token took its family's access token too (RFC 7009 §2.1)
    userinfo = requests.get(live_server + "/oauth/userinfo",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401


def test_introspection_with_client_secret_post(live_server, make_client, service):
    resource = make_client("rs", None, grant_types=["client_credentials"],
                           scopes=["lms.context"], resource_server=True)
    token = client_credentials(live_server, service).json()["access_token"]
    seen = requests.post(live_server + "/oauth/introspect", data={
        "token": token, "client_id": resource.client_id, "client_secret": resource.secret})
    assert seen.json()["active"] is True and "sub" not in seen.json()


def test_prune_keeps_live_and_recent_rows(app, live_server, rp, service, browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    exchange(live_server, rp, code)
    client_credentials(live_server, service)
    result = app.test_cli_runner().invoke(args=["oidc", "prune"])
    assert result.exit_code == 0 and "pruned 0 authorization codes and 0 tokens" in \
        result.output
    clock.advance(2 * 86400)   # service token and code long dead; refresh token still valid
    result = app.test_cli_runner().invoke(args=["oidc", "prune"])
    assert "pruned 1 authorization codes and 1 tokens" in result.output
    clock.advance(31 * 86400)
    result = app.test_cli_runner().invoke(args=["oidc", "prune"])
    assert "pruned 0 authorization codes and 1 tokens" in result.output


def test_token_metrics_have_bounded_labels(live_server, service):
    client_credentials(live_server, service)
    requests.post(live_server + "/oauth/token", data={"grant_type": "x" * 50})
    metrics = requests.get(live_server + "/metrics").text
    assert 'idp_oidc_token_requests_total{grant_type="client_credentials",outcome="issued"}' \
        in metrics
    assert 'grant_type="other",outcome="unsupported_grant_type"' in metrics
    assert "x" * 50 not in metrics


def test_client_removed_by_another_process_gets_no_token_despite_the_cache(app, live_server,
                                                                           service):
    """Clients are cached per process for 5 s; the token INSERT still refuses a removed one."""
    assert client_credentials(live_server, service).status_code == 200   # now cached
    with app.app_context():
        from idp.extensions import db

        db.session.execute(db.text("DELETE FROM oidc_tokens"))
        db.session.execute(db.text("DELETE FROM oidc_clients WHERE client_id = :c"),
                           {"c": service.client_id})
        db.session.commit()
    response = client_credentials(live_server, service)
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


def test_tokens_and_secrets_never_reach_the_log_even_at_debug(live_server, rp, service,
                                                              browser_session, caplog):
    import logging

    with caplog.at_level(logging.DEBUG):
        code, _ = get_code(browser_session, live_server, rp)
        tokens = exchange(live_server, rp, code).json()
        service_token = client_credentials(live_server, service).json()["access_token"]
    text = caplog.text
    for secret in (tokens["access_token"], tokens["refresh_token"], tokens["id_token"],
                   service_token, rp.secret, service.secret, code):
        assert secret not in text
