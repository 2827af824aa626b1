"""Bad input to the context API: a clear 4xx JSON answer, never a 500."""

from __future__ import annotations

import pytest

from tests.helpers import client_login

BAD_IDS = ["abc", "-1", "0", "1.5", "1e3", "99999999999", "2147483648",
           "999999999999999999999999999999", "%20", "1%00", "\u0661\u0662", "0x10", "+5"]


@pytest.fixture
def staff(client):
    client_login(client, "staff1")
    return client


@pytest.mark.parametrize("raw", BAD_IDS)
@pytest.mark.parametrize("path", ["/api/v1/lms/students/{}/profile",
                                  "/api/v1/lms/students/{}/performance",
                                  "/api/v1/lms/mentors/{}/students"])
def test_bad_ids_are_400_json(staff, path, raw):
    response = staff.get(path.format(raw))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["error"] == "invalid_request"
    assert "whole number from 1 to 2147483647" in response.json["error_description"]


def test_largest_valid_id_is_a_plain_404(staff):
    response = staff.get("/api/v1/lms/students/2147483647/profile")
    assert response.status_code == 404 and response.json["error"] == "not_found"


@pytest.mark.parametrize("query,named", [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=-1", "limit"), ("limit=abc", "limit"),
    ("limit=", "limit"), ("limit=1.5", "limit"), ("offset=-1", "offset"),
    ("offset=1000001", "offset"), ("offset=x", "offset"), ("sort=password", "sort"),
    ("sort=name;drop", "sort"), ("order=sideways", "order"), ("page=0", "page"),
    ("page=1&offset=0", "page"), ("limit=99999999999999999999", "limit"),
])
def test_bad_paging_is_400_json_naming_the_parameter(staff, query, named):
    response = staff.get("/api/v1/lms/mentors/1/students?" + query)
    assert response.status_code == 400
    assert response.json["error"] == "invalid_request"
    assert response.json["error_description"].startswith(named) or \
        named in response.json["error_description"]


def test_paging_walks_every_student_once(staff, lms_facts):
    seen, offset = [], 0
    while offset is not None:
        page = staff.get("/api/v1/lms/mentors/1/students",
                         query_string={"limit": 7, "offset": offset}).json
        assert page["paging"]["total"] == lms_facts["mentor1_students"]
        assert len(page["students"]) <= 7
        seen += [s["id"] for s in page["students"]]
        offset = page["paging"]["next_offset"]
    assert len(seen) == len(set(seen)) == lms_facts["mentor1_students"]


def test_offset_past_the_end_is_an_empty_page_with_the_total(staff, lms_facts):
    page = staff.get("/api/v1/lms/mentors/1/students?offset=5000").json
    assert page["students"] == [] and page["paging"]["next_offset"] is None
    assert page["paging"]["total"] == lms_facts["mentor1_students"]


@pytest.mark.parametrize("sort,key", [("average_score", "average_score"),
                                      ("current_streak", "current_streak"),
                                      ("total_exams", "total_exams")])
def test_sorting(staff, sort, key):
    students = staff.get(f"/api/v1/lms/mentors/1/students?sort={sort}&order=desc&limit=200") \
        .json["students"]
    values = [s[key] for s in students if s[key] is not None]
    assert len(values) > 5 and values == sorted(values, reverse=True)
    names = [s["display_name"].lower() for s in staff.get(
        "/api/v1/lms/mentors/1/students?limit=200").json["students"]]
    assert names == sorted(names)


def test_other_methods_are_405_json(staff):
    response = staff.post("/api/v1/lms/students/1/profile")
    assert response.status_code == 405 and response.json["error"] == "method_not_allowed"
