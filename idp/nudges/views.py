"""Nudge pages: ``/admin/nudges`` (staff: today's plan, runs, sent, held, suppressed, failed),
the opt-out form on ``/me`` and a mentor's mute switch on a student's page."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert

from .. import clock
from ..audit import record
from ..extensions import db
from ..history.snapshots import last_complete_day
from ..lms.academics import SqlAcademics
from ..lms.db import LMSUnavailable
from ..lms.directory import get_directory
from ..login.sessions import current_person
from ..people import Person
from .models import Nudge, NudgeMute, NudgePreference, NudgeRun
from .runs import plan_day

bp = Blueprint("nudges", __name__)
STATUSES = ("pending", "held", "queued", "sent", "suppressed", "failed")


def _signed_in() -> Person | ResponseReturnValue:
    person = current_person()
    if person is None:
        return redirect("/login?" + urlencode({"next": request.path}))
    return person


def nudges_off(subject: str) -> bool:
    pref = db.session.get(NudgePreference, subject)
    return bool(pref and pref.nudges_off)


def me_section(person: Person) -> dict:
    """What /me shows of nudges: the switch."""
    return {"nudge_form": True, "nudges_off": nudges_off(person.subject)}


@bp.post("/me/nudges")
def set_preference() -> ResponseReturnValue:
    """A student turns nudges off (``nudges=off``) or on again (``nudges=on``)."""
    person = _signed_in()
    if not isinstance(person, Person):
        return person
    if person.kind != "student":
        abort(403)
    choice = request.form.get("nudges")
    if choice not in ("on", "off"):
        abort(400)
    db.session.execute(insert(NudgePreference).values(
        subject=person.subject, nudges_off=choice == "off", updated_at=clock.now())
        .on_conflict_do_update(index_elements=["subject"],
                               set_={"nudges_off": choice == "off",
                                     "updated_at": clock.now()}))
    record("nudge_preference", choice, person.subject)
    db.session.commit()
    return redirect(url_for("context_pages.me") + "#nudges", 303)


@bp.post("/mentor/students/<raw_id>/mute")
def mute(raw_id: str) -> ResponseReturnValue:
    """The student's own mentor mutes (``mute=on``) or unmutes automatic nudges for them."""
    person = _signed_in()
    if not isinstance(person, Person):
        return person
    if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 10
            and 1 <= int(raw_id) <= 2**31 - 1):
        abort(400)
    student_id = int(raw_id)
    choice = request.form.get("mute")
    if choice not in ("on", "off") or person.kind != "mentor":
        abort(400 if person.kind == "mentor" else 403)
    try:
        owner = SqlAcademics(get_directory().engine).owner(student_id)
    except LMSUnavailable:
        abort(503)
    if owner is None or owner["mentor_id"] != person.lms_id:
        abort(404)  # the same answer for another mentor's student as for a missing one
    if choice == "on":
        db.session.execute(insert(NudgeMute).values(
            mentor_id=person.lms_id, student_id=student_id, created_at=clock.now())
            .on_conflict_do_nothing())
    else:
        db.session.execute(delete(NudgeMute).where(NudgeMute.mentor_id == person.lms_id,
                                                   NudgeMute.student_id == student_id))
    record("nudge_mute", choice, person.subject, student=f"student:{student_id}")
    db.session.commit()
    return redirect(url_for("context_pages.student", raw_id=student_id), 303)


def student_section(viewer: Person, student_id: int, owner: dict) -> dict:
    """What a student's page shows of nudges: the mute switch, to the student's mentor."""
    if viewer.kind != "mentor" or owner.get("mentor_id") != viewer.lms_id:
        return {}
    muted = db.session.get(NudgeMute, (viewer.lms_id, student_id)) is not None
    return {"mute_form": True, "muted": muted, "student_id": student_id}


_PLANS: dict = {}
PLAN_CACHE_SECONDS = 600


def _cached_plan(ext, day):
    """Planning reads every student's history and the LMS directory (tens of seconds for
    100k students): one computation per process and day every 10 minutes at most."""
    hit = _PLANS.get(day)
    now = clock.now().timestamp()
    if hit is None or now - hit[0] > PLAN_CACHE_SECONDS:
        _PLANS.clear()
        hit = _PLANS[day] = (now, plan_day(ext, day, get_directory().iter_people()))
    return hit[1]


@bp.get("/admin/nudges")
def admin_page() -> ResponseReturnValue:
    """Staff: the plan for the last school day, recent runs, and every nudge by status."""
    person = _signed_in()
    if not isinstance(person, Person):
        return person
    if not person.is_staff:
        abort(403)
    ext = current_app.extensions["nudges"]
    tz = current_app.extensions["history"].settings.timezone
    day = last_complete_day(clock.now(), tz)
    recorded = db.session.scalar(select(NudgeRun).where(NudgeRun.day == day))
    plan = None
    if recorded is None:  # before the worker's run: what it would do (cached a while)
        try:
            plan = _cached_plan(ext, day)
        except LMSUnavailable:
            plan = None
    counts = dict(db.session.execute(select(Nudge.status, func.count())
                                     .group_by(Nudge.status)).all())
    causes = dict(db.session.execute(select(Nudge.cause, func.count())
                                     .where(Nudge.cause.isnot(None))
                                     .group_by(Nudge.cause)).all())
    runs = db.session.scalars(select(NudgeRun).order_by(NudgeRun.id.desc()).limit(10)).all()
    recent = {status: db.session.scalars(select(Nudge).where(Nudge.status == status)
                                         .order_by(Nudge.id.desc()).limit(20)).all()
              for status in STATUSES}
    response = current_app.make_response(render_template(
        "nudges/admin.html", plan=plan, recorded=recorded, day=day,
        planned=db.session.scalars(select(Nudge).where(Nudge.run_id == recorded.id)
                                   .order_by(Nudge.id).limit(200)).all() if recorded else [],
        counts=counts, causes=causes, runs=runs,
        recent=recent, statuses=STATUSES, settings=ext.settings))
    response.headers["Cache-Control"] = "no-store"
    return response
