"""Regressions of issue 12 (OIDC items 6-9), each with the request that showed the defect."""

from __future__ import annotations

import pytest
import requests

from idp import clock
from tests.helpers import http_login
from tests.oidc.conftest import authorize, exchange, get_code, redirect_params
from tests.oidc.test_sessions_and_consent import login_redirect, sign_in_at

LOGOUT_URI = "https://zulip.example.edu/accounts/login/"


def _tokens(live_server, client, session, **params) -> dict:
    code, _ = get_code(session, live_server, client, **params)
    response = exchange(live_server, client, code)
    assert response.status_code == 200, response.text
    return response.json()


def _signed_in(session, live_server) -> bool:
    return session.get(live_server + "/", allow_redirects=False).status_code == 200


# -- item 6: RP-initiated logout ---------------------------------------------------------------
@pytest.mark.parametrize("uri", ["https://evil.example.com/", LOGOUT_URI + "?next=/x",
                                 LOGOUT_URI.rstrip("/"), LOGOUT_URI.upper()])
def test_logout_with_refused_post_logout_uri_is_an_error_not_a_silent_sign_out(
        live_server, rp, browser_session, uri):
    id_token = _tokens(live_server, rp, browser_session)["id_token"]
    response = browser_session.get(live_server + "/oauth/logout", params={
        "id_token_hint": id_token, "post_logout_redirect_uri": uri, "state": "s1"},
        allow_redirects=False)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "cannot be used" in response.text and "still signed in" in response.text
    assert "You are signed out" not in response.text
    assert _signed_in(browser_session, live_server)


def test_logout_with_expired_hint_and_state_redirects_with_state(live_server, rp,
                                                                 browser_session):
    id_token = _tokens(live_server, rp, browser_session)["id_token"]
    clock.advance(2 * 3600)   # past the ID token's exp: still accepted (§2 SHOULD)
    response = browser_session.get(live_server + "/oauth/logout", params={
        "id_token_hint": id_token, "post_logout_redirect_uri": LOGOUT_URI,
        "client_id": rp.client_id, "state": "a b&c"}, allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == LOGOUT_URI + "?state=a+b%26c"


def test_logout_client_id_not_the_hints_audience_is_refused(live_server, rp, make_client,
                                                            browser_session):
    other = make_client("other-rp", post_logout_redirect_uris=[LOGOUT_URI])
    id_token = _tokens(live_server, rp, browser_session)["id_token"]
    response = browser_session.get(live_server + "/oauth/logout", params={
        "id_token_hint": id_token, "client_id": other.client_id,
        "post_logout_redirect_uri": LOGOUT_URI}, allow_redirects=False)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert _signed_in(browser_session, live_server)


def test_logout_hint_signed_by_the_bridge_for_another_issuer_is_refused(app, live_server, rp,
                                                                       browser_session):
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from idp.keys import get_keystore

    with app.app_context():
        key = get_keystore().current()
        forged = jwt.encode({"alg": "RS256", "kid": key.kid},
                            {"iss": "https://elsewhere.example.com", "sub": "student:1",
                             "aud": rp.client_id},
                            RSAKey.import_key(key.private_pem))
    response = browser_session.get(live_server + "/oauth/logout", params={
        "id_token_hint": forged, "post_logout_redirect_uri": LOGOUT_URI},
        allow_redirects=False)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert _signed_in(browser_session, live_server)


# -- item 7: id_token_hint in the authorization request ----------------------------------------
def test_prompt_none_with_hint_for_another_person_is_login_required(live_server, rp):
    mentor = http_login(live_server, "mentor1")
    hint = _tokens(live_server, rp, mentor)["id_token"]            # sub = mentor:1
    student = http_login(live_server, "student1")
    got = redirect_params(authorize(student, live_server, rp, prompt="none",
                                    id_token_hint=hint, state="p7"))
    assert got["error"] == "login_required" and got["state"] == "p7" and "code" not in got


def test_prompt_none_with_hint_for_the_signed_in_person_succeeds(live_server, rp,
                                                                 browser_session):
    hint = _tokens(live_server, rp, browser_session)["id_token"]
    got = redirect_params(authorize(browser_session, live_server, rp, prompt="none",
                                    id_token_hint=hint))
    assert "code" in got


def test_hint_for_another_person_without_prompt_asks_for_sign_in(live_server, rp):
    mentor = http_login(live_server, "mentor1")
    hint = _tokens(live_server, rp, mentor)["id_token"]
    student = http_login(live_server, "student1")
    query = login_redirect(authorize(student, live_server, rp, id_token_hint=hint))
    assert query["reauth"] == "1"
    wrong = redirect_params(sign_in_at(student, live_server, query, login="student2"))
    assert wrong["error"] == "login_required" and "code" not in wrong
    query = login_redirect(authorize(student, live_server, rp, id_token_hint=hint))
    right = redirect_params(sign_in_at(student, live_server, query, login="mentor1"))
    assert "code" in right


@pytest.mark.parametrize("hint", ["garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_bad_id_token_hint_is_invalid_request(live_server, rp, browser_session, hint):
    got = redirect_params(authorize(browser_session, live_server, rp, id_token_hint=hint,
                                    prompt="none"))
    assert got["error"] == "invalid_request"


# -- item 8: unknown scopes are ignored -----------------------------------------------------
def test_unknown_scopes_are_ignored_and_the_known_granted(live_server, rp, browser_session):
    got = redirect_params(authorize(browser_session, live_server, rp,
                                    scope="openid email address phone offline_access x.y"))
    assert "code" in got
    token = exchange(live_server, rp, got["code"]).json()
    assert token["scope"] == "openid email" and "id_token" in token


def test_only_unknown_scopes_is_still_invalid_scope(live_server, rp, browser_session):
    got = redirect_params(authorize(browser_session, live_server, rp, scope="address phone"))
    assert got["error"] == "invalid_scope"


# -- item 9: userinfo with the token in a form body ------------------------------------------
def test_userinfo_accepts_the_token_in_a_form_encoded_post_body(live_server, rp,
                                                               browser_session):
    access = _tokens(live_server, rp, browser_session)["access_token"]
    response = requests.post(live_server + "/oauth/userinfo", data={"access_token": access})
    assert response.status_code == 200 and response.json()["sub"] == "student:1"


def test_userinfo_refuses_two_methods_the_query_and_repeats(live_server, rp, browser_session):
    access = _tokens(live_server, rp, browser_session)["access_token"]
    both = requests.post(live_server + "/oauth/userinfo", data={"access_token": access},
                         headers={"Authorization": f"Bearer {access}"})
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    query = requests.get(live_server + "/oauth/userinfo", params={"access_token": access})
    assert query.status_code == 400 and query.json()["error"] == "invalid_request"
    repeated = requests.post(live_server + "/oauth/userinfo",
                             data=[("access_token", access), ("access_token", access)])
    assert repeated.status_code == 400 and repeated.json()["error"] == "invalid_request"
    bad = requests.post(live_server + "/oauth/userinfo", data={"access_token": "a b\x01"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_token"
    as_json = requests.post(live_server + "/oauth/userinfo", json={"access_token": access})
    assert as_json.status_code == 401   # only the form encoding is a token method (§2.2)


def test_logout_errors_are_worded_for_sign_out_in_browsers(live_server, rp, browser_session):
    response = browser_session.get(live_server + "/oauth/logout", params={
        "id_token_hint": "garbage", "post_logout_redirect_uri": LOGOUT_URI},
        headers={"Accept": "text/html"}, allow_redirects=False)
    assert response.status_code == 400 and "sign-out request cannot be used" in response.text
    assert "sign-in request" not in response.text


def test_prompt_none_with_a_full_id_token_as_hint_fits(live_server, rp):
    """The hint Zulip-like RPs hold carries profile and email claims (about 1 kB)."""
    mentor = http_login(live_server, "mentor1")
    hint = _tokens(live_server, rp, mentor, scope="openid profile email")["id_token"]
    got = redirect_params(authorize(mentor, live_server, rp, prompt="none",
                                    scope="openid profile email", id_token_hint=hint))
    assert "code" in got, got


@pytest.mark.parametrize("path,allowed", [("/oauth/token", {"POST"}),
                                          ("/account/apps/revoke", {"POST"}),
                                          ("/oauth/userinfo", {"GET", "HEAD", "POST"})])
def test_oidc_405_answers_name_the_allowed_methods(live_server, path, allowed):
    response = requests.put(live_server + path)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} - {"OPTIONS"} == allowed
