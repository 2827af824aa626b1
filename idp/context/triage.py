"""Mentor triage: a mentor's students with the attention catalogue's findings, "needs
attention" first, filtered by finding, batch, course and name; the same rows for the page and
its CSV export (docs/context-api.md, "Mentor triage")."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, replace

from flask import current_app

from .. import clock
from ..attention import CATALOGUE, attention_score
from ..attention.assess import assess
from ..history.snapshots import last_complete_day
from .params import BadParameter, _int, parse_id
from .queries import MENTOR_SORTS, sort_roster
from .service import Answer, ContextService

SORTS = ("attention", *MENTOR_SORTS)
SPECIAL_FILTERS = {"needs_attention": "Needs attention (any concern)",
                   "inactive": "Inactive in the LMS"}
MAX_SEARCH = 100
PAGE_SIZE = 25


@dataclass(frozen=True)
class TriageQuery:
    sort: str = "attention"
    descending: bool = True
    finding: str | None = None
    batch: int | None = None
    course: int | None = None
    search: str = ""
    page: int = 1

    @property
    def order(self) -> str:
        return "desc" if self.descending else "asc"

    def args(self, **changes) -> dict[str, str]:
        """The query string of this view (with ``changes``), empty values left out."""
        if "order" in changes:
            changes["descending"] = changes.pop("order") == "desc"
        q = replace(self, **changes)
        out = {"sort": q.sort, "order": q.order, "finding": q.finding or "",
               "batch": str(q.batch or ""), "course": str(q.course or ""), "q": q.search,
               "page": str(q.page) if q.page != 1 else ""}
        return {k: v for k, v in out.items() if v}


def parse_triage(args: Mapping[str, str]) -> TriageQuery:
    """Validate the page's query string; every refusal names the parameter."""
    sort = args.get("sort", "attention")
    if sort not in SORTS:
        raise BadParameter(f"sort must be one of {', '.join(SORTS)}")
    order = args.get("order", "desc" if sort != "name" else "asc")
    if order not in ("asc", "desc"):
        raise BadParameter("order must be asc or desc")
    finding = args.get("finding") or None
    if finding is not None and finding not in CATALOGUE and finding not in SPECIAL_FILTERS:
        raise BadParameter("finding must be one of "
                           + ", ".join([*SPECIAL_FILTERS, *CATALOGUE]))
    batch = parse_id(args["batch"], "batch") if args.get("batch") else None
    course = parse_id(args["course"], "course") if args.get("course") else None
    search = " ".join((args.get("q") or "").split())
    if len(search) > MAX_SEARCH or "\x00" in search:
        raise BadParameter(f"q (search) must be at most {MAX_SEARCH} characters")
    page = _int(args, "page", 1, 1, 100_000)
    if args.get("limit") not in (None, str(PAGE_SIZE)):
        raise BadParameter(f"limit is fixed at {PAGE_SIZE} on this page")
    return TriageQuery(sort, order == "desc", finding, batch, course, search, page)


def _matches(row: dict, query: TriageQuery) -> bool:
    if query.batch is not None and (row["batch"] or {}).get("id") != query.batch:
        return False
    if query.course is not None and (row["course"] or {}).get("id") != query.course:
        return False
    if query.search:
        words = query.search.lower().split()
        haystack = f"{row['display_name']} {row['username']} {row['email']}".lower()
        if not all(w in haystack for w in words):
            return False
    if query.finding == "needs_attention":
        return row["needs_attention"]
    if query.finding == "inactive":
        return not row["active"]
    if query.finding is not None:
        return any(f.rule == query.finding for f in row["findings"])
    return True


@dataclass(frozen=True)
class Triage:
    rows: list[dict]           # filtered and sorted, all pages
    roster: Answer
    batches: list[dict]
    courses: list[dict]
    history_day: object        # the school day judged
    with_history: int          # students with a snapshot of that day


def mentor_triage(service: ContextService, mentor_id: int, query: TriageQuery) -> Triage:
    """The mentor's students with findings, filtered and ordered as ``query`` says."""
    roster = service.roster(mentor_id)
    students = [dict(s) for s in roster.value]
    courses = {s["course"]["id"]: s["course"]["name"] for s in students if s["course"]}
    history = current_app.extensions["history"].settings
    today = last_complete_day(clock.now(), history.timezone)
    judged = {sid: (days, found) for sid, days, found in assess(
        current_app.extensions["attention"], today, [s["id"] for s in students], courses)}
    with_history = 0
    for s in students:
        days, found = judged.get(s["id"], ([], []))
        found = found if s["active"] else []
        with_history += bool(days and days[-1].day == today)
        s["findings"] = found
        s["needs_attention"] = any(f.needs_attention for f in found)
        s["attention"] = attention_score(found)
        s["percentile"] = days[-1].percentile if days else None
    rows = [s for s in students if _matches(s, query)]
    if query.sort == "attention":
        rows = sort_roster(rows, "name", False)
        rows.sort(key=lambda s: s["attention"], reverse=query.descending)
    else:
        rows = sort_roster(rows, query.sort, query.descending)
    batches = sorted({s["batch"]["id"]: s["batch"] for s in students if s["batch"]}.values(),
                     key=lambda b: b["name"] or "")
    return Triage(rows, roster, batches,
                  [{"id": k, "name": v} for k, v in sorted(courses.items(), key=lambda c: c[1])],
                  today, with_history)


CSV_COLUMNS = ("id", "name", "email", "active", "batch", "course", "needs_attention",
               "findings", "reasons", "current_streak", "best_streak", "average_score",
               "score_change", "percentile_in_batch", "total_exams", "videos_watched",
               "last_attempt_at")


def _cell(value) -> str:
    """A spreadsheet cannot take a cell for a formula (OWASP CSV injection)."""
    if isinstance(value, int | float):
        return str(value)
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def as_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for s in rows:
        writer.writerow([_cell(v) for v in (
            s["id"], s["display_name"], s["email"], "yes" if s["active"] else "no",
            (s["batch"] or {}).get("name"), (s["course"] or {}).get("name"),
            "yes" if s["needs_attention"] else "no",
            " ".join(f.rule for f in s["findings"]),
            " | ".join(f.reason for f in s["findings"]),
            s["current_streak"], s["highest_streak"], s["average_score"], s["score_change"],
            s["percentile"], s["total_exams"], s["videos_watched"], s["last_attempt_at"])])
    return out.getvalue()
