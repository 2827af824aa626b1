"""/me: a student's own progress written to them, linked from their start page; findings in
the second person; mentors are sent to /mentor."""

from __future__ import annotations

import pytest

from tests.helpers import client_login
from tests.history.rows import put_history


@pytest.fixture
def student(client, app_ctx):
    client_login(client, "student2")
    return client


def test_start_page_links_students_to_their_progress(client):
    client_login(client, "student1")
    assert 'href="/me"' in client.get("/").get_data(as_text=True)
    client_login(client, "mentor1")
    assert 'href="/me"' not in client.get("/").get_data(as_text=True)


def test_me_speaks_to_the_student(student):
    put_history(2, 4, current_streak=[10, 11, 12, 0], best_streak=12, videos_watched=9)
    response = student.get("/me")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>My progress</h1>" in html and "Your average score is" in html
    assert "Your streak of 12 days was reset" in html
    assert "finding-streak_reset" in html
    assert "<script" not in html and " style=" not in html


def test_good_news_is_told_too(student):
    put_history(2, 3, current_streak=[7, 8, 9], best_streak=[8, 8, 9])
    html = student.get("/me").get_data(as_text=True)
    assert "New personal best: 9 days in a row" in html


def test_me_without_history(student):
    assert "Your learning history starts with tomorrow" in student.get("/me").get_data(
        as_text=True)


def test_me_is_for_students(client):
    assert client.get("/me").status_code == 302
    client_login(client, "mentor1")
    response = client.get("/me")
    assert response.status_code == 403 and "/mentor" in response.get_data(as_text=True)
