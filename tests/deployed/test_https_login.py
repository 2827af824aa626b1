"""Sign-in over https behind nginx in headless Chromium, with no header added by the test."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.helpers import DEMO_PASSWORD


def _fill(page, login: str, password: str) -> None:
    page.get_by_label("Username or email").fill(login)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_and_sign_out(deployment, https_page):
    page = https_page
    page.goto(deployment.issuer + "/")
    assert page.url == deployment.issuer + "/login"
    _fill(page, "mentor1", DEMO_PASSWORD)
    page.wait_for_url(deployment.issuer + "/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Hello,")
    cookie, = page.context.cookies()
    assert cookie["name"] == "idp_session" and cookie["secure"] and cookie["httpOnly"]
    assert cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", name="You are signed out").is_visible()
    page.goto(deployment.issuer + "/")
    assert page.url == deployment.issuer + "/login"
    # Again, through the confirmation page's form this time.
    _fill(page, "mentor1", DEMO_PASSWORD)
    page.wait_for_url(deployment.issuer + "/")
    page.goto(deployment.issuer + "/logout")
    assert page.get_by_role("heading", name="Sign out?").is_visible()
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", name="You are signed out").is_visible()
    page.goto(deployment.issuer + "/")
    assert page.url == deployment.issuer + "/login"


def test_wrong_password_then_throttled(deployment, https_page):
    page = https_page
    page.goto(deployment.issuer + "/login")
    _fill(page, "student6", "not-it")
    assert "not right, or the account is not active" in page.get_by_role("alert").inner_text()
    for _ in range(6):
        _fill(page, "student6", "not-it")
        alert = page.get_by_role("alert").inner_text()
        if "Too many failed attempts" in alert:
            break
    assert re.fullmatch(r"Too many failed attempts\. Try again in (1 second|\d+ seconds)\.",
                        alert), alert
    button = page.locator("button[type=submit]")
    assert button.is_disabled()          # looks (CSS) and acts disabled during the delay ...
    assert button.evaluate("b => getComputedStyle(b).opacity") == "0.5"
    expect(button).to_be_enabled(timeout=70_000)   # ... and comes back after the delay


def test_a_chromium_without_the_test_ca_refuses_the_certificate(deployment, browser):
    """The control: the same pages in a Chromium whose NSS database lacks the test CA fail
    with a certificate error, so the passing tests above rely on real chain validation."""
    import pytest
    from playwright.sync_api import Error

    context = browser.new_context()
    try:
        with pytest.raises(Error, match="ERR_CERT_AUTHORITY_INVALID"):
            context.new_page().goto(deployment.issuer + "/login")
    finally:
        context.close()
