"""The ``claims`` request parameter (OIDC Core §5.5) and ``acr``/``amr`` (issue 12 item 11)."""

from __future__ import annotations

import json
import re

import pytest
import requests

from idp.login.launch import sign_launch_token
from idp.oidc.claims import ACR_LAUNCH, ACR_PASSWORD
from tests.oidc.conftest import authorize, exchange, get_code, redirect_params
from tests.oidc.test_sessions_and_consent import id_token_claims, login_redirect, sign_in_at


def _claims(**members) -> str:
    return json.dumps(members)


def test_discovery_advertises_claims_parameter_acr_and_amr(live_server):
    config = requests.get(live_server + "/.well-known/openid-configuration").json()
    assert config["claims_parameter_supported"] is True
    assert set(config["acr_values_supported"]) == {ACR_PASSWORD, ACR_LAUNCH}
    assert {"acr", "amr", "email", "name"} <= set(config["claims_supported"])


def test_claims_parameter_adds_essential_claims_to_id_token_and_userinfo(live_server, rp,
                                                                        browser_session):
    """scope=openid alone, with name essential in the ID token and email in userinfo."""
    claims = _claims(id_token={"name": {"essential": True}, "acr": None},
                     userinfo={"email": {"essential": True}, "nickname": None})
    code, _ = get_code(browser_session, live_server, rp, scope="openid", claims=claims)
    token = exchange(live_server, rp, code)
    body = token.json()
    assert body["scope"] == "openid"
    id_claims = id_token_claims(token)
    assert id_claims["name"] and "email" not in id_claims
    assert id_claims["acr"] == ACR_PASSWORD and id_claims["amr"] == ["pwd"]
    info = requests.get(live_server + "/oauth/userinfo",
                        headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert info["email"] == "student1@example.edu" and "name" not in info
    refreshed = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret),
                              data={"grant_type": "refresh_token",
                                    "refresh_token": body["refresh_token"]}).json()
    info = requests.post(live_server + "/oauth/userinfo",
                         data={"access_token": refreshed["access_token"]}).json()
    assert info["email"] == "student1@example.edu"   # the request outlives a refresh


def test_claims_outside_the_clients_scopes_are_ignored(live_server, make_client,
                                                       browser_session):
    narrow = make_client("narrow", scopes=["openid"])
    code, _ = get_code(browser_session, live_server, narrow, scope="openid",
                       claims=_claims(id_token={"email": {"essential": True}}))
    claims = id_token_claims(exchange(live_server, narrow, code))
    assert "email" not in claims and claims["sub"] == "student:1"


def test_consent_page_shows_the_scope_of_individually_requested_claims(
        live_server, make_client, browser_session):
    third = make_client("third-party", trusted=False)
    page = authorize(browser_session, live_server, third, scope="openid",
                     claims=_claims(userinfo={"email": None}))
    assert page.status_code == 200 and "see your email address" in page.text


@pytest.mark.parametrize("claims", ["not json", "[]", '{"id_token": []}',
                                    '{"userinfo": {"email": 1}}',
                                    '{"id_token": {"name": {"essential": "yes"}}}',
                                    '{"id_token": {"acr": {"values": "x"}}}'])
def test_malformed_claims_parameter_is_invalid_request(live_server, rp, browser_session,
                                                       claims):
    got = redirect_params(authorize(browser_session, live_server, rp, claims=claims,
                                    state="c11"))
    assert got["error"] == "invalid_request" and got["state"] == "c11"


def test_launch_link_sign_in_has_its_own_acr_and_amr(app, live_server, rp):
    browser = requests.Session()
    token = sign_launch_token(app.config["IDP"], "student:1")
    assert browser.get(live_server + "/launch", params={"token": token, "next": "/"},
                       allow_redirects=False).status_code == 302
    code, _ = get_code(browser, live_server, rp)
    claims = id_token_claims(exchange(live_server, rp, code))
    assert claims["acr"] == ACR_LAUNCH and claims["amr"] == ["lms_launch"]
    # an essential acr the launch sign-in does not meet: the password is asked for
    essential = _claims(id_token={"acr": {"essential": True, "values": [ACR_PASSWORD]}})
    none = redirect_params(authorize(browser, live_server, rp, claims=essential,
                                     prompt="none"))
    assert none["error"] == "login_required"
    got = redirect_params(sign_in_at(browser, live_server,
                                     login_redirect(authorize(browser, live_server, rp,
                                                              claims=essential))))
    assert id_token_claims(exchange(live_server, rp, got["code"]))["acr"] == ACR_PASSWORD
    impossible = _claims(id_token={"acr": {"essential": True, "values": ["urn:x:mfa"]}})
    query = login_redirect(authorize(browser, live_server, rp, claims=impossible))
    assert redirect_params(sign_in_at(browser, live_server, query))["error"] == \
        "access_denied"


def test_deeply_nested_claims_is_invalid_request_not_a_crash(live_server, make_client,
                                                             browser_session):
    """The consent form takes up to 4096 characters of claims: 4000 "[" nest deeper than
    Python's JSON parser recursion limit."""
    third = make_client("third-party", trusted=False)
    page = authorize(browser_session, live_server, third, state="deep")
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    response = browser_session.post(live_server + "/oauth/authorize/consent", data={
        **form, "claims": "[" * 4000, "decision": "allow"}, allow_redirects=False)
    got = redirect_params(response)
    assert got["error"] == "invalid_request" and got["state"] == "deep"


def test_sub_requested_with_a_value_must_be_the_signed_in_person(live_server, rp,
                                                                 browser_session):
    """OIDC Core §5.5.1: only a positive response for the End-User named by sub."""
    other = _claims(id_token={"sub": {"value": "student:2"}})
    got = redirect_params(authorize(browser_session, live_server, rp, claims=other,
                                    prompt="none"))
    assert got["error"] == "login_required"
    same = _claims(id_token={"sub": {"value": "student:1"}})
    assert "code" in redirect_params(authorize(browser_session, live_server, rp, claims=same,
                                               prompt="none"))


def test_consent_form_changed_to_name_another_person_is_login_required(
        live_server, make_client, browser_session):
    third = make_client("third-party", trusted=False)
    page = authorize(browser_session, live_server, third, state="chg")
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    changed = {**form, "claims": _claims(id_token={"sub": {"value": "student:2"}}),
               "decision": "allow"}
    got = redirect_params(browser_session.post(live_server + "/oauth/authorize/consent",
                                               data=changed, allow_redirects=False))
    assert got["error"] == "login_required" and "code" not in got
