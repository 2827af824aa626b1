"""Negative cases modelled on the OpenID Connect Basic OP certification plan: each answers the
proper OAuth error (JSON or redirect to the client) and never a 500."""

from __future__ import annotations

import base64

import pytest
import requests

from idp import clock
from tests.helpers import pkce_pair
from tests.oidc.conftest import (
    APP_REDIRECT,
    ZULIP_REDIRECT,
    authorize,
    exchange,
    get_code,
    redirect_params,
)


def oauth_error(response, status: int, error: str) -> dict:
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert body["error"] == error, body
    assert response.headers["Cache-Control"] == "no-store"
    return body


def test_code_reuse_is_refused_and_revokes_the_tokens_it_gave(live_server, rp,
                                                              browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    first = exchange(live_server, rp, code)
    assert first.status_code == 200
    access = first.json()["access_token"]
    oauth_error(exchange(live_server, rp, code), 400, "invalid_grant")
    userinfo = requests.get(live_server + "/oauth/userinfo",
                            headers={"Authorization": f"Bearer {access}"})
    assert userinfo.status_code == 401
    refresh = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret), data={
        "grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]})
    oauth_error(refresh, 400, "invalid_grant")


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example.com/complete/oidc/",
    ZULIP_REDIRECT.rstrip("/"),                      # not byte-equal
    ZULIP_REDIRECT.upper(),
    ZULIP_REDIRECT + "?x=1",
])
def test_unregistered_redirect_uri_is_never_redirected_to(live_server, rp, browser_session,
                                                          redirect_uri):
    response = authorize(browser_session, live_server, rp, redirect_uri=redirect_uri)
    oauth_error(response, 400, "invalid_request")
    assert "Location" not in response.headers


def test_redirect_uri_missing_or_different_at_the_token_endpoint(live_server, make_client,
                                                                 browser_session):
    client = make_client("two", redirect_uris=[APP_REDIRECT, APP_REDIRECT + "2"])
    oauth_error(authorize(browser_session, live_server, client, redirect_uri=None), 400,
                "invalid_request")
    code, _ = get_code(browser_session, live_server, client)
    response = requests.post(live_server + "/oauth/token", auth=(client.client_id,
                                                                 client.secret),
                             data={"grant_type": "authorization_code", "code": code,
                                   "redirect_uri": APP_REDIRECT + "2"})
    oauth_error(response, 400, "invalid_grant")


def test_pkce_missing_or_wrong_verifier(live_server, make_client, browser_session):
    public = make_client("spa", public=True)
    verifier, challenge = pkce_pair()
    # a public client must send a challenge, S256 only
    got = redirect_params(authorize(browser_session, live_server, public))
    assert got["error"] == "invalid_request" and got["state"].startswith("st-")
    got = redirect_params(authorize(browser_session, live_server, public,
                                    code_challenge=verifier, code_challenge_method="plain"))
    assert got["error"] == "invalid_request"

    code, _ = get_code(browser_session, live_server, public, code_challenge=challenge,
                       code_challenge_method="S256")
    oauth_error(exchange(live_server, public, code), 400, "invalid_request")   # missing
    oauth_error(exchange(live_server, public, code, code_verifier=pkce_pair()[0]), 400,
                "invalid_grant")                                            # wrong
    oauth_error(exchange(live_server, public, code, code_verifier="short"), 400,
                "invalid_request")                                          # malformed
    assert exchange(live_server, public, code, code_verifier=verifier).status_code == 200


def test_confidential_client_pkce_is_checked_when_used(live_server, rp, browser_session):
    _verifier, challenge = pkce_pair()
    code, _ = get_code(browser_session, live_server, rp, code_challenge=challenge,
                       code_challenge_method="S256")
    oauth_error(exchange(live_server, rp, code, code_verifier=pkce_pair()[0]), 400,
                "invalid_grant")


def test_expired_code(live_server, rp, browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    clock.advance(61)
    oauth_error(exchange(live_server, rp, code), 400, "invalid_grant")


def test_wrong_client_secret_basic_and_post(live_server, rp, browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": ZULIP_REDIRECT}
    basic = requests.post(live_server + "/oauth/token", data=data,
                          auth=(rp.client_id, rp.secret + "x"))
    oauth_error(basic, 401, "invalid_client")
    assert basic.headers["WWW-Authenticate"].startswith("Basic")
    post = requests.post(live_server + "/oauth/token",
                         data={**data, "client_id": rp.client_id, "client_secret": "nope"})
    assert post.status_code in (400, 401) and post.json()["error"] == "invalid_client"
    unknown = requests.post(live_server + "/oauth/token", data=data, auth=("nobody", "x"))
    oauth_error(unknown, 401, "invalid_client")
    # the code was not spent by the failed attempts
    assert exchange(live_server, rp, code).status_code == 200


def test_prompt_none_without_a_session(live_server, rp):
    got = redirect_params(authorize(requests.Session(), live_server, rp, prompt="none",
                                    state="keep-me"))
    assert got["error"] == "login_required" and got["state"] == "keep-me"


def test_prompt_none_with_a_session_and_untrusted_client(live_server, make_client,
                                                         browser_session):
    client = make_client("third-party", trusted=False)
    got = redirect_params(authorize(browser_session, live_server, client, prompt="none"))
    assert got["error"] == "consent_required"


def test_prompt_none_mixed_with_login_is_invalid(live_server, rp, browser_session):
    got = redirect_params(authorize(browser_session, live_server, rp, prompt="none login"))
    assert got["error"] == "invalid_request"


@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "bogus"])
def test_unsupported_response_type(live_server, rp, browser_session, response_type):
    got = redirect_params(authorize(browser_session, live_server, rp,
                                    response_type=response_type, state="s1"))
    assert got["error"] == "unsupported_response_type" and got["state"] == "s1"


def test_unsupported_response_type_for_unknown_client_is_not_redirected(live_server,
                                                                        browser_session):
    response = browser_session.get(live_server + "/oauth/authorize", allow_redirects=False,
                                   params={"response_type": "token", "client_id": "ghost",
                                           "redirect_uri": "https://evil.example.com/"})
    assert response.status_code == 400 and "Location" not in response.headers


@pytest.mark.parametrize("params,error", [
    ({"max_age": "soon"}, "invalid_request"),
    ({"response_mode": "fragment"}, "invalid_request"),
    ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"),
    ({"request_uri": "https://rp.example.com/req"}, "request_uri_not_supported"),
    ({"registration": "{}"}, "registration_not_supported"),
    ({"scope": "unknown-scope"}, "invalid_scope"),
    ({"scope": None}, "invalid_scope"),
    ({"scope": " "}, "invalid_scope"),
    ({"code_challenge": "x" * 10, "code_challenge_method": "S256"}, "invalid_request"),
    ({"nonce": "é"}, "invalid_request"),
    ({"login_hint": "a\x01b"}, "invalid_request"),
])
def test_malformed_parameters_are_redirected_errors(live_server, rp, browser_session, params,
                                                    error):
    got = redirect_params(authorize(browser_session, live_server, rp, **params))
    assert got["error"] == error


@pytest.mark.parametrize("query", [
    "client_id=A&client_id=B&response_type=code",
    "response_type=code&client_id=%ff%fe&redirect_uri=https://x",
    "response_type=code&client_id=abc&redirect_uri=https://x%22%5C%C3%A9",
    "response_type=code&redirect_uri=" + "https://x/" + "a" * 3000,
    "response_type=code&client_id=" + "z" * 5000,
    "response_type=co%00de&client_id=abc",
    "",
])
def test_malformed_or_oversize_requests_without_valid_client_get_an_error_page(
        live_server, browser_session, query):
    response = browser_session.get(live_server + "/oauth/authorize?" + query,
                                   allow_redirects=False)
    assert response.status_code == 400, response.text[:200]
    assert "Location" not in response.headers
    assert response.json()["error"] in ("invalid_request", "invalid_client")


def test_browsers_get_an_html_error_page(live_server, browser_session):
    response = browser_session.get(live_server + "/oauth/authorize?client_id=ghost"
                                   "&response_type=code&redirect_uri=https://x/",
                                   headers={"Accept": "text/html,*/*;q=0.8"},
                                   allow_redirects=False)
    assert response.status_code == 400 and "text/html" in response.headers["Content-Type"]
    assert "invalid_client" in response.text


def test_oversize_state_is_refused_and_not_echoed(live_server, rp, browser_session):
    got = redirect_params(authorize(browser_session, live_server, rp, state="s" * 1500))
    assert got["error"] == "invalid_request" and "state" not in got


def test_whole_request_too_long_for_the_login_round_trip(live_server, rp):
    got = redirect_params(authorize(requests.Session(), live_server, rp, nonce="n" * 1000,
                                    state="s" * 900))
    assert got["error"] == "invalid_request"


@pytest.mark.parametrize("data,auth,status,error", [
    ({"grant_type": "password", "username": "a", "password": "b"}, True, 400,
     "unsupported_grant_type"),
    ({"grant_type": "implicit"}, True, 400, "unsupported_grant_type"),
    ({}, True, 400, "unsupported_grant_type"),
    ({"grant_type": "authorization_code"}, True, 400, "invalid_request"),
    ({"grant_type": "authorization_code", "code": "x" * 400,
      "redirect_uri": ZULIP_REDIRECT}, True, 400, "invalid_grant"),
    ({"grant_type": "authorization_code", "code": "x" * 5000}, True, 400, "invalid_request"),
    ({"grant_type": "refresh_token"}, True, 400, "invalid_request"),
    ({"grant_type": "refresh_token", "refresh_token": "nope"}, True, 400, "invalid_grant"),
    ({"grant_type": "authorization_code", "code": "abc"}, False, 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, True, 400, "unauthorized_client"),
    ({"grant_type": "authorization_code", "code": "ab\x00c"}, True, 400, "invalid_request"),
])
def test_token_endpoint_errors(live_server, rp, data, auth, status, error):
    response = requests.post(live_server + "/oauth/token", data=data,
                             auth=(rp.client_id, rp.secret) if auth else None)
    oauth_error(response, status, error)


@pytest.mark.parametrize("header", [
    "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
    "Basic not-base64!!",
    "Basic " + base64.b64encode(b"no-colon").decode(),
    "Basic " + "A" * 5000,
])
def test_malformed_basic_credentials(live_server, header):
    response = requests.post(live_server + "/oauth/token", headers={"Authorization": header},
                             data={"grant_type": "client_credentials"})
    oauth_error(response, 401, "invalid_client")


def test_token_endpoint_body_too_large_repeated_fields_json_and_get(live_server, rp):
    big = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret),
                        data={"grant_type": "refresh_token", "pad": "x" * 40_000})
    oauth_error(big, 413, "invalid_request")
    repeated = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret),
                             data=[("grant_type", "refresh_token"),
                                   ("grant_type", "client_credentials")])
    oauth_error(repeated, 400, "invalid_request")
    as_json = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret),
                            json={"grant_type": "client_credentials"})
    oauth_error(as_json, 400, "unsupported_grant_type")
    get = requests.get(live_server + "/oauth/token")
    assert get.status_code == 405 and get.json()["error"] == "method_not_allowed"


def test_client_cannot_redeem_another_clients_code(live_server, rp, make_client,
                                                   browser_session):
    other = make_client("other", ZULIP_REDIRECT)
    code, _ = get_code(browser_session, live_server, rp)
    oauth_error(exchange(live_server, other, code), 400, "invalid_grant")
    assert exchange(live_server, rp, code).status_code == 200


def test_refresh_token_of_another_client_or_scope_widening(live_server, rp, make_client,
                                                           browser_session):
    other = make_client("other", ZULIP_REDIRECT)
    code, _ = get_code(browser_session, live_server, rp, scope="openid email")
    refresh = exchange(live_server, rp, code).json()["refresh_token"]
    stolen = requests.post(live_server + "/oauth/token", auth=(other.client_id, other.secret),
                           data={"grant_type": "refresh_token", "refresh_token": refresh})
    oauth_error(stolen, 400, "invalid_grant")
    wider = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret), data={
        "grant_type": "refresh_token", "refresh_token": refresh, "scope": "openid profile"})
    oauth_error(wider, 400, "invalid_scope")
    narrower = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret),
                             data={"grant_type": "refresh_token", "refresh_token": refresh,
                                   "scope": "openid"})
    assert narrower.status_code == 200 and narrower.json()["scope"] == "openid"


def test_expired_refresh_token(live_server, rp, browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    refresh = exchange(live_server, rp, code).json()["refresh_token"]
    clock.advance(31 * 86400)
    response = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret),
                             data={"grant_type": "refresh_token", "refresh_token": refresh})
    oauth_error(response, 400, "invalid_grant")


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer nope", "Basic abc",
                                    "Bearer " + "a" * 2000, "Bearer a b"])
def test_userinfo_refuses_missing_and_bad_tokens(live_server, header):
    headers = {"Authorization": header} if header is not None else {}
    for method in (requests.get, requests.post):
        response = method(live_server + "/oauth/userinfo", headers=headers)
        oauth_error(response, 401, "invalid_token")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_userinfo_needs_the_openid_scope(live_server, service):
    token = requests.post(live_server + "/oauth/token", auth=(service.client_id,
                                                              service.secret),
                          data={"grant_type": "client_credentials"}).json()["access_token"]
    response = requests.get(live_server + "/oauth/userinfo",
                            headers={"Authorization": f"Bearer {token}"})
    oauth_error(response, 403, "insufficient_scope")


def test_expired_access_token(live_server, rp, browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    access = exchange(live_server, rp, code).json()["access_token"]
    clock.advance(3601)
    response = requests.get(live_server + "/oauth/userinfo",
                            headers={"Authorization": f"Bearer {access}"})
    oauth_error(response, 401, "invalid_token")
