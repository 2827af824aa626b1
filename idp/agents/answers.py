"""What an agent may ask about students, answered from the context service with the context
API's authorization, the students' AI-sharing choices and an audit row per question.

One layer for the three agent surfaces (MCP tools, the Zulip bot, GraphQL): each answer is a
dict with the data and a short plain-language ``summary``. A student the caller may not see,
who does not exist, or who does not share with agents raises :class:`NotVisible` with one
message for all three (no enumeration). E-mail addresses are removed unless the caller holds
the scope ``lms.context.email``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from ..context.access import Viewer
from ..context.audit import record_read
from ..context.service import ContextService
from ..context.triage import TriageQuery, mentor_triage
from ..extensions import db
from ..lms.db import LMSUnavailable
from ..lms.directory import get_directory
from .sharing import shares, sharing_subjects

EMAIL_SCOPE = "lms.context.email"
NOT_VISIBLE = "No student with this id or name is visible to you."
MAX_QUERY_CHARS = 100
MAX_MATCHES = 20
PAGE = 200
MAX_SCANNED = 5000       # students of one mentor scanned by find_student / attention


class NotVisible(Exception):
    """Missing, not the caller's, or not shared with agents: one answer for all."""

    def __init__(self, message: str = NOT_VISIBLE):
        super().__init__(message)


class BadArgument(ValueError):
    """An argument outside its documented range; the message says which and why."""


class Unavailable(Exception):
    """The LMS cannot answer and nothing is cached."""


@dataclass(frozen=True)
class AgentCaller:
    """Who an agent acts for (the viewer), what its token allows, and through which surface
    (``mcp``, ``zulip``, ``graphql``: the audit channel)."""

    viewer: Viewer
    scopes: frozenset[str]
    channel: str

    @property
    def sees_emails(self) -> bool:
        return EMAIL_SCOPE in self.scopes


def _service() -> ContextService:
    return current_app.extensions["context"].service


def _without_emails(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_emails(v) for k, v in value.items() if k != "email"}
    if isinstance(value, list):
        return [_without_emails(v) for v in value]
    return value


def _shown(caller: AgentCaller, value: Any) -> Any:
    return value if caller.sees_emails else _without_emails(value)


def student_id_argument(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**31 - 1:
        raise BadArgument("student_id must be a whole number from 1 to 2147483647.")
    return value


def _audited(caller: AgentCaller, tool: str, target: str | None, work: Callable[[], Any]):
    """Run ``work`` and write one ``context.read`` audit row with its outcome."""
    try:
        result = work()
    except NotVisible:
        record_read(caller.channel, tool, "not_found", caller.viewer, target)
        raise
    except BadArgument as bad:
        record_read(caller.channel, tool, "bad_request", caller.viewer, target, reason=str(bad))
        raise
    except LMSUnavailable:
        db.session.rollback()
        record_read(caller.channel, tool, "unavailable", caller.viewer, target)
        raise Unavailable("The LMS cannot be reached right now; try again shortly.") from None
    record_read(caller.channel, tool, "ok", caller.viewer, target)
    return result


def _check_visible(caller: AgentCaller, student_id: int) -> None:
    owner = _service().owner(student_id)
    if owner is None or not caller.viewer.may_see_student(owner.value) \
            or not shares(f"student:{student_id}"):
        raise NotVisible()


def _freshness(answer) -> dict:
    return {"stale": answer.stale or False, "as_of": answer.as_of}


# -- tools ---------------------------------------------------------------------------------
def _about_student(caller: AgentCaller, tool: str, student_id: Any,
                   load: Callable[[ContextService, int], Any],
                   shape: Callable[[dict], dict]) -> dict:
    """One visible student's answer from ``load`` (a context-service read), shaped by
    ``shape`` (full answer → the tool's fields and summary), e-mails removed unless allowed."""
    sid = student_id_argument(student_id)

    def work() -> dict:
        _check_visible(caller, sid)
        answer = load(_service(), sid)
        if answer is None:
            raise NotVisible()
        shaped = shape(answer.value)
        summary = shaped.pop("summary")
        return {**_shown(caller, shaped), **_freshness(answer), "summary": summary}

    return _audited(caller, tool, f"student:{sid}", work)


def student_profile(caller: AgentCaller, student_id: Any) -> dict:
    return _about_student(caller, "get_student_profile", student_id, ContextService.profile,
                          lambda v: {**v, "summary": profile_summary(v)})


def student_performance(caller: AgentCaller, student_id: Any) -> dict:
    return _about_student(caller, "get_student_performance", student_id,
                          ContextService.performance,
                          lambda v: {**v, "summary": performance_summary(v)})


def learning_patterns(caller: AgentCaller, student_id: Any) -> dict:
    return _about_student(
        caller, "get_learning_patterns", student_id, ContextService.performance,
        lambda v: {"student": v["student"], **v["learning_patterns"],
                   "summary": patterns_summary(v["student"]["display_name"],
                                               v["learning_patterns"])})


def _mentor_id(caller: AgentCaller) -> int:
    person = caller.viewer.person
    if person is None or person.kind != "mentor":
        raise BadArgument("Only a mentor has a list of students; ask about one student by id.")
    return person.lms_id


def _all_students_of(mentor_id: int) -> list[dict]:
    rows: list[dict] = []
    while len(rows) < MAX_SCANNED:
        page = _service().mentor_students(mentor_id, sort="name", limit=PAGE,
                                          offset=len(rows)).value
        rows.extend(page["students"])
        if len(page["students"]) < PAGE:
            break
    return rows


def _sharing_only(rows: list[dict]) -> list[dict]:
    allowed = sharing_subjects([r["subject"] for r in rows])
    return [r for r in rows if r["subject"] in allowed]


def list_my_students(caller: AgentCaller, limit: Any = 50, offset: Any = 0) -> dict:
    for name, value, low, high in (("limit", limit, 1, PAGE), ("offset", offset, 0, 1_000_000)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise BadArgument(f"{name} must be a whole number from {low} to {high}.")

    def work() -> dict:
        mentor_id = _mentor_id(caller)
        page = _service().mentor_students(mentor_id, sort="name", limit=limit, offset=offset)
        students = _shown(caller, _sharing_only(page.value["students"]))
        names = ", ".join(s["display_name"] for s in students[:5])
        more = f" and {len(students) - 5} more" if len(students) > 5 else ""
        summary = (f"{len(students)} students on this page: {names}{more}." if students
                   else "No students on this page.")
        return {"students": students, "limit": limit, "offset": offset,
                **_freshness(page), "summary": summary}

    return _audited(caller, "list_my_students", caller.viewer.subject, work)


def attention_for_mentor(mentor_id: int) -> list[dict]:
    """The mentor's active students who need attention, most urgent first, each with the
    reasons: the attention rules' findings (idp/attention/), the same that rank /mentor and
    fill the mentor digests."""
    triage = mentor_triage(_service(), mentor_id, TriageQuery(sort="attention"))
    return [{"id": s["id"], "subject": s["subject"], "display_name": s["display_name"],
             "username": s["username"], "email": s["email"],
             "flags": [f.rule for f in s["findings"] if f.needs_attention],
             "reasons": [f.reason for f in s["findings"] if f.needs_attention],
             "average_score": s["average_score"], "score_change": s["score_change"],
             "current_streak": s["current_streak"], "last_attempt_at": s["last_attempt_at"]}
            for s in triage.rows if s["needs_attention"]]


def students_needing_attention(caller: AgentCaller) -> dict:
    def work() -> dict:
        found = _shown(caller, _sharing_only(attention_for_mentor(_mentor_id(caller))))
        if not found:
            return {"students": [], "summary": "No student needs attention right now."}
        lines = [f"{s['display_name']} ({', '.join(s['reasons'])})" for s in found[:5]]
        more = f"; and {len(found) - 5} more" if len(found) > 5 else ""
        return {"students": found, "summary": f"{len(found)} students need attention: "
                                              f"{'; '.join(lines)}{more}."}

    return _audited(caller, "students_needing_attention", caller.viewer.subject, work)


def find_student(caller: AgentCaller, query: Any) -> dict:
    """Match a name, username or e-mail address among the students the caller may see: a
    mentor's own students (part of a name or username, or the whole address; exact matches
    alone when there are any), a student themselves, staff and services by exact username or
    address (the LMS directory)."""
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY_CHARS \
            or "\x00" in query:
        raise BadArgument(f"query must be 1 to {MAX_QUERY_CHARS} characters of a name, "
                          f"username or e-mail address.")
    needle = query.strip().lower()

    def work() -> dict:
        person = caller.viewer.person
        if caller.viewer.sees_everyone():
            found = get_directory().find(needle)
            rows = []
            if found is not None and found.kind == "student" and found.active:
                rows = [{"id": found.lms_id, "subject": found.subject,
                         "display_name": found.full_name, "username": found.username,
                         "email": found.email,
                         "batch": {"id": found.batch_id, "name": found.batch_name}
                         if found.batch_id else None}]
        elif person.kind == "mentor":
            rows = [s for s in _all_students_of(person.lms_id)
                    if needle in s["display_name"].lower() or needle in s["username"].lower()
                    or needle == (s["email"] or "").lower()]
        else:
            mine = {person.full_name.lower(), person.username.lower(), person.email.lower()}
            rows = [{"id": person.lms_id, "subject": person.subject,
                     "display_name": person.full_name, "username": person.username,
                     "email": person.email,
                     "batch": {"id": person.batch_id, "name": person.batch_name}
                     if person.batch_id else None}] \
                if any(needle in m for m in mine) else []
        exact = [r for r in rows if needle in (r["username"].lower(), r["display_name"].lower(),
                                               (r["email"] or "").lower())]
        rows = _sharing_only(exact or rows)[:MAX_MATCHES]
        matches = [_shown(caller, {"id": r["id"], "display_name": r["display_name"],
                                   "username": r["username"], "email": r["email"],
                                   "batch": (r["batch"] or {}).get("name")}) for r in rows]
        if not matches:
            raise NotVisible("No student matching this is visible to you.")
        names = ", ".join(f"{m['display_name']} (id {m['id']})" for m in matches[:5])
        return {"matches": matches, "summary": f"{len(matches)} match: {names}."
                if len(matches) == 1 else f"{len(matches)} matches: {names}."}

    return _audited(caller, "find_student", None, work)


# -- plain-language summaries ----------------------------------------------------------------
def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _pct(value: float | None) -> str:
    return "no score yet" if value is None else f"{value:.1f}%"


def profile_summary(value: dict) -> str:
    student, metrics = value["student"], value["performance_metrics"]
    parts = [f"{student['display_name']}"
             + (f" ({student['batch']['name']})" if student.get("batch") else "")
             + f": average {_pct(metrics['average_score'])}"]
    if metrics.get("percentile_rank") is not None:
        parts.append(f"{_ordinal(round(metrics['percentile_rank']))} percentile of the batch")
    parts.append(f"streak {metrics['current_streak'] or 0} days "
                 f"(best {metrics['highest_streak'] or 0})")
    if value["struggling_subjects"]:
        parts.append("struggling in " + ", ".join(value["struggling_subjects"]))
    if value["strong_subjects"]:
        parts.append("strong in " + ", ".join(value["strong_subjects"]))
    if metrics.get("streak_broken"):
        parts.append("streak broken")
    if metrics.get("scores_falling"):
        parts.append("scores falling")
    last = value["recent_activity"].get("last_attempt_at")
    parts.append(f"last attempt {last[:10]}" if last else "no attempt yet")
    return "; ".join(parts) + "."


def performance_summary(value: dict) -> str:
    trend = value["learning_patterns"]["score_trend"]
    text = f"{value['student']['display_name']}: scores {trend['direction']}"
    if trend["points_per_30_days"] is not None:
        text += f" ({trend['points_per_30_days']:+.1f} points per 30 days)"
    recs = value["recommendations"]
    if recs:
        text += f"; {len(recs)} recommendations, first: {recs[0]['title']} ({recs[0]['reason']})"
    return text + "."


def patterns_summary(name: str, patterns: dict) -> str:
    busiest = patterns.get("most_active_weekday")
    trend = patterns["score_trend"]["direction"]
    return (f"{name} is most active on {busiest}s" if busiest
            else f"{name} has no recorded attempts") + f"; score trend {trend}."
