"""Mentor pages in headless Chromium against the live server: a mentor signs in through the
real login form, sees their students, opens one, the SVG charts render; another mentor's
student shows the not-found page. Screenshots are kept in tests/artifacts/."""

from __future__ import annotations

from tests.conftest import ARTIFACTS
from tests.helpers import DEMO_PASSWORD


def sign_in_at(page, url: str, login: str) -> None:
    page.goto(url)
    assert "/login" in page.url
    page.fill("#login", login)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def watch_console(page) -> list[str]:
    """Console errors (CSP violations included: Chromium reports them there) and failed
    loads, except the browser's own favicon probe."""
    errors: list[str] = []

    def console(msg) -> None:
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def response(resp) -> None:
        if resp.status >= 400 and not resp.url.endswith("/favicon.ico"):
            errors.append(f"{resp.status} {resp.url}")

    page.on("console", console)
    page.on("response", response)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def shot(page, name: str, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"context-{name}.png"), full_page=full_page)


def test_mentor_signs_in_sees_students_and_opens_one_with_charts(app, page, live_server):
    from tests.context.test_zulip_links import known_in_zulip

    with app.app_context():  # every demo student's Zulip account is known: links by user id
        for n in range(1, 61):
            known_in_zulip(f"student:{n}", str(1000 + n))
    errors = watch_console(page)
    sign_in_at(page, live_server + "/mentor", "mentor1")
    assert page.url == live_server + "/mentor"
    assert page.locator("h1").inner_text() == "My students"
    rows = page.locator("tr[data-student]")
    assert rows.count() > 5
    shot(page, "my-students")

    page.click("th.col-average_score a")  # sort by average, descending
    page.wait_for_load_state()
    assert "sort=average_score" in page.url
    assert page.locator("th[aria-sort]").inner_text().startswith("Average")

    first = rows.first.locator("td.col-name a")
    name = first.inner_text()
    first.click()
    page.wait_for_load_state()
    assert "/mentor/students/" in page.url
    assert page.locator("h1").inner_text().startswith(name)
    trend = page.locator("svg[data-chart=score-trend]")
    assert trend.is_visible() and trend.bounding_box()["width"] > 200
    line = page.locator("svg[data-chart=score-trend] path.trend-line")
    assert line.count() == 1 and line.bounding_box()["width"] > 50
    assert page.locator("svg[data-chart=score-trend] circle.trend-dot").count() >= 2
    bars = page.locator("svg[data-chart=subjects] rect.bar")
    assert bars.count() >= 2 and all(bars.nth(i).bounding_box()["width"] > 1
                                     for i in range(bars.count()))
    # the stylesheet applied: bars are filled by CSS class, not inline styles
    fill = bars.first.evaluate("el => getComputedStyle(el).fill")
    assert fill not in ("", "none", "rgb(0, 0, 0)")
    assert page.locator("a.dm").get_attribute("href").startswith(
        "https://zulip.example.edu/#narrow/dm/10")
    shot(page, "student")
    assert errors == []


def test_another_mentors_student_shows_the_not_found_page(page, live_server, lms_facts):
    sign_in_at(page, live_server + "/mentor", "mentor1")
    response = page.goto(live_server + f"/mentor/students/{lms_facts['other_student']}")
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Student not found"
    assert page.locator("svg").count() == 0
    shot(page, "not-found")


def test_pages_are_readable_on_a_phone(browser, live_server):
    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in_at(page, live_server + "/mentor", "mentor1")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390  # no sideways scrolling
        assert page.locator(".sort-links").is_visible()
        assert not page.locator("table.students thead").is_visible() or \
            page.locator("table.students thead").bounding_box()["x"] < 0
        shot(page, "phone-my-students")
        shot(page, "phone-my-students-first-screen", full_page=False)
        page.goto(live_server + "/mentor/students/1")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        chart = page.locator("svg[data-chart=score-trend]").bounding_box()
        assert 250 < chart["width"] <= 390
        shot(page, "phone-student")
        shot(page, "phone-student-first-screen", full_page=False)
    finally:
        context.close()
