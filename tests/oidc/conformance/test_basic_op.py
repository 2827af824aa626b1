"""OpenID certification plan "Basic OP" (oidcc-basic-certification-test-plan, code flow,
discovery, static client): each module of the plan, named as the conformance suite names it,
run against the live bridge with pyoidc as the relying party.

A module passes when the bridge does what the suite's module checks (the suite's own
assertions, summarised in each function's docstring). Each module runs over plain http on the
test server and over https through nginx and the shipped server (the ``op`` fixture, conftest.py).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
import requests
from oic.oic.message import AccessTokenResponse

from tests.helpers import pkce_pair
from tests.oidc.conformance.rp import RelyingParty
from tests.oidc.conftest import redirect_params
from tests.oidc.test_sessions_and_consent import login_redirect, sign_in_at


def happy(rp: RelyingParty, browser, **params):
    flow = rp.authorize(browser, **params)
    assert "code" in flow.params, flow.params
    token = rp.token(flow)
    assert isinstance(token, AccessTokenResponse) and "id_token" in token, token
    return flow, token


def oidcc_server(rp, browser, op):
    """Happy flow: code, token, ID token validated by the RP, userinfo sub equals ID token sub."""
    flow, token = happy(rp, browser)
    claims = token["id_token"]
    assert claims["iss"] == op.issuer and claims["aud"] == [rp.client.client_id]
    assert claims["nonce"] == flow.nonce and claims["exp"] > claims["iat"]
    assert rp.userinfo(flow)["sub"] == claims["sub"]


def oidcc_response_type_missing(rp, browser, op):
    """No response_type: an error (redirected or shown), never a code."""
    flow = rp.raw(browser, response_type=None)
    assert "code" not in flow.params
    assert flow.params.get("error") in ("invalid_request", "unsupported_response_type") or \
        flow.response.status_code == 400


def oidcc_idtoken_signature(rp, browser, op):
    """The ID token is signed (RS256, kid of a published key) and the RP verified it."""
    _, token = happy(rp, browser)
    assert token["id_token"].jws_header["alg"] == "RS256"
    assert token["id_token"].jws_header["kid"]


def oidcc_codereuse(rp, browser, op):
    """A code works once."""
    flow, _ = happy(rp, browser)
    again = rp.http.post(rp.config["token_endpoint"], auth=(rp.client.client_id,
                                                              rp.client.secret),
                          data={"grant_type": "authorization_code", "code": flow.params["code"],
                                "redirect_uri": rp.client.redirect_uri})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def oidcc_codereuse_30seconds(rp, browser, op):
    """A code reused 30 s later fails, and the access token it gave is revoked (§4.1.2)."""
    flow, token = happy(rp, browser)
    op.advance(30)
    again = rp.http.post(rp.config["token_endpoint"], auth=(rp.client.client_id,
                                                              rp.client.secret),
                          data={"grant_type": "authorization_code", "code": flow.params["code"],
                                "redirect_uri": rp.client.redirect_uri})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    userinfo = rp.http.get(rp.config["userinfo_endpoint"],
                            headers={"Authorization": f"Bearer {token['access_token']}"})
    assert userinfo.status_code == 401


def _scope_module(scope: str, expect: set[str]):
    def module(rp, browser, op):
        flow, token = happy(rp, browser, scope=scope)
        info = rp.userinfo(flow)
        assert expect <= set(info.to_dict()), (scope, info.to_dict())
        assert "openid" in token["scope"]   # pyoidc hands the granted scope as a list
    module.__doc__ = f"scope={scope!r}: success; userinfo carries {sorted(expect)}"
    return module


def oidcc_claims_essential(rp, browser, op):
    """claims={"userinfo":{"name":{"essential":true}}} with scope=openid: name in userinfo."""
    flow, _ = happy(rp, browser,
                    claims={"userinfo": {"name": {"essential": True}}})
    assert rp.userinfo(flow)["name"]


def _succeeds_with(**params):
    def module(rp, browser, op):
        happy(rp, browser, **params)
    module.__doc__ = f"a request with {params} succeeds"
    return module


def _userinfo_module(how: str):
    def module(rp, browser, op):
        flow, token = happy(rp, browser)
        assert rp.userinfo(flow, how=how)["sub"] == token["id_token"]["sub"]
    module.__doc__ = f"userinfo by {how}"
    return module


def oidcc_alternate_happy_flow(rp, browser, op):
    """A second happy flow with scope openid email profile, same RP and session."""
    happy(rp, browser)
    flow, token = happy(rp, browser, scope="openid email profile")
    assert rp.userinfo(flow)["email"] and token["id_token"]["sub"]


def oidcc_login_hint(rp, browser, op):
    """login_hint naming the signed-in person: success without a new sign-in."""
    _, token = happy(rp, browser, login_hint="student1@example.edu")
    assert token["id_token"]["sub"] == "student:1"


def oidcc_id_token_hint(rp, browser, op):
    """A second request with prompt=none and the first ID token as id_token_hint succeeds for
    the same subject."""
    _, first = happy(rp, browser)
    _, second = happy(rp, browser, prompt="none", id_token_hint=first["id_token_jwt"])
    assert second["id_token"]["sub"] == first["id_token"]["sub"]


def _reauthenticated(rp, browser, op, advance: int, **params) -> None:
    """A first sign-in, time passes, then ``params`` must send the browser to the password
    form; after it the ID token's auth_time is the new sign-in's."""
    _, first = happy(rp, browser)
    op.advance(advance)
    flow = rp.authorize(browser, **params)
    assert not flow.redirected
    back = sign_in_at(browser, op.issuer, login_redirect(flow.response))
    flow.params, flow.response = redirect_params(back), _as_redirect(back)
    token = rp.token(flow)
    assert token["id_token"]["auth_time"] > first["id_token"]["auth_time"]


def oidcc_prompt_login(rp, browser, op):
    """prompt=login shows the login form again; the new auth_time is later."""
    _reauthenticated(rp, browser, op, 5, prompt="login")


def _as_redirect(response):
    """The page that continues to the RP after the login form, as the redirect the browser
    follows (pyoidc parses a redirect)."""
    if response.status_code == 302:
        return response
    fake = requests.Response()
    fake.status_code = 302
    fake.headers["Location"] = "https://app.example.edu/callback?" + urlencode(
        redirect_params(response))
    return fake


def oidcc_prompt_none_logged_in(rp, browser, op):
    happy(rp, browser)
    happy(rp, browser, prompt="none")


def oidcc_prompt_none_not_logged_in(rp, browser, op):
    """No session: login_required (or interaction/consent_required) redirected with state."""
    flow = rp.authorize(op.browser(), prompt="none")
    assert flow.params["error"] in ("login_required", "interaction_required",
                                    "consent_required")
    assert flow.params["state"] == flow.state
    assert rp.parse(flow)["error"] == flow.params["error"]


def oidcc_max_age_1(rp, browser, op):
    """After more than 1 s, max_age=1 asks for the password; auth_time is present and new."""
    _reauthenticated(rp, browser, op, 2, max_age="1")


def oidcc_max_age_10000(rp, browser, op):
    """max_age=10000 just after signing in: no new sign-in, auth_time present."""
    _, first = happy(rp, browser)
    _, second = happy(rp, browser, max_age="10000")
    assert second["id_token"]["auth_time"] == first["id_token"]["auth_time"]


def oidcc_ensure_post_request_succeeds(rp, browser, op):
    flow = rp.authorize(browser, method="POST")
    assert "code" in flow.params
    rp.token(flow)


def oidcc_ensure_registered_redirect_uri(rp, browser, op):
    """An unregistered redirect_uri: an error page, never a redirect."""
    flow = rp.authorize(browser, redirect_uri="https://evil.example.com/cb")
    assert flow.response.status_code == 400 and "Location" not in flow.response.headers


def oidcc_ensure_request_object_with_redirect_uri(rp, browser, op):
    """Request objects are not supported (request_parameter_supported=false): the request is
    refused with request_not_supported, as the suite accepts."""
    assert rp.config["request_parameter_supported"] is False
    flow = rp.raw(browser, request="eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmkiOiJ4In0.")
    assert flow.params["error"] == "request_not_supported"


def oidcc_ensure_request_with_valid_pkce_succeeds(rp, browser, op):
    verifier, challenge = pkce_pair()
    flow = rp.authorize(browser, code_challenge=challenge, code_challenge_method="S256")
    assert "id_token" in rp.token(flow, code_verifier=verifier)


def oidcc_refresh_token(rp, browser, op):
    """A refresh token gives a new access token that works at userinfo."""
    flow = rp.authorize(browser, scope="openid profile")
    rp.token(flow)
    refreshed = rp.refresh(flow)
    assert refreshed["access_token"]
    assert rp.userinfo(flow)["sub"] == "student:1"


def oidcc_server_client_secret_post(rp, browser, op):
    flow = rp.authorize(browser)
    assert "id_token" in rp.token(flow, authn_method="client_secret_post")


def oidcc_idtoken_unsigned(rp, browser, op):
    """The suite runs this module only when "none" is offered; the bridge never offers it and
    every ID token is RS256 (asserted, not skipped)."""
    assert "none" not in rp.config["id_token_signing_alg_values_supported"]
    _, token = happy(rp, browser)
    assert token["id_token"].jws_header["alg"] == "RS256"


def oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported(
        rp, browser, op):
    assert rp.config["request_uri_parameter_supported"] is False
    flow = rp.raw(browser, request_uri="https://app.example.edu/request.jwt")
    assert flow.params["error"] == "request_uri_not_supported"


def oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(
        rp, browser, op):
    flow = rp.raw(browser, request="eyJhbGciOiJub25lIn0.eyJzY29wZSI6Im9wZW5pZCJ9.")
    assert flow.params["error"] == "request_not_supported"


MODULES = {
    "oidcc-server": oidcc_server,
    "oidcc-response-type-missing": oidcc_response_type_missing,
    "oidcc-idtoken-signature": oidcc_idtoken_signature,
    "oidcc-codereuse": oidcc_codereuse,
    "oidcc-scope-address": _scope_module("openid address", {"sub"}),
    "oidcc-scope-all": _scope_module("openid profile email address phone",
                                     {"sub", "name", "email"}),
    "oidcc-scope-email": _scope_module("openid email", {"sub", "email", "email_verified"}),
    "oidcc-scope-phone": _scope_module("openid phone", {"sub"}),
    "oidcc-scope-profile": _scope_module("openid profile", {"sub", "name", "given_name",
                                                            "family_name"}),
    "oidcc-claims-essential": oidcc_claims_essential,
    "oidcc-claims-locales": _succeeds_with(claims_locales="se"),
    "oidcc-userinfo-get": _userinfo_module("get"),
    "oidcc-userinfo-post-body": _userinfo_module("post_body"),
    "oidcc-userinfo-post-header": _userinfo_module("post_header"),
    "oidcc-alternate-happy-flow": oidcc_alternate_happy_flow,
    "oidcc-display-page": _succeeds_with(display="page"),
    "oidcc-display-popup": _succeeds_with(display="popup"),
    "oidcc-ui-locales": _succeeds_with(ui_locales="se"),
    "oidcc-login-hint": oidcc_login_hint,
    "oidcc-id-token-hint": oidcc_id_token_hint,
    "oidcc-prompt-login": oidcc_prompt_login,
    "oidcc-prompt-none-logged-in": oidcc_prompt_none_logged_in,
    "oidcc-prompt-none-not-logged-in": oidcc_prompt_none_not_logged_in,
    "oidcc-max-age-1": oidcc_max_age_1,
    "oidcc-max-age-10000": oidcc_max_age_10000,
    "oidcc-ensure-post-request-succeeds": oidcc_ensure_post_request_succeeds,
    "oidcc-ensure-registered-redirect-uri": oidcc_ensure_registered_redirect_uri,
    "oidcc-ensure-request-object-with-redirect-uri":
        oidcc_ensure_request_object_with_redirect_uri,
    "oidcc-ensure-request-with-acr-values-succeeds": _succeeds_with(acr_values="1 2"),
    "oidcc-ensure-request-with-unknown-parameter-succeeds": _succeeds_with(extra="foobar"),
    "oidcc-ensure-request-with-valid-pkce-succeeds":
        oidcc_ensure_request_with_valid_pkce_succeeds,
    "oidcc-ensure-request-without-nonce-succeeds-for-code-flow": _succeeds_with(nonce=False),
    "oidcc-refresh-token": oidcc_refresh_token,
    "oidcc-codereuse-30seconds": oidcc_codereuse_30seconds,
    "oidcc-server-client-secret-post": oidcc_server_client_secret_post,
    "oidcc-idtoken-unsigned": oidcc_idtoken_unsigned,
    "oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported":
        oidcc_request_uri_unsigned_supported_correctly_or_rejected_as_unsupported,
    "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported":
        oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported,
}


@pytest.mark.parametrize("module", list(MODULES))
def test_basic_op_plan(module, relying_party, op):
    MODULES[module](relying_party, op.signed_in(), op)
