"""Mentor pages: ``/mentor`` (my students) and ``/mentor/students/<id>`` (one student, with
charts). Same access rules as the API (idp.context.access): a student the viewer may not see
gets the same not-found page as a missing one. Every view is written to the audit log."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from flask import (
    Blueprint,
    Response,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from ..extensions import db
from ..lms.db import LMSUnavailable
from ..people import Person
from . import charts
from .access import NotAuthenticated, Viewer, session_viewer
from .audit import record_read
from .params import BadParameter, parse_id, parse_list_query
from .service import ContextService

bp = Blueprint("context_pages", __name__)

PAGE_SIZE = 25
SORT_LABELS = {"name": "Name", "current_streak": "Streak", "average_score": "Average",
               "score_change": "Change", "total_exams": "Exams",
               "last_activity": "Last attempt"}


def _service() -> ContextService:
    return current_app.extensions["context"].service


def _page(template: str, status: int = 200, **context) -> Response:
    response = make_response(render_template(template, **context), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _audit(resource: str, outcome: str, viewer: Viewer | None, target: str | None) -> None:
    record_read("page", resource, outcome, viewer, target)


def _message(status: int, title: str, message: str) -> Response:
    return _page("context/message.html", status, title=title, message=message)


def _unavailable() -> Response:
    db.session.rollback()
    return _message(503, "Temporarily unavailable",
                    "The LMS cannot be reached right now. Please try again in a few minutes.")


def _not_found() -> Response:
    return _message(404, "Student not found",
                    "There is no student with this id among the students you can see.")


def _viewer() -> tuple[Viewer | None, Response | None]:
    """(viewer, None) or (None, response): sign-in redirect or an unavailable page."""
    try:
        return session_viewer(_service()), None
    except NotAuthenticated:
        return None, redirect(url_for("login.login", next=request.full_path.rstrip("?")))
    except LMSUnavailable:
        return None, _unavailable()


def is_mentor_or_staff(person: Person) -> bool:
    return person.kind == "mentor" or person.is_staff


@bp.get("/mentor")
def my_students() -> Response:
    """The signed-in mentor's students: sortable columns, flags, pages of 25."""
    viewer, response = _viewer()
    if response is not None:
        return response
    person = viewer.person
    if not is_mentor_or_staff(person):
        _audit("mentor_page", "forbidden", viewer, None)
        return _message(403, "For mentors", "This page lists a mentor's students. Your "
                        "account is not a mentor account.")
    try:
        query = parse_list_query(request.args, default_limit=PAGE_SIZE)
        if request.args.get("limit") not in (None, str(PAGE_SIZE)):
            raise BadParameter(f"limit is fixed at {PAGE_SIZE} on this page")
    except BadParameter as bad:
        _audit("mentor_page", "bad_request", viewer, None)
        return _message(400, "That link is not right", f"{bad}.")
    page = None
    if person.kind == "mentor":
        try:
            page = _service().mentor_students(person.lms_id, sort=query.sort,
                                              descending=query.descending, limit=PAGE_SIZE,
                                              offset=query.offset)
        except LMSUnavailable:
            return _unavailable()
    _audit("mentor_page", "stale" if page and page.stale else "ok", viewer, person.subject)
    if page is not None and not page.value["students"] and query.offset > 0:
        # past the last page (students moved away since the link was made): start over
        return redirect(url_for("context_pages.my_students", sort=query.sort,
                                order=query.order))
    students = page.value["students"] if page else []
    total = (page.value["total"] if page else 0) or 0
    number = query.offset // PAGE_SIZE + 1
    pages = max(1, -(-total // PAGE_SIZE))

    def link(**changes) -> str:
        args = {"sort": query.sort, "order": query.order, "page": number, **changes}
        return url_for("context_pages.my_students") + "?" + urlencode(args)

    columns = [{"key": key, "label": label,
                "order": ("desc" if query.order == "asc" else "asc")
                if key == query.sort else ("asc" if key == "name" else "desc"),
                "current": key == query.sort} for key, label in SORT_LABELS.items()]
    for column in columns:
        column["url"] = link(sort=column["key"], order=column["order"], page=1)
    return _page("context/my_students.html", person=person, students=students, total=total,
                 page=page, number=number, pages=pages, query=query, columns=columns,
                 previous_url=link(page=number - 1) if number > 1 else None,
                 next_url=link(page=number + 1) if number < pages else None)


@bp.get("/mentor/students/<raw_id>")
def student(raw_id: str) -> Response:
    """One student: metrics, score trend and subject charts, recommendations, a Zulip link."""
    viewer, response = _viewer()
    if response is not None:
        return response
    try:
        student_id = parse_id(raw_id, "student")
    except BadParameter as bad:
        _audit("student_page", "bad_request", viewer, None)
        return _message(400, "That link is not right", f"The {bad}.")
    target = f"student:{student_id}"
    service = _service()
    try:
        owner = service.owner(student_id)
        if owner is None or not viewer.may_see_student(owner.value):
            _audit("student_page", "not_found" if owner is None else "forbidden", viewer,
                   target)
            return _not_found()
        profile = service.profile(student_id)
        performance = service.performance(student_id)
    except LMSUnavailable:
        return _unavailable()
    if profile is None or performance is None:
        _audit("student_page", "not_found", viewer, target)
        return _not_found()
    stale = profile.stale or performance.stale or viewer.stale
    _audit("student_page", "stale" if stale else "ok", viewer, target)
    p, perf = profile.value, performance.value
    weekly = perf["learning_patterns"]["score_trend"]["weekly"]
    trend = charts.line_chart([(w["week_start"][5:], w["average_score"]) for w in weekly])
    subjects = charts.bar_chart([(s["subject"], s["average_score"], s["status"])
                                 for s in perf["subject_performance"]])
    weekdays = perf["learning_patterns"]["activity_by_weekday"]
    busiest = max((d["attempts"] for d in weekdays), default=0) or 1
    weekday_chart = charts.bar_chart([(d["weekday"][:3], d["attempts"], "activity")
                                      for d in weekdays], maximum=busiest, label_width=56)
    zulip = current_app.extensions["context"].settings.zulip_url
    email = p["student"]["email"]
    dm_url = f"{zulip}/#narrow/dm/{quote(email, safe='@.')}" if zulip and email else None
    return _page("context/student.html", profile=p, performance=perf, trend=trend,
                 subjects=subjects, weekday_chart=weekday_chart, dm_url=dm_url, stale=stale,
                 age=max(profile.age_seconds, performance.age_seconds),
                 back_url=url_for("context_pages.my_students")
                 if is_mentor_or_staff(viewer.person) else None)
