"""Headless Chromium through the authorization endpoint: sign-in form with login_hint, the
consent page (a real form with its CSRF token), and the redirect back to the client."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

from tests.helpers import DEMO_PASSWORD
from tests.oidc.conftest import APP_REDIRECT, exchange


def test_browser_login_consent_and_code(live_server, page, make_client):
    client = make_client("Study Planner", trusted=False)
    callbacks: list[str] = []

    def capture(route):
        callbacks.append(route.request.url)
        route.fulfill(status=200, body="callback reached", content_type="text/plain")

    page.route("https://app.example.edu/**", capture)
    query = urlencode({"response_type": "code", "client_id": client.client_id,
                       "redirect_uri": APP_REDIRECT, "scope": "openid profile email",
                       "state": "browser-state", "nonce": "browser-nonce",
                       "login_hint": "student2"})
    page.goto(f"{live_server}/oauth/authorize?{query}")
    assert urlsplit(page.url).path == "/login"
    assert page.get_by_label("Username or email").input_value() == "student2"
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Allow Study Planner?").wait_for()
    assert "see your email address" in page.content()
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url("https://app.example.edu/**")
    params = {k: v[0] for k, v in parse_qs(urlsplit(callbacks[-1]).query).items()}
    assert params["state"] == "browser-state"
    token = exchange(live_server, client, params["code"])
    assert token.status_code == 200 and token.json()["scope"] == "openid profile email"


def test_browser_deny_returns_access_denied(live_server, page, make_client):
    client = make_client("Other App", trusted=False)
    callbacks: list[str] = []
    page.route("https://app.example.edu/**",
               lambda route: (callbacks.append(route.request.url),
                              route.fulfill(status=200, body="ok")))
    page.goto(f"{live_server}/login")
    page.get_by_label("Username or email").fill("student1")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server + "/")
    query = urlencode({"response_type": "code", "client_id": client.client_id,
                       "redirect_uri": APP_REDIRECT, "scope": "openid", "state": "d1"})
    page.goto(f"{live_server}/oauth/authorize?{query}")
    page.get_by_role("button", name="Deny").click()
    page.wait_for_url("https://app.example.edu/**")
    params = parse_qs(urlsplit(callbacks[-1]).query)
    assert params["error"] == ["access_denied"] and params["state"] == ["d1"]


def test_browser_trusted_client_sign_in_goes_straight_back(live_server, page, rp):
    """After the login form (whose CSP allows forms to post only to the bridge) the browser
    still reaches the client: the hop back is not a form redirect."""
    callbacks: list[str] = []
    page.route("https://zulip.example.edu/**",
               lambda route: (callbacks.append(route.request.url),
                              route.fulfill(status=200, body="ok")))
    query = urlencode({"response_type": "code", "client_id": rp.client_id,
                       "redirect_uri": rp.redirect_uri, "scope": "openid profile email",
                       "state": "t1", "nonce": "n1"})
    page.goto(f"{live_server}/oauth/authorize?{query}")
    page.get_by_label("Username or email").fill("mentor1")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("https://zulip.example.edu/**")
    params = parse_qs(urlsplit(callbacks[-1]).query)
    assert params["state"] == ["t1"] and "code" in params


def test_browser_connected_apps_remembers_and_disconnects(live_server, page, make_client):
    """Allow once; the next request goes straight back; the start page links to "Connected
    apps", whose Disconnect button (a CSRF-protected form) makes the app ask again."""
    client = make_client("Study Planner", trusted=False)
    page.route("https://app.example.edu/**",
               lambda route: route.fulfill(status=200, body="ok", content_type="text/plain"))
    query = urlencode({"response_type": "code", "client_id": client.client_id,
                       "redirect_uri": APP_REDIRECT, "scope": "openid email", "state": "c"})
    page.goto(f"{live_server}/login")
    page.get_by_label("Username or email").fill("student1")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server + "/")
    page.goto(f"{live_server}/oauth/authorize?{query}")
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url("https://app.example.edu/**")
    again = page.context.request.get(f"{live_server}/oauth/authorize?{query}",
                                     max_redirects=0)       # the browser's cookies
    assert again.status == 302 and "code=" in again.headers["location"]  # remembered
    page.goto(f"{live_server}/")
    page.get_by_role("link", name="Connected apps").click()
    page.get_by_role("heading", name="Connected apps").wait_for()
    assert "Study Planner" in page.content()
    page.get_by_role("button", name="Disconnect Study Planner").click()
    page.get_by_text("No application has access to your account.").wait_for()
    page.goto(f"{live_server}/oauth/authorize?{query}")
    page.get_by_role("heading", name="Allow Study Planner?").wait_for()
