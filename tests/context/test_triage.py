"""/mentor as triage (issue 13): findings from the learning history, "needs attention" first,
filters by finding, batch and course, name search, CSV export, every flag and column
explained, no message link for inactive students; hostile query strings are 400 pages."""

from __future__ import annotations

import csv
import io
import re

import pytest
from markupsafe import escape

from idp.attention import CATALOGUE
from idp.context.triage import _cell
from tests.helpers import client_login
from tests.history.rows import put_history

ROW = re.compile(r'<tr data-student="(\d+)"')


@pytest.fixture
def mentor(client, app_ctx):
    client_login(client, "mentor1")
    return client


@pytest.fixture
def history(app_ctx):
    """Student 3 never started, student 2's streak was reset, student 4 set a personal best,
    student 1 is steady (all of mentor1; student 5 is inactive in the LMS)."""
    put_history(3, 10, attempts=0, last_attempt_day=None, videos_watched=0, exams_taken=0)
    put_history(2, 4, current_streak=[10, 11, 12, 0], best_streak=12, videos_watched=9)
    put_history(4, 3, current_streak=[7, 8, 9], best_streak=[8, 8, 9], videos_watched=9)
    put_history(1, 3, current_streak=[3, 4, 5], best_streak=20, videos_watched=9)


def rows(client, query: str = "") -> list[int]:
    response = client.get("/mentor" + query)
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    return [int(i) for i in ROW.findall(response.get_data(as_text=True))]


def test_needs_attention_comes_first(mentor, history):
    html = mentor.get("/mentor").get_data(as_text=True)
    listed = [int(i) for i in ROW.findall(html)]
    assert listed[:2] == [3, 2]  # high (not started), then medium (streak reset)
    assert 'class="flag flag-course_not_started sev-high"' in html
    assert "The daily streak was reset: 12 days in a row, now 0." in html
    assert "2 need attention" in html


def test_filters_by_finding_batch_course_and_name(mentor, history, lms_facts):
    assert rows(mentor, "?finding=streak_reset") == [2]
    assert rows(mentor, "?finding=personal_best") == [4]
    assert set(rows(mentor, "?finding=needs_attention")) == {2, 3}
    assert 5 in rows(mentor, "?finding=inactive")
    in_batch = rows(mentor, "?batch=1&sort=name")
    assert {1, 2, 3, 4, 5} <= set(in_batch)
    assert rows(mentor, "?q=student2%40example.edu") == [2]
    assert rows(mentor, "?q=STUDENT3%40EXAMPLE") == [3]
    assert rows(mentor, "?q=nobody-by-this-name") == []
    assert "No student matches these filters." in \
        mentor.get("/mentor?q=nobody").get_data(as_text=True)
    assert rows(mentor, "?course=1&finding=streak_reset") == [2]
    assert rows(mentor, "?course=2&finding=streak_reset") == []


def test_csv_export_has_the_filtered_rows_and_reasons(mentor, history):
    response = mentor.get("/mentor/students.csv?finding=needs_attention")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["id"]) for r in table] == [3, 2]
    assert table[1]["findings"] == "streak_reset" and "reset" in table[1]["reasons"]
    assert table[0]["needs_attention"] == "yes"


def test_csv_cells_cannot_be_formulas():
    assert _cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert _cell("@SUM(A1)") == "'@SUM(A1)" and _cell("+1") == "'+1"
    assert _cell(-3.5) == "-3.5" and _cell(None) == "" and _cell("Ana") == "Ana"


def test_every_flag_and_column_is_explained(mentor, history):
    html = mentor.get("/mentor").get_data(as_text=True)
    legend = html[html.index('id="legend"'):]
    for rule in CATALOGUE.values():
        assert rule.title in legend and str(escape(rule.explanation)) in legend
    for label in ("Name", "Attention", "Streak", "Average", "Change", "Exams", "Last attempt",
                  "Message"):
        assert f"<dt>{label}</dt>" in legend


def test_no_message_link_for_inactive_students(mentor, history):
    from tests.context.test_zulip_links import known_in_zulip

    known_in_zulip("student:1", "1001")
    known_in_zulip("student:5", "1005")
    html = mentor.get("/mentor?batch=1&sort=name").get_data(as_text=True)
    cells = dict(re.findall(r'<tr data-student="(\d+)".*?<td class="col-dm"[^>]*>(.*?)</td>',
                            html, flags=re.S))
    assert cells["5"] == ""  # inactive
    assert 'class="dm"' in cells["1"] and "#narrow/dm/1001-" in cells["1"]


def test_without_history_the_page_says_so(mentor):
    html = mentor.get("/mentor").get_data(as_text=True)
    assert "no snapshot yet" in html and len(ROW.findall(html)) == 25


@pytest.mark.parametrize("query", ["finding=everything", "batch=abc", "course=-1",
                                   "q=" + "x" * 101, "q=a%00b", "sort=attention&order=up",
                                   "sort=password", "page=0", "limit=100"])
def test_hostile_queries_are_400_pages(mentor, query):
    for path in ("/mentor?", "/mentor/students.csv?"):
        response = mentor.get(path + query)
        assert response.status_code == 400, (path, query)
        assert "That link is not right" in response.get_data(as_text=True)


def test_students_cannot_export(client):
    client_login(client, "student1")
    assert client.get("/mentor/students.csv").status_code == 403


def test_struggling_subject_from_the_snapshot_arrays(mentor, app_ctx):
    """Subject averages travel as an array indexed by the subject catalogue."""
    from idp.extensions import db
    from idp.history.models import HistorySubject

    db.session.add_all([HistorySubject(id=1, name="Physics"), HistorySubject(id=2,
                                                                             name="Biology")])
    db.session.commit()
    put_history(1, 2, subject_tenths=[[700, 720], [455, 720]])
    html = mentor.get("/mentor?finding=struggling_subject").get_data(as_text=True)
    assert [int(i) for i in ROW.findall(html)] == [1]
    assert "Struggling in Physics (46%), against 59% across all subjects." in html


def test_no_message_button_on_an_inactive_students_page(mentor):
    from tests.context.test_zulip_links import known_in_zulip

    known_in_zulip("student:1", "1001")
    known_in_zulip("student:5", "1005")
    html = mentor.get("/mentor/students/5").get_data(as_text=True)  # inactive in the LMS
    assert "inactive" in html and "Message in Zulip" not in html
    assert "No Zulip account is known" not in html  # nothing to explain: no message at all
    assert "Message in Zulip" in mentor.get("/mentor/students/1").get_data(as_text=True)
