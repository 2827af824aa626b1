"""The auto-POST page in Chromium: it submits itself with JavaScript under its own CSP (no
inline script), and without JavaScript the visible button does the same."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

from tests.helpers import DEMO_PASSWORD

from .zulip_sp import ZULIP_ACS


def _capture_acs(page) -> list[dict]:
    posted: list[dict] = []

    def acs(route, request):
        posted.append({k: v[0] for k, v in parse_qs(request.post_data or "").items()})
        route.fulfill(status=200, content_type="text/html", body="<p>Zulip ACS reached</p>")

    page.route(ZULIP_ACS, acs)
    return posted


def _sign_in(page, base_url: str, start: str) -> None:
    page.goto(base_url + start)
    page.fill("input[name=login]", "student1")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")


def test_auto_post_with_javascript(app, live_server, zulip, page):
    posted = _capture_acs(page)
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    _sign_in(page, live_server, "/saml/sso/init?" + urlencode({"sp": zulip.entity_id}))
    page.wait_for_url(ZULIP_ACS)
    assert page.text_content("p") == "Zulip ACS reached"
    assert len(posted) == 1 and posted[0]["RelayState"] == '{"subdomain": ""}'
    auth = zulip.process_response(posted[0]["SAMLResponse"], posted[0]["RelayState"], None)
    assert auth.is_authenticated() and auth.get_nameid() == "student1@example.edu"
    assert violations == []


def test_post_button_without_javascript(app, live_server, zulip, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        posted = _capture_acs(page)
        _sign_in(page, live_server, "/saml/sso/init?" + urlencode({"sp": zulip.entity_id}))
        page.wait_for_selector("form#saml-post button")
        assert page.url.startswith(live_server + "/saml/sso/init")
        assert posted == []
        page.click("form#saml-post button")
        page.wait_for_url(ZULIP_ACS)
        assert len(posted) == 1
        auth = zulip.process_response(posted[0]["SAMLResponse"], posted[0]["RelayState"], None)
        assert auth.is_authenticated()
    finally:
        context.close()
