"""OpenID certification plan "RP-Initiated Logout OP"
(oidcc-rp-initiated-logout-certification-test-plan): each module, named as the conformance
suite names it, run against the live bridge with pyoidc as the relying party.

The suite's rules (RP-Initiated Logout 1.0 §2-§4): with a valid id_token_hint and a registered
post_logout_redirect_uri the OP signs out and redirects, echoing ``state``; with anything wrong
(unregistered or altered URI, a hint the OP did not sign or that was modified) it must not
redirect and shows an error or asks the person to confirm - never a silent success; without a
hint it asks for confirmation.
"""

from __future__ import annotations

import pytest
import requests
from oic.oic.message import IdToken
from oic.utils.keyio import SYMKey

from tests.oidc.conformance.conftest import POST_LOGOUT


def _signed_in_flow(rp, browser):
    flow = rp.authorize(browser)
    token = rp.token(flow)
    return token["id_token_jwt"], token["id_token"]


def _signed_in(rp, browser) -> bool:
    """Still signed in at the OP: prompt=none gets a code."""
    return "code" in rp.authorize(browser, prompt="none").params


def _logout(rp, browser, **args) -> requests.Response:
    return browser.get(rp.end_session_url(**args), allow_redirects=False)


def _refused(response) -> None:
    """No redirection to the RP; an error page or the OP's own confirmation page."""
    location = response.headers.get("Location", "")
    assert not location.startswith("https://app.example.edu"), location
    assert response.status_code == 400 or location == "/logout", response.status_code


def oidcc_rp_initiated_logout_discovery_endpoint_verification(rp, browser, op):
    assert rp.config["end_session_endpoint"] == op.issuer + "/oauth/logout"


def oidcc_rp_initiated_logout(rp, browser, op):
    hint, _ = _signed_in_flow(rp, browser)
    response = _logout(rp, browser, id_token_hint=hint, post_logout_redirect_uri=POST_LOGOUT,
                       state="bye-1")
    assert response.status_code == 302
    assert response.headers["Location"] == POST_LOGOUT + "?state=bye-1"
    assert rp.authorize(browser, prompt="none").params["error"] == "login_required"


def oidcc_rp_initiated_logout_bad_post_logout_redirect_uri(rp, browser, op):
    hint, _ = _signed_in_flow(rp, browser)
    response = _logout(rp, browser, id_token_hint=hint,
                       post_logout_redirect_uri="https://app.example.edu/not-registered",
                       state="s")
    _refused(response)
    assert "still signed in" in response.text and _signed_in(rp, browser)


def oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri(rp, browser,
                                                                      op):
    hint, _ = _signed_in_flow(rp, browser)
    response = _logout(rp, browser, id_token_hint=hint,
                       post_logout_redirect_uri=POST_LOGOUT + "?foo=bar", state="s")
    _refused(response)
    assert _signed_in(rp, browser)


def oidcc_rp_initiated_logout_modified_id_token_hint(rp, browser, op):
    hint, _ = _signed_in_flow(rp, browser)
    header, payload, signature = hint.split(".")
    altered = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
    response = _logout(rp, browser, id_token_hint=f"{header}.{payload}.{altered}",
                       post_logout_redirect_uri=POST_LOGOUT, state="s")
    _refused(response)
    assert _signed_in(rp, browser)


def oidcc_rp_initiated_logout_bad_id_token_hint(rp, browser, op):
    """An ID token with the real claims, signed by the RP (HS256 with its secret)."""
    _, claims = _signed_in_flow(rp, browser)
    fake = IdToken(**claims.to_dict()).to_jwt([SYMKey(key=rp.client.secret, alg="HS256")],
                                              "HS256")
    response = _logout(rp, browser, id_token_hint=fake, post_logout_redirect_uri=POST_LOGOUT,
                       state="s")
    _refused(response)
    assert _signed_in(rp, browser)


def oidcc_rp_initiated_logout_no_id_token_hint(rp, browser, op):
    _signed_in_flow(rp, browser)
    response = _logout(rp, browser, client_id=rp.client.client_id,
                       post_logout_redirect_uri=POST_LOGOUT, state="s")
    _refused(response)
    confirm = browser.get(op.issuer + "/logout")
    assert "Sign out?" in confirm.text and _signed_in(rp, browser)


def oidcc_rp_initiated_logout_no_params(rp, browser, op):
    _signed_in_flow(rp, browser)
    response = browser.get(rp.config["end_session_endpoint"], allow_redirects=False)
    _refused(response)
    assert _signed_in(rp, browser)


def oidcc_rp_initiated_logout_no_post_logout_redirect_uri(rp, browser, op):
    hint, _ = _signed_in_flow(rp, browser)
    response = _logout(rp, browser, id_token_hint=hint)
    assert response.status_code == 200 and "Location" not in response.headers
    assert rp.authorize(browser, prompt="none").params["error"] == "login_required"


def oidcc_rp_initiated_logout_no_state(rp, browser, op):
    hint, _ = _signed_in_flow(rp, browser)
    response = _logout(rp, browser, id_token_hint=hint, post_logout_redirect_uri=POST_LOGOUT)
    assert response.status_code == 302 and response.headers["Location"] == POST_LOGOUT


def oidcc_rp_initiated_logout_only_state(rp, browser, op):
    _signed_in_flow(rp, browser)
    response = _logout(rp, browser, state="only")
    _refused(response)
    assert _signed_in(rp, browser)


MODULES = {
    "oidcc-rp-initiated-logout-discovery-endpoint-verification":
        oidcc_rp_initiated_logout_discovery_endpoint_verification,
    "oidcc-rp-initiated-logout": oidcc_rp_initiated_logout,
    "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri":
        oidcc_rp_initiated_logout_bad_post_logout_redirect_uri,
    "oidcc-rp-initiated-logout-modified-id-token-hint":
        oidcc_rp_initiated_logout_modified_id_token_hint,
    "oidcc-rp-initiated-logout-no-id-token-hint": oidcc_rp_initiated_logout_no_id_token_hint,
    "oidcc-rp-initiated-logout-no-params": oidcc_rp_initiated_logout_no_params,
    "oidcc-rp-initiated-logout-no-post-logout-redirect-uri":
        oidcc_rp_initiated_logout_no_post_logout_redirect_uri,
    "oidcc-rp-initiated-logout-no-state": oidcc_rp_initiated_logout_no_state,
    "oidcc-rp-initiated-logout-only-state": oidcc_rp_initiated_logout_only_state,
    "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri":
        oidcc_rp_initiated_logout_query_added_to_post_logout_redirect_uri,
    "oidcc-rp-initiated-logout-bad-id-token-hint": oidcc_rp_initiated_logout_bad_id_token_hint,
}


@pytest.mark.parametrize("module", list(MODULES))
def test_rp_initiated_logout_op_plan(module, relying_party, op):
    MODULES[module](relying_party, op.signed_in(), op)
