"""The OpenAPI 3.1 document of the context API (served at /api/v1/openapi.json).

Schemas are JSON Schema 2020-12 (OpenAPI 3.1 §4.8.24); every object is closed
(``additionalProperties: false``) so the tests that validate real answers against it notice a
field that is added without being documented.
"""

from __future__ import annotations

from .params import DEFAULT_LIMIT, MAX_ID, MAX_LIMIT, MAX_OFFSET
from .queries import MENTOR_SORTS


def _obj(properties: dict, required: list[str] | None = None, **extra) -> dict:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required,
            "additionalProperties": False, **extra}


def _nullable(schema: dict) -> dict:
    kind = schema["type"]
    return {**schema, "type": [kind, "null"] if isinstance(kind, str) else [*kind, "null"]}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


INT = {"type": "integer"}
NUM = {"type": "number"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
TIME = {"type": "string", "format": "date-time"}
DATE = {"type": "string", "format": "date"}
SCORE = {"type": ["number", "null"], "minimum": 0, "maximum": 100,
         "description": "percent, one decimal; null without scored attempts"}
COUNT = {"type": ["integer", "null"], "minimum": 0}
FRESHNESS = {
    "stale": {"type": "boolean", "description": "true when the LMS could not be reached and "
              "(part of) the answer comes from the last known good cache entry"},
    "as_of": {**TIME, "description": "when the oldest part of the answer was read from the LMS"},
    "age_seconds": {"type": "integer", "minimum": 0, "description": "age of that part"},
}

SCHEMAS = {
    "Error": _obj({"error": STR, "error_description": STR}),
    "Ref": _obj({"id": INT, "name": STR}),
    "PersonRef": _obj({"id": INT, "subject": STR, "display_name": STR, "email": STR}),
    "StudentInfo": _obj({
        "id": INT, "subject": {"type": "string", "pattern": "^student:[0-9]+$"},
        "username": STR, "email": STR, "first_name": STR, "last_name": STR,
        "display_name": STR, "active": BOOL, "created": _nullable(TIME),
        "batch": {"oneOf": [_ref("Ref"), {"type": "null"}]},
        "mentor": {"oneOf": [_ref("PersonRef"), {"type": "null"}]}}),
    "PerformanceMetrics": _obj({
        "current_streak": COUNT, "highest_streak": COUNT, "average_score": SCORE,
        "percentile_rank": {**SCORE, "description": "percent_rank of the average score within "
                            "the batch, 0-100"},
        "batch_size": {**COUNT, "description": "students of the batch with scored attempts"},
        "total_exams": COUNT, "attempts_count": COUNT, "videos_watched": COUNT,
        "streak_broken": BOOL, "scores_falling": BOOL}),
    "Course": _obj({"id": INT, "name": STR, "batch_id": _nullable(INT),
                    "batch_name": _nullable(STR)}),
    "AttemptSummary": _obj({"id": INT, "date": TIME, "percentage": SCORE}),
    "RecentActivity": _obj({
        "last_attempt_at": _nullable(TIME), "attempts_last_7_days": COUNT,
        "attempts_last_30_days": COUNT, "activity_updated_at": _nullable(DATE),
        "recent_attempts": {"type": "array", "items": _ref("AttemptSummary")}}),
    "StudentProfile": _obj({
        "student": _ref("StudentInfo"), "performance_metrics": _ref("PerformanceMetrics"),
        "current_courses": {"type": "array", "items": _ref("Course")},
        "struggling_subjects": {"type": "array", "items": STR},
        "strong_subjects": {"type": "array", "items": STR},
        "recent_activity": _ref("RecentActivity"), **FRESHNESS}),
    "SubjectScore": _obj({"subject": STR, "score": SCORE}),
    "Attempt": _obj({"id": INT, "date": TIME, "percentage": SCORE,
                     "subjects": {"type": "array", "items": _ref("SubjectScore")}}),
    "SubjectPerformance": _obj({
        "subject": STR, "average_score": SCORE, "best_score": SCORE, "lowest_score": SCORE,
        "attempts": {"type": "integer", "minimum": 0}, "recent_average": SCORE,
        "status": {"enum": ["struggling", "steady", "strong"]}}),
    "WeekdayActivity": _obj({
        "weekday": {"enum": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                             "Saturday", "Sunday"]},
        "iso_weekday": {"type": "integer", "minimum": 1, "maximum": 7},
        "attempts": {"type": "integer", "minimum": 0}, "average_score": SCORE}),
    "WeeklyScore": _obj({"week_start": DATE, "attempts": {"type": "integer", "minimum": 0},
                         "average_score": SCORE}),
    "Recommendation": _obj({
        "code": {"enum": ["scores_falling", "review_subject", "resume_practice",
                          "first_attempt", "restart_streak", "watch_lessons", "spread_practice",
                          "stretch_goals", "peer_help"]},
        "title": STR, "reason": {**STR, "description": "the numbers that triggered it"},
        "priority": {"enum": ["high", "medium", "low"]}, "subject": _nullable(STR)}),
    "StudentPerformance": _obj({
        "student": _obj({"id": INT, "subject": STR, "display_name": STR, "email": STR,
                         "active": BOOL}),
        "exam_history": _obj({"total": {"type": "integer", "minimum": 0},
                              "attempts": {"type": "array", "items": _ref("Attempt"),
                                           "maxItems": 50}}),
        "subject_performance": {"type": "array", "items": _ref("SubjectPerformance")},
        "learning_patterns": _obj({
            "activity_by_weekday": {"type": "array", "items": _ref("WeekdayActivity"),
                                    "minItems": 7, "maxItems": 7},
            "most_active_weekday": _nullable(STR),
            "score_trend": _obj({
                "direction": {"enum": ["improving", "steady", "declining", "unknown"]},
                "points_per_30_days": _nullable(NUM),
                "weekly": {"type": "array", "items": _ref("WeeklyScore")}})}),
        "recommendations": {"type": "array", "items": _ref("Recommendation")},
        **FRESHNESS}),
    "ListedStudent": _obj({
        "id": INT, "subject": STR, "username": STR, "email": STR, "display_name": STR,
        "active": BOOL, "batch": {"oneOf": [_ref("Ref"), {"type": "null"}]},
        "current_streak": COUNT, "highest_streak": COUNT, "average_score": SCORE,
        "total_exams": COUNT, "videos_watched": COUNT, "last_attempt_at": _nullable(TIME),
        "recent_average": SCORE, "previous_average": SCORE,
        "score_change": {"type": ["number", "null"],
                         "description": "recent_average - previous_average (last 5 attempts "
                                        "against the 5 before)"},
        "flags": {"type": "array",
                  "items": {"enum": ["inactive", "streak_broken", "scores_falling"]}}}),
    "MentorStudents": _obj({
        "mentor": _ref("PersonRef"),
        "students": {"type": "array", "items": _ref("ListedStudent")},
        "paging": _obj({"limit": INT, "offset": INT, "total": {"type": "integer", "minimum": 0},
                        "next_offset": _nullable(INT)}),
        "sort": {"enum": list(MENTOR_SORTS)}, "order": {"enum": ["asc", "desc"]},
        **FRESHNESS}),
}


def _errors(*codes: int) -> dict:
    text = {400: "Malformed id or query parameter", 401: "No valid token or session",
            403: "The token lacks scope lms.context (RFC 6750 insufficient_scope)",
            404: "Not found, or not visible to the caller (the same answer for both)",
            503: "The LMS is unreachable and nothing is cached for this request"}
    return {str(code): {"description": text[code], "content": {
        "application/json": {"schema": _ref("Error")}}} for code in codes}


def _id_param(what: str) -> dict:
    return {"name": "id", "in": "path", "required": True,
            "description": f"the LMS {what} id",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}


def _get(summary: str, description: str, schema: str, params: list[dict]) -> dict:
    return {"get": {
        "summary": summary, "description": description, "parameters": params,
        "security": [{"bearerToken": ["lms.context"]}, {"session": []}],
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": _ref(schema)}}},
            **_errors(400, 401, 403, 404, 503)}}}


def openapi_document(issuer: str) -> dict:
    """The document, with the bridge's own base URL as the server."""
    paging = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                    "maximum": MAX_LIMIT,
                                                    "default": DEFAULT_LIMIT}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0,
                                                     "maximum": MAX_OFFSET, "default": 0}},
        {"name": "sort", "in": "query", "schema": {"enum": list(MENTOR_SORTS),
                                                   "default": "name"}},
        {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"],
                                                    "default": "asc"}},
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "LMS academic context API", "version": "1.0.0",
                 "description": "Read-only academic context from the LMS for mentors, students "
                                "and services (AI agents). See docs/context-api.md."},
        "servers": [{"url": issuer}],
        "paths": {
            "/api/v1/lms/students/{id}/profile": _get(
                "Student profile", "Student info, performance metrics (streaks, average, "
                "percentile rank in the batch, exams, videos), current courses, struggling and "
                "strong subjects, recent activity.", "StudentProfile", [_id_param("student")]),
            "/api/v1/lms/students/{id}/performance": _get(
                "Student performance", "Exam history (latest 50), subject performance, "
                "learning patterns (activity by weekday, score trend), rule-based "
                "recommendations with their reasons.", "StudentPerformance",
                [_id_param("student")]),
            "/api/v1/lms/mentors/{id}/students": _get(
                "A mentor's students", "The mentor's students with key metrics and flags, "
                "paged and sorted.", "MentorStudents", [_id_param("mentor"), *paging]),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer",
                                "description": "OAuth 2.0 access token from this bridge with "
                                               "scope lms.context (RFC 6750)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "idp_session",
                            "description": "the bridge's own signed-in browser session"}},
        },
    }
