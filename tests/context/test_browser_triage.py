"""/mentor triage and /me in headless Chromium, at desktop and phone widths: the mentor
filters by finding, searches by name, sorts and exports CSV; the student opens /me from the
start page. No console errors (CSP included), no sideways scrolling on a phone."""

from __future__ import annotations

import csv
import io

import pytest

from tests.context.test_browser import shot, sign_in_at, watch_console
from tests.history.rows import put_history

SIZES = {"desktop": {"viewport": {"width": 1280, "height": 900}},
         "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                   "is_mobile": True, "has_touch": True}}


@pytest.fixture
def history(app_ctx):
    put_history(3, 10, attempts=0, last_attempt_day=None, videos_watched=0, exams_taken=0)
    put_history(2, 4, current_streak=[10, 11, 12, 0], best_streak=12, videos_watched=9)
    put_history(4, 3, current_streak=[7, 8, 9], best_streak=[8, 8, 9], videos_watched=9)


@pytest.fixture(params=list(SIZES))
def sized(request, browser):
    context = browser.new_context(accept_downloads=True, **SIZES[request.param])
    page = context.new_page()
    yield request.param, page
    context.close()


def ids(page) -> list[int]:
    return [int(i) for i in page.locator("tr[data-student]").evaluate_all(
        "rows => rows.map(r => r.dataset.student)")]


def test_mentor_triage_filters_searches_sorts_and_exports(sized, live_server, history):
    size, page = sized
    errors = watch_console(page)
    sign_in_at(page, live_server + "/mentor", "mentor1")
    assert ids(page)[:2] == [3, 2]
    assert page.locator("tr[data-student='3'] .flag-course_not_started").is_visible()
    if size == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, f"triage-{size}")

    page.select_option("select[name=finding]", "streak_reset")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert "finding=streak_reset" in page.url and ids(page) == [2]
    assert "reset" in page.locator("tr[data-student='2'] .reason").inner_text()

    page.select_option("select[name=finding]", "")
    page.fill("input[name=q]", "student4@")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    assert ids(page) == [4]

    page.fill("input[name=q]", "")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state()
    sort = page.locator(".sort-links a", has_text="Name") if size == "phone" \
        else page.locator("th.col-name a")
    sort.first.click()
    page.wait_for_load_state()
    assert "sort=name" in page.url
    names = page.locator("td.col-name > a").all_inner_texts()
    assert names == sorted(names, key=str.lower)

    with page.expect_download() as download:
        page.click("a.csv")
    table = list(csv.DictReader(io.StringIO(open(download.value.path()).read())))
    assert len(table) > 5 and {"3", "2", "4"} <= {r["id"] for r in table}
    assert [r["name"] for r in table] == sorted((r["name"] for r in table), key=str.lower)
    legend = page.locator("details.legend")
    legend.locator("summary").click()
    assert legend.locator("dt").count() >= 15
    assert errors == []


def test_student_opens_me_from_the_start_page(sized, live_server, history):
    size, page = sized
    errors = watch_console(page)
    sign_in_at(page, live_server + "/", "student2")
    page.click("a[href='/me']")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "My progress"
    assert "was reset" in page.locator("#next-steps").inner_text()
    if size == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, f"me-{size}")
    assert errors == []
