"""GraphQL at POST /api/graphql (strawberry): students, mentors and performance over the same
answers, authorization and audit as the MCP tools (idp.agents.answers).

Authentication is a bearer token with ``lms.context`` (RFC 6750), as for the JSON API and with
the same audience rule (a token bound to /mcp is refused); no cookies, so no CSRF. Limits run as
validation rules before anything executes: depth (``IDP_GRAPHQL_MAX_DEPTH``), cost
(``IDP_GRAPHQL_MAX_COST``: one per field, list fields multiply their children by their
``limit``), aliases and tokens; introspection is off unless ``IDP_GRAPHQL_INTROSPECTION``.
A student the caller may not see is ``null`` with a not-found error; ``email`` without the
scope ``lms.context.email`` is ``null`` with a "not authorised" error.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import strawberry
from flask import Blueprint, Response, current_app, request
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
)
from graphql.validation import ValidationContext, ValidationRule
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.types import Info

from ..context.access import SCOPE, Viewer
from ..extensions import csrf
from ..lms.db import LMSUnavailable
from ..oidc.resource import BearerError, check_access_token
from . import answers
from .answers import AgentCaller, BadArgument, NotVisible, Unavailable

log = logging.getLogger(__name__)
bp = Blueprint("agents_graphql", __name__)
csrf.exempt(bp)

MAX_BODY_BYTES = 32 * 1024
VARIABLE_LIMIT = 200        # a list limit given as a variable is costed at its maximum
DEFAULT_LIMIT = 50


class NotAuthorised(GraphQLError):
    pass


def _caller(info: Info) -> AgentCaller:
    return info.context["caller"]


def _run(work):
    try:
        return work()
    except NotVisible as missing:
        raise GraphQLError(str(missing), extensions={"code": "NOT_FOUND"}) from None
    except BadArgument as bad:
        raise GraphQLError(str(bad), extensions={"code": "BAD_USER_INPUT"}) from None
    except Unavailable as down:
        raise GraphQLError(str(down), extensions={"code": "UNAVAILABLE"}) from None


@strawberry.type
class Subject:
    subject: str
    average_score: float | None
    attempts: int | None
    status: str


@strawberry.type
class Recommendation:
    code: str
    title: str
    reason: str
    priority: str


@strawberry.type
class Performance:
    summary: str
    trend: str
    points_per_30_days: float | None
    most_active_weekday: str | None
    subjects: list[Subject]
    recommendations: list[Recommendation]


@strawberry.type
class Student:
    id: int
    display_name: str
    username: str
    batch: str | None
    summary: str
    average_score: float | None
    current_streak: int | None
    highest_streak: int | None
    percentile_rank: float | None
    struggling_subjects: list[str]
    strong_subjects: list[str]
    _email: strawberry.Private[str | None]

    @strawberry.field(description="needs the scope lms.context.email")
    def email(self, info: Info) -> str | None:
        if not _caller(info).sees_emails:
            raise NotAuthorised("Not authorised: email needs the scope lms.context.email.",
                                extensions={"code": "FORBIDDEN"})
        return self._email

    @strawberry.field
    def performance(self, info: Info) -> Performance:
        value = _run(lambda: answers.student_performance(_caller(info), self.id))
        trend = value["learning_patterns"]["score_trend"]
        return Performance(
            summary=value["summary"], trend=trend["direction"],
            points_per_30_days=trend["points_per_30_days"],
            most_active_weekday=value["learning_patterns"]["most_active_weekday"],
            subjects=[Subject(subject=s["subject"], average_score=s["average_score"],
                              attempts=s["attempts"], status=s["status"])
                      for s in value["subject_performance"]],
            recommendations=[Recommendation(code=r["code"], title=r["title"],
                                            reason=r["reason"], priority=r["priority"])
                             for r in value["recommendations"]])


def _student(value: dict) -> Student:
    s, m = value["student"], value["performance_metrics"]
    return Student(id=s["id"], display_name=s["display_name"], username=s["username"],
                   batch=(s.get("batch") or {}).get("name"), summary=value["summary"],
                   average_score=m["average_score"], current_streak=m["current_streak"],
                   highest_streak=m["highest_streak"], percentile_rank=m["percentile_rank"],
                   struggling_subjects=value["struggling_subjects"],
                   strong_subjects=value["strong_subjects"], _email=s.get("email"))


@strawberry.type
class ListedStudent:
    id: int
    display_name: str
    username: str
    average_score: float | None
    current_streak: int | None
    flags: list[str]

    @strawberry.field
    def profile(self, info: Info) -> Student:
        return _student(_run(lambda: answers.student_profile(_caller(info), self.id)))


def _listed(rows: list[dict]) -> list[ListedStudent]:
    return [ListedStudent(id=r["id"], display_name=r["display_name"], username=r["username"],
                          average_score=r.get("average_score"),
                          current_streak=r.get("current_streak"), flags=r.get("flags", []))
            for r in rows]


@strawberry.type
class Me:
    subject: str | None
    kind: str
    display_name: str


@strawberry.type
class Query:
    @strawberry.field
    def me(self, info: Info) -> Me:
        person = _caller(info).viewer.person
        if person is None:
            return Me(subject=None, kind="service", display_name=_caller(info).viewer.client_id
                      or "service")
        return Me(subject=person.subject, kind=person.kind, display_name=person.full_name)

    @strawberry.field(description="A student you may see, or null with a NOT_FOUND error.")
    def student(self, info: Info, id: int) -> Student | None:
        return _student(_run(lambda: answers.student_profile(_caller(info), id)))

    @strawberry.field(description="Your students (mentors), by name.")
    def my_students(self, info: Info, limit: int = DEFAULT_LIMIT,
                    offset: int = 0) -> list[ListedStudent]:
        page = _run(lambda: answers.list_my_students(_caller(info), limit, offset))
        return _listed(page["students"])

    @strawberry.field(description="Your students who need attention, most urgent first.")
    def students_needing_attention(self, info: Info) -> list[ListedStudent]:
        found = _run(lambda: answers.students_needing_attention(_caller(info)))
        return _listed(found["students"])


# -- cost limit ------------------------------------------------------------------------------
def _limit_of(field: FieldNode) -> int | None:
    for argument in field.arguments or ():
        if argument.name.value == "limit":
            if isinstance(argument.value, IntValueNode):
                return max(1, min(int(argument.value.value), VARIABLE_LIMIT))
            return VARIABLE_LIMIT
    return None


LIST_FIELDS = {"myStudents": DEFAULT_LIMIT, "studentsNeedingAttention": VARIABLE_LIMIT}


def _cost(node, fragments: dict, multiplier: int, seen: frozenset) -> int:
    total = 0
    for selection in getattr(node.selection_set, "selections", None) or ():
        if isinstance(selection, FieldNode):
            total += multiplier
            if selection.selection_set is not None:
                child = _limit_of(selection) or LIST_FIELDS.get(selection.name.value, 1)
                total += _cost(selection, fragments, multiplier * child, seen)
        elif isinstance(selection, InlineFragmentNode):
            total += _cost(selection, fragments, multiplier, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                total += _cost(fragments[name], fragments, multiplier, seen | {name})
        if total > 10**9:
            break
    return total


def cost_rule(max_cost: int) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            fragments = {d.name.value: d for d in document.definitions
                         if isinstance(d, FragmentDefinitionNode)}
            for operation in document.definitions:
                if isinstance(operation, OperationDefinitionNode):
                    cost = _cost(operation, fragments, 1, frozenset())
                    if cost > max_cost:
                        context.report_error(GraphQLError(
                            f"The query costs {cost}, over the limit of {max_cost}; ask for "
                            f"fewer fields or smaller pages.", extensions={"code": "TOO_COSTLY"}))

    return CostLimit


def build_schema(settings) -> strawberry.Schema:
    cost = cost_rule(settings.graphql_max_cost)
    extensions = [lambda: QueryDepthLimiter(max_depth=settings.graphql_max_depth),
                  lambda: AddValidationRules([cost]),
                  lambda: MaxAliasesLimiter(max_alias_count=15),
                  lambda: MaxTokensLimiter(max_token_count=2000)]
    if not settings.graphql_introspection:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(query=Query, extensions=extensions)


# -- HTTP ------------------------------------------------------------------------------------
def _json(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    response = current_app.response_class(json.dumps(payload), status=status,
                                          mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _problem(status: int, message: str, headers: dict | None = None) -> Response:
    return _json({"errors": [{"message": message}]}, status, headers)


@bp.post("/api/graphql")
def graphql_endpoint() -> Response:
    """GraphQL over HTTP (POST, application/json): ``{"query", "variables", "operationName"}``."""
    try:
        _row, grant, person = check_access_token(request.headers.get("Authorization"), SCOPE)
    except BearerError as refused:
        return _problem(refused.status, refused.description,
                        {"WWW-Authenticate": f'Bearer realm="lms-context", scope="{SCOPE}", '
                                             f'error="{refused.error}"'})
    except LMSUnavailable:
        return _problem(503, "The LMS cannot be reached right now.")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _problem(413, "The request body is too large.")
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _problem(400, "Send a JSON object with a query string.")
    variables, operation = body.get("variables"), body.get("operationName")
    if variables is not None and not isinstance(variables, dict) \
            or operation is not None and not isinstance(operation, str):
        return _problem(400, "variables must be an object and operationName a string.")
    caller = AgentCaller(Viewer(person, "token", client_id=grant.client_id), grant.scopes,
                         "graphql")
    schema = current_app.extensions["agents"].graphql_schema
    result = schema.execute_sync(body["query"], variable_values=variables,
                                 operation_name=operation, context_value={"caller": caller})
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [_error(e) for e in result.errors]
    return _json(payload, 200 if result.data is not None else 400)


def _error(error: GraphQLError) -> dict:
    """Known errors as they are; anything unexpected logged and masked."""
    original = error.original_error
    if original is not None and not isinstance(original, GraphQLError):
        log.exception("GraphQL resolver failed", exc_info=original)
        return {"message": "Internal error.", "path": error.path}
    return error.formatted
