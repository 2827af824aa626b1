"""Headless Chromium signs in through the real login page."""

from __future__ import annotations

from tests.conftest import ARTIFACTS
from tests.helpers import DEMO_PASSWORD


def test_browser_login_and_logout(live_server, page):
    page.goto(live_server + "/")
    assert page.url.endswith("/login")
    page.get_by_label("Username or email").fill("mentor1")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server + "/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Hello,")
    assert "moderator" in page.content()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "login-start-page.png"))
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", name="You are signed out").is_visible()


def test_browser_wrong_password_shows_the_generic_message(live_server, page):
    page.goto(live_server + "/login")
    page.get_by_label("Username or email").fill("student1")
    page.get_by_label("Password").fill("not-it")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    assert "not right, or the account is not active" in alert.inner_text()
    page.screenshot(path=str(ARTIFACTS / "login-failed.png"))
