"""The OpenAPI document describes the API: real answers (success and error) validate against
it, and the validator itself rejects answers that drift from it."""

from __future__ import annotations

import copy

import pytest

from tests.context.jsonschema_lite import response_schema, validate
from tests.helpers import client_login

PROFILE = "/api/v1/lms/students/{id}/profile"
PERFORMANCE = "/api/v1/lms/students/{id}/performance"
MENTOR = "/api/v1/lms/mentors/{id}/students"


@pytest.fixture
def document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json
    assert doc["openapi"].startswith("3.1")
    return doc


def check(document, template: str, status: int, body: dict) -> None:
    errors = validate(body, response_schema(document, template, str(status)), document)
    assert errors == [], errors


def test_document_is_public_and_lists_the_three_paths(document, base_url):
    assert set(document["paths"]) == {PROFILE, PERFORMANCE, MENTOR}
    assert document["servers"] == [{"url": base_url}]
    assert document["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"


@pytest.mark.parametrize("student_id", [1, 2, 3, 4, 5, 6, 30, 60])
def test_student_answers_match_the_document(client, document, student_id):
    client_login(client, "staff1")
    for template in (PROFILE, PERFORMANCE):
        response = client.get(template.format(id=student_id))
        assert response.status_code == 200
        check(document, template, 200, response.json)


def test_mentor_list_matches_the_document(client, document):
    client_login(client, "staff1")
    for query in ("", "?sort=average_score&order=desc&limit=3", "?offset=9999"):
        response = client.get(MENTOR.format(id=1) + query)
        check(document, MENTOR, 200, response.json)


def test_error_answers_match_the_document(client, document):
    check(document, PROFILE, 401, client.get(PROFILE.format(id=1)).json)
    client_login(client, "student1")
    check(document, PROFILE, 404, client.get(PROFILE.format(id=2)).json)
    check(document, PROFILE, 400, client.get(PROFILE.format(id="x")).json)
    check(document, MENTOR, 400, client.get(MENTOR.format(id=1) + "?limit=0").json)


def test_validator_rejects_drift(client, document):
    client_login(client, "staff1")
    body = client.get(PROFILE.format(id=1)).json
    schema = response_schema(document, PROFILE, "200")
    assert validate(body, schema, document) == []
    extra = copy.deepcopy(body)
    extra["performance_metrics"]["secret"] = 1
    assert any("undocumented property 'secret'" in e for e in validate(extra, schema, document))
    missing = copy.deepcopy(body)
    del missing["student"]["email"]
    assert any("missing required 'email'" in e for e in validate(missing, schema, document))
    wrong = copy.deepcopy(body)
    wrong["performance_metrics"]["average_score"] = "high"
    assert validate(wrong, schema, document)
    out_of_range = copy.deepcopy(body)
    out_of_range["performance_metrics"]["percentile_rank"] = 101
    assert validate(out_of_range, schema, document)
    bad_time = copy.deepcopy(body)
    bad_time["as_of"] = "yesterday"
    assert validate(bad_time, schema, document)
