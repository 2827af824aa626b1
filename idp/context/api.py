"""The academic context API (JSON) under /api/v1/lms/, and its OpenAPI document.

Errors answer ``{"error", "error_description"}``; authentication failures also carry
``WWW-Authenticate: Bearer`` (RFC 6750 §3). A student the caller may not see is answered
exactly like a missing one: 404 with the same body. Every request, whatever its outcome, is
written to the audit log as ``context.read``.
"""

from __future__ import annotations

import logging
import math

from flask import Blueprint, Response, current_app, jsonify, request

from ..extensions import csrf, db
from ..lms.db import LMSBusy, LMSUnavailable
from ..oidc.resource import BearerError
from .access import SCOPE, NotAuthenticated, Viewer, current_viewer
from .audit import record_read
from .openapi import openapi_document
from .params import BadParameter, parse_id, parse_list_query
from .service import ContextService

log = logging.getLogger(__name__)

bp = Blueprint("context_api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

REALM = "lms-context"
NOT_FOUND = "No student with this id is visible to you."
NO_MENTOR = "No mentor with this id is visible to you."


def service() -> ContextService:
    return current_app.extensions["context"].service


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Authorization, Cookie"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _error(status: int, code: str, description: str, headers: dict | None = None) -> Response:
    return _json({"error": code, "error_description": description}, status, headers)


def _audit(resource: str, outcome: str, viewer: Viewer | None, target: str | None,
           **detail) -> None:
    record_read("api", resource, outcome, viewer, target, **detail)


def _quotable(value: str) -> str:
    """RFC 6750 §3: error and error_description use %x20-21 / %x23-5B / %x5D-7E only."""
    return "".join(ch for ch in value if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\')[:200]


def _authenticate(resource: str) -> tuple[Viewer | None, Response | None]:
    """(viewer, None) or (None, error response), the refusal audited."""
    try:
        return current_viewer(service()), None
    except BearerError as refused:
        _audit(resource, "refused", None, None, reason=refused.error)
        challenge = (f'Bearer realm="{REALM}", scope="{SCOPE}", '
                     f'error="{_quotable(refused.error)}", '
                     f'error_description="{_quotable(refused.description)}"')
        return None, _error(refused.status, refused.error, refused.description,
                            {"WWW-Authenticate": challenge})
    except NotAuthenticated:
        _audit(resource, "unauthenticated", None, None)
        return None, _error(401, "unauthorized",
                            f"Send an OAuth bearer token with scope {SCOPE}, or sign in.",
                            {"WWW-Authenticate": f'Bearer realm="{REALM}", scope="{SCOPE}"'})
    except LMSUnavailable as exc:
        return None, _unavailable(resource, None, None, exc)


def _unavailable(resource: str, viewer: Viewer | None, target: str | None,
                 exc: LMSUnavailable) -> Response:
    db.session.rollback()
    log.warning("context API: LMS unavailable and nothing cached: %s", exc)
    _audit(resource, "unavailable", viewer, target)
    if isinstance(exc, LMSBusy):   # the bulkhead: the LMS answers, slowly; a second will do
        return _error(503, "temporarily_unavailable",
                      "The LMS is answering slowly right now and nothing is cached for this "
                      "request. Try again in a moment.", {"Retry-After": "1"})
    retry = str(math.ceil(service().breaker.cooldown))
    return _error(503, "temporarily_unavailable",
                  "The LMS cannot be reached right now and nothing is cached for this "
                  "request. Try again shortly.", {"Retry-After": retry})


def _student(resource: str, raw_id: str, load) -> Response:
    viewer, refusal = _authenticate(resource)
    if refusal is not None:
        return refusal
    try:
        student_id = parse_id(raw_id, "student")
    except BadParameter as bad:
        _audit(resource, "bad_request", viewer, None, reason=str(bad))
        return _error(400, "invalid_request", str(bad))
    target = f"student:{student_id}"
    try:
        owner = service().owner(student_id)
        if owner is None or not viewer.may_see_student(owner.value):
            _audit(resource, "not_found" if owner is None else "forbidden", viewer, target)
            return _error(404, "not_found", NOT_FOUND)
        answer = load(student_id)
    except LMSUnavailable as exc:
        return _unavailable(resource, viewer, target, exc)
    if answer is None:
        _audit(resource, "not_found", viewer, target)
        return _error(404, "not_found", NOT_FOUND)
    stale = answer.stale or viewer.stale
    _audit(resource, "stale" if stale else "ok", viewer, target)
    return _json({**answer.value, **answer.freshness(), "stale": stale})


@bp.get("/lms/students/<raw_id>/profile")
def student_profile(raw_id: str) -> Response:
    """Student info, performance metrics, current courses, subject standing, recent activity."""
    return _student("student_profile", raw_id, lambda sid: service().profile(sid))


@bp.get("/lms/students/<raw_id>/performance")
def student_performance(raw_id: str) -> Response:
    """Exam history, subject performance, learning patterns, recommendations."""
    return _student("student_performance", raw_id, lambda sid: service().performance(sid))


@bp.get("/lms/mentors/<raw_id>/students")
def mentor_students(raw_id: str) -> Response:
    """A page of the mentor's students with their key metrics and flags."""
    resource = "mentor_students"
    viewer, refusal = _authenticate(resource)
    if refusal is not None:
        return refusal
    try:
        mentor_id = parse_id(raw_id, "mentor")
        query = parse_list_query(request.args)
    except BadParameter as bad:
        _audit(resource, "bad_request", viewer, None, reason=str(bad))
        return _error(400, "invalid_request", str(bad))
    target = f"mentor:{mentor_id}"
    if not viewer.may_see_mentor(mentor_id):
        _audit(resource, "forbidden", viewer, target)
        return _error(404, "not_found", NO_MENTOR)
    try:
        mentor = service().mentor(mentor_id)
        if mentor is None:
            _audit(resource, "not_found", viewer, target)
            return _error(404, "not_found", NO_MENTOR)
        page = service().mentor_students(mentor_id, sort=query.sort,
                                         descending=query.descending, limit=query.limit,
                                         offset=query.offset)
        total = page.value["total"]
        if total is None:  # an empty page carries no count: ask for the first row's
            total = 0 if query.offset == 0 else _total(mentor_id)
    except LMSUnavailable as exc:
        return _unavailable(resource, viewer, target, exc)
    following = query.offset + len(page.value["students"])
    stale = mentor.stale or page.stale or viewer.stale
    _audit(resource, "stale" if stale else "ok", viewer, target)
    freshness = page.freshness() if page.fetched_at <= mentor.fetched_at \
        else mentor.freshness()
    return _json({
        "mentor": mentor.value, "students": page.value["students"],
        "paging": {"limit": query.limit, "offset": query.offset, "total": total,
                   "next_offset": following if following < total else None},
        "sort": query.sort, "order": query.order, **freshness, "stale": stale})


def _total(mentor_id: int) -> int:
    first = service().mentor_students(mentor_id, limit=1, offset=0)
    return first.value["total"] or 0


@bp.get("/openapi.json")
def openapi() -> Response:
    """OpenAPI 3.1 description of this API."""
    response = jsonify(openapi_document(current_app.config["IDP"].issuer))
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
