"""Every browser flow over https behind nginx, in headless Chromium with no header added by
the test: launch link, OIDC (consent, trusted client, prompt=none, RP-initiated logout) to a
relying party at another site over https, SAML SP- and IdP-initiated login to a python3-saml
SP over https, Single Logout both ways, mentor pages."""

from __future__ import annotations

from urllib.parse import urlencode

import requests

from idp.config import load_settings
from idp.login.launch import sign_launch_token
from tests.helpers import DEMO_PASSWORD


def _sign_in(page, login: str = "student1") -> None:
    page.get_by_label("Username or email").fill(login)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _body(page) -> str:
    page.wait_for_load_state()
    return page.inner_text("body")


def test_launch_link_signs_in_once(deployment, https_page, https_browser):
    settings = load_settings(deployment.env)
    link = deployment.issuer + "/launch?" + urlencode(
        {"token": sign_launch_token(settings, "student:2"), "next": "/"})
    https_page.goto(link)
    assert https_page.url == deployment.issuer + "/"
    assert https_page.get_by_role("heading", level=1).inner_text().startswith("Hello,")
    other = https_browser.new_context()
    try:
        again = other.new_page()
        again.goto(link)
        assert "This link did not work" in _body(again)
    finally:
        other.close()


def _redirects_to(page, peers: str) -> list[tuple[str, str]]:
    """(bridge path, status) of every bridge response that sent the browser to the peer."""
    seen: list[tuple[str, str]] = []

    def response(resp) -> None:
        if resp.headers.get("location", "").startswith(peers + "/oidc/callback"):
            seen.append((resp.url.split("?")[0], resp.status))
    page.on("response", response)
    return seen


def test_oidc_consent_for_a_third_party_client(deployment, https_page):
    page = https_page
    back = _redirects_to(page, deployment.peers)
    page.goto(deployment.peers + "/oidc/start/third")
    assert page.url.startswith(deployment.issuer + "/login")
    _sign_in(page, "student2")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(deployment.peers + "/oidc/callback**")
    assert _body(page) == "RP: signed in as student2@example.edu"
    # The consent form's answer is a 302 straight to the client, followed by Chromium under
    # the consent page's CSP form-action (which names the client's origin).
    assert back == [(deployment.issuer + "/oauth/authorize/consent", 302)]


def test_oidc_trusted_client_prompt_none_and_rp_initiated_logout(deployment, https_page):
    page = https_page
    page.goto(deployment.peers + "/oidc/start/trusted?prompt=none")
    assert _body(page) == "RP: error login_required"
    back = _redirects_to(page, deployment.peers)
    page.goto(deployment.peers + "/oidc/start/trusted")
    csp = requests.get(page.url, verify=str(deployment.pki.ca_pem),
                       timeout=10).headers["Content-Security-Policy"]
    assert f"form-action 'self' {deployment.peers};" in csp + ";"
    _sign_in(page, "mentor1")
    page.wait_for_url(deployment.peers + "/oidc/callback**")
    assert _body(page) == "RP: signed in as mentor1@example.edu"
    # login POST -> 302 /oauth/authorize -> 302 to the client: no intermediate page.
    assert back == [(deployment.issuer + "/oauth/authorize", 302)]
    page.goto(deployment.peers + "/oidc/start/trusted?prompt=none")
    assert _body(page) == "RP: signed in as mentor1@example.edu"
    page.goto(deployment.peers + "/oidc/logout")
    page.wait_for_url(deployment.peers + "/oidc/logged-out**")
    assert _body(page) == "RP: signed out (state bye)"
    page.goto(deployment.peers + "/oidc/start/trusted?prompt=none")
    assert _body(page) == "RP: error login_required"


def test_saml_sp_initiated_login_and_sp_initiated_logout(deployment, https_page):
    page = https_page
    page.goto(deployment.peers + "/saml/login")
    assert page.url.startswith(deployment.issuer + "/login")
    _sign_in(page, "student3")
    page.wait_for_url(deployment.peers + "/complete/saml/")
    assert _body(page) == "SP: signed in as student3@example.edu"
    page.goto(deployment.peers + "/saml/logout")
    page.wait_for_url(deployment.peers + "/complete/saml/?**")
    assert _body(page) == "SP: signed out at the IdP too"
    page.goto(deployment.issuer + "/")
    assert page.url == deployment.issuer + "/login"


def test_saml_post_binding_from_another_site_keeps_the_session(deployment, https_page):
    """The session cookie is SameSite=Lax: the SP's cross-site POST arrives without it, and the
    bridge continues through a top-level GET (/login?next=/saml/sso/continue/...) where the
    cookie is sent again, so a signed-in person is not asked for the password."""
    page = https_page
    page.goto(deployment.issuer + "/login")
    _sign_in(page, "student2")
    page.wait_for_url(deployment.issuer + "/")
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.goto(deployment.peers + "/saml/login-post")
    page.wait_for_url(deployment.peers + "/complete/saml/")
    assert _body(page) == "SP: signed in as student2@example.edu"
    assert deployment.issuer + "/saml/sso" in seen
    assert any(url.startswith(deployment.issuer + "/saml/sso/continue/") for url in seen)


def test_saml_idp_initiated_login_and_idp_initiated_logout(deployment, https_page):
    page = https_page
    page.goto(deployment.issuer + "/login")
    _sign_in(page, "student1")
    page.wait_for_url(deployment.issuer + "/")
    page.goto(deployment.issuer + "/saml/sso/init?" + urlencode({"sp": deployment.sp.sp.entity_id}))
    page.wait_for_url(deployment.peers + "/complete/saml/")
    assert _body(page) == "SP: signed in as student1@example.edu"
    assert deployment.sp.last["name_id"] == "student1@example.edu"
    page.goto(deployment.issuer + "/")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="You are signed out").wait_for()
    assert page.url.startswith(deployment.issuer)
    assert deployment.sp.last == {}   # the SP received and accepted the LogoutRequest


def test_mentor_pages(deployment, https_page):
    page = https_page
    page.goto(deployment.issuer + "/mentor")
    _sign_in(page, "mentor1")
    page.wait_for_url(deployment.issuer + "/mentor")
    assert page.get_by_role("heading", name="My students").is_visible()
    page.locator("a[href^='/mentor/students/']").first.click()
    page.wait_for_url(deployment.issuer + "/mentor/students/**")
    assert page.locator("svg").count() > 0
