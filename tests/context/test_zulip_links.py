"""The mentor pages link to a student's Zulip direct messages by Zulip user id, Zulip's stable
link form ``#narrow/dm/<id>-<slug>`` (ZULIP.md, "Narrow links"): emails change, and Zulip may
hide them (``email_address_visibility``), so a link by email can lead nowhere. The id comes
from the ledger of Zulip accounts; a student it does not know gets no link, but a note saying
why. Hostile names cannot break out of the link or the page."""

from __future__ import annotations

import re

import pytest

from idp import clock
from idp.extensions import db
from idp.zulip_accounts import LedgerAccount, dm_narrow_url, zulip_user_id, zulip_user_ids
from tests.helpers import client_login

ZULIP = "https://zulip.example.edu"
HOSTILE = [
    '<img src=x onerror=alert(1)>',
    '"><script>alert(1)</script>',
    "O'Brien & Sons / 100% (real)",
    "line\nbreak\ttab\x00nul\x7fdel",
    "javascript:alert(1)#frag?q=1",
    "Zoë 张伟 — ✓",
    "../../admin",
    "",
]


def known_in_zulip(subject: str, user_id: str | None, *, active: bool = True) -> None:
    db.session.add(LedgerAccount(subject=subject, zulip_user_id=user_id,
                                 email=f"{subject.replace(':', '')}@zulip.example.edu",
                                 full_name="x", role="member", groups=[], active=active,
                                 origin="adopted", adopted_at=clock.now()))
    db.session.commit()


@pytest.mark.parametrize("name", HOSTILE)
def test_the_slug_of_any_name_stays_inside_the_fragment(name):
    url = dm_narrow_url(ZULIP, 42, name)
    prefix = f"{ZULIP}/#narrow/dm/42-"
    assert url.startswith(prefix)
    slug = url[len(prefix):]
    assert slug and re.fullmatch(r"[A-Za-z0-9._~-]+", slug), slug
    # Zulip reads the ids before the first "-"; the slug adds no operator and no new part
    assert "/" not in slug and "#" not in slug and "?" not in slug


def test_plain_names_read_as_zulip_writes_them():
    assert dm_narrow_url(ZULIP, 7, "Ann Lee") == f"{ZULIP}/#narrow/dm/7-Ann-Lee"
    assert dm_narrow_url(ZULIP, 7, "A. (B)") == f"{ZULIP}/#narrow/dm/7-A.2E-.28B.29"


def test_the_ledger_answers_only_real_user_ids(app):
    with app.app_context():
        known_in_zulip("student:1", "1001")
        known_in_zulip("student:2", None)
        known_in_zulip("student:3", "abc")
        known_in_zulip("student:4", "²")      # a digit to str.isdigit, not to int()
        known_in_zulip("student:6", "0")
        assert zulip_user_id(db.session, "student:1") == 1001
        assert [zulip_user_id(db.session, s) for s in
                ("student:2", "student:3", "student:4", "student:6", "student:99")] == \
            [None] * 5
        assert zulip_user_ids(db.session, ["student:1", "student:2", "student:99"]) == \
            {"student:1": 1001}
        assert zulip_user_ids(db.session, []) == {}


@pytest.fixture
def mentor(client):
    client_login(client, "mentor1")
    return client


def _cells(html: str) -> dict[str, str]:
    return dict(re.findall(r'<tr data-student="(\d+)".*?<td class="col-dm"[^>]*>(.*?)</td>',
                           html, flags=re.S))


def test_mentor_list_links_by_user_id_and_explains_a_missing_one(app, mentor):
    with app.app_context():
        known_in_zulip("student:1", "1001")
        known_in_zulip("student:5", "1005")  # inactive in the LMS: no message link at all
    html = mentor.get("/mentor?batch=1&sort=name").get_data(as_text=True)
    cells = _cells(html)
    assert re.search(r'href="https://zulip\.example\.edu/#narrow/dm/1001-[^"]+"', cells["1"])
    assert "@" not in cells["1"] and "%40" not in cells["1"]  # never by email
    assert cells["5"] == ""
    assert 'class="dm"' not in cells["2"] and "not in Zulip yet" in cells["2"]
    assert "#narrow/dm/student" not in html


def test_student_page_links_by_user_id_or_says_why_not(app, mentor):
    with app.app_context():
        known_in_zulip("student:1", "1001")
    html = mentor.get("/mentor/students/1").get_data(as_text=True)
    assert re.search(r'class="button dm" href="https://zulip\.example\.edu/#narrow/dm/'
                     r'1001-[^"]+"', html)
    other = mentor.get("/mentor/students/2").get_data(as_text=True)
    assert 'class="button dm"' not in other and "#narrow/dm/" not in other
    assert "No Zulip account is known" in other and 'href="https://zulip.example.edu"' in other


@pytest.mark.parametrize("name", HOSTILE[:5])
def test_hostile_display_names_on_both_pages(app, mentor, lms_admin, name):
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET display_name = %s WHERE id = 1",
                    (name.replace("\x00", ""),))
    with app.app_context():
        known_in_zulip("student:1", "1001")
        app.extensions["context"].service.cache.clear()
    for path in ("/mentor?batch=1&sort=name", "/mentor/students/1"):
        html = mentor.get(path).get_data(as_text=True)
        assert "<img src=x" not in html and "<script>alert" not in html
        [href] = re.findall(r'href="(https://zulip\.example\.edu/#narrow/dm/1001-[^"]*)"', html)
        assert re.fullmatch(r"[A-Za-z0-9._~:/#-]+", href), href
