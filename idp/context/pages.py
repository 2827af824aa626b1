"""Mentor pages: ``/mentor`` (my students) and ``/mentor/students/<id>`` (one student, with
charts). Same access rules as the API (idp.context.access): a student the viewer may not see
gets the same not-found page as a missing one. Every view is written to the audit log."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

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

from .. import clock
from ..attention import CATALOGUE
from ..attention.assess import assess_one
from ..attention.wording import for_student
from ..extensions import db
from ..history.snapshots import last_complete_day
from ..lms.db import LMSUnavailable
from ..people import Person
from ..zulip_accounts import dm_narrow_url, zulip_user_ids
from . import charts
from .access import NotAuthenticated, Viewer, session_viewer
from .audit import record_read
from .params import BadParameter, parse_id
from .service import ContextService
from .triage import PAGE_SIZE, SPECIAL_FILTERS, Triage, as_csv, mentor_triage, parse_triage

bp = Blueprint("context_pages", __name__)



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


COLUMNS = {"name": ("Name", "The student's name and batch; a link to their page."),
           "attention": ("Attention", "What the attention rules found on the last school "
                         "day's snapshot, most urgent first."),
           "current_streak": ("Streak", "Days in a row with learning activity, and the best "
                              "streak so far."),
           "average_score": ("Average", "Average score of every scored exam attempt."),
           "score_change": ("Change", "Average of the last 5 attempts minus that of the 5 "
                            "before (points)."),
           "total_exams": ("Exams", "Exams taken, as the LMS counts them."),
           "last_activity": ("Last attempt", "Date of the latest exam attempt (UTC).")}


def _triage_request(person: Person, viewer: Viewer):
    """(query, triage) or (None, response) for /mentor and its CSV export."""
    try:
        query = parse_triage(request.args)
    except BadParameter as bad:
        _audit("mentor_page", "bad_request", viewer, None)
        return None, _message(400, "That link is not right", f"{bad}.")
    if person.kind != "mentor":
        return query, None
    try:
        return query, mentor_triage(_service(), person.lms_id, query)
    except LMSUnavailable:
        return None, _unavailable()


def _mentor_only(viewer: Viewer) -> Response | None:
    if not is_mentor_or_staff(viewer.person):
        _audit("mentor_page", "forbidden", viewer, None)
        return _message(403, "For mentors", "This page lists a mentor's students. Your "
                        "account is not a mentor account.")
    return None


@bp.get("/mentor")
def my_students() -> Response:
    """Mentor triage: the signed-in mentor's students, "needs attention" first, with filters
    by finding, batch and course, a name search, sortable columns and pages of 25."""
    viewer, response = _viewer()
    if response is not None:
        return response
    person = viewer.person
    refused = _mentor_only(viewer)
    if refused is not None:
        return refused
    query, result = _triage_request(person, viewer)
    if query is None:
        return result
    triage = result if isinstance(result, Triage) else None
    roster = triage.roster if triage else None
    _audit("mentor_page", "stale" if roster and roster.stale else "ok", viewer, person.subject)
    rows = triage.rows if triage else []
    total = len(rows)
    pages = max(1, -(-total // PAGE_SIZE))
    if query.page > pages:
        return redirect(url_for("context_pages.my_students", **query.args(page=1)))
    students = rows[(query.page - 1) * PAGE_SIZE:query.page * PAGE_SIZE]

    def link(**changes) -> str:
        return url_for("context_pages.my_students") + "?" + urlencode(query.args(**changes))

    columns = []
    for key, (label, explanation) in COLUMNS.items():
        current = key == query.sort
        order = ("asc" if query.descending else "desc") if current else \
            ("asc" if key == "name" else "desc")
        columns.append({"key": key, "label": label, "explanation": explanation,
                        "current": current, "url": link(sort=key, order=order, page=1)})
    zulip = current_app.extensions["context"].settings.zulip_url
    return _page("context/my_students.html", person=person, students=students, total=total,
                 dm_urls=_dm_urls(zulip, [s for s in students if s["active"]]),
                 triage=triage, roster=roster, number=query.page, pages=pages, query=query,
                 columns=columns, rules=CATALOGUE, special_filters=SPECIAL_FILTERS,
                 zulip=zulip, csv_url=url_for("context_pages.my_students_csv")
                 + "?" + urlencode(query.args(page=1)),
                 previous_url=link(page=query.page - 1) if query.page > 1 else None,
                 next_url=link(page=query.page + 1) if query.page < pages else None)


@bp.get("/mentor/students.csv")
def my_students_csv() -> Response:
    """The triage rows (every page, same filters) as CSV."""
    viewer, response = _viewer()
    if response is not None:
        return response
    refused = _mentor_only(viewer)
    if refused is not None:
        return refused
    query, result = _triage_request(viewer.person, viewer)
    if query is None:
        return result
    _audit("mentor_csv", "ok", viewer, viewer.person.subject)
    body = as_csv(result.rows if isinstance(result, Triage) else [])
    out = make_response(body, 200)
    out.headers["Content-Type"] = "text/csv; charset=utf-8"
    out.headers["Content-Disposition"] = 'attachment; filename="my-students.csv"'
    out.headers["Cache-Control"] = "no-store"
    return out


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
    dm_url = _dm_urls(zulip, [p["student"]] if p["student"]["active"] else []).get(student_id)
    extra: dict = {}
    for section in current_app.extensions.get("student_sections", ()):
        extra.update(section(viewer.person, student_id, owner.value))
    return _page("context/student.html", profile=p, performance=perf, trend=trend, extra=extra,
                 subjects=subjects, weekday_chart=weekday_chart, dm_url=dm_url, zulip=zulip,
                 stale=stale,
                 age=max(profile.age_seconds, performance.age_seconds),
                 back_url=url_for("context_pages.my_students")
                 if is_mentor_or_staff(viewer.person) else None)


def _dm_urls(zulip: str | None, students: list[dict]) -> dict[int, str]:
    """student id → the Zulip link to a direct message with them, by Zulip user id, for those
    the ledger of Zulip accounts knows (one query). Without an id there is no link: a link by
    email may open nothing (:func:`idp.zulip_accounts.dm_narrow_url`)."""
    if not zulip or not students:
        return {}
    ids = zulip_user_ids(db.session, [f"student:{s['id']}" for s in students])
    return {s["id"]: dm_narrow_url(zulip, ids[f"student:{s['id']}"], s["display_name"] or "")
            for s in students if f"student:{s['id']}" in ids}


def is_student(person: Person) -> bool:
    return person.kind == "student"


@bp.get("/me")
def me() -> Response:
    """A student's own progress, written to them: streaks, scores, subjects, what the
    attention rules found (in the second person), the learning history's trend."""
    viewer, response = _viewer()
    if response is not None:
        return response
    person = viewer.person
    if not is_student(person):
        _audit("me_page", "forbidden", viewer, None)
        return _message(403, "For students", "This page shows a student's own progress. "
                        "Mentors see their students at /mentor.")
    try:
        profile = _service().profile(person.lms_id)
    except LMSUnavailable:
        return _unavailable()
    if profile is None:
        _audit("me_page", "not_found", viewer, person.subject)
        return _not_found()
    history = current_app.extensions["history"].settings
    today = last_complete_day(clock.now(), history.timezone)
    courses = {c["id"]: c["name"] for c in profile.value["current_courses"]}
    days, findings = assess_one(current_app.extensions["attention"], today, person.lms_id,
                                courses)
    recent = [d for d in days if d.day > today - dt.timedelta(days=60)]
    trend = charts.line_chart([(d.day.isoformat()[5:], d.average) for d in recent])
    _audit("me_page", "stale" if profile.stale else "ok", viewer, person.subject)
    return _page("context/me.html", person=person, profile=profile.value,
                 stale=profile.stale or viewer.stale, age=profile.age_seconds,
                 concerns=[(f, for_student(f)) for f in findings if f.needs_attention],
                 good_news=[(f, for_student(f)) for f in findings if not f.needs_attention],
                 trend=trend, history_days=len(days), extra=me_extras(person))


def me_extras(person: Person) -> dict:
    """What other packages add to /me (the nudges preference form): registered callables
    in ``app.extensions["me_sections"]``, each returning a dict merged into the context."""
    out: dict = {}
    for section in current_app.extensions.get("me_sections", ()):
        out.update(section(person))
    return out
