"""Planning a nudge run: findings → at most one student nudge per student (the most severe
finding with a template, good news included) and one digest per mentor, each checked against
opt-outs, mutes, the per-person cap and the idempotency key of its rule, person and period.

Planning reads and never writes; :func:`record_run` writes a plan (and the guard's verdict)
in one transaction. Delivery is ``delivery.py``'s business.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from .. import clock
from ..attention import Finding, attention_score
from ..attention.assess import assess
from ..attention.wording import for_student
from ..extensions import db
from ..people import Person
from .metrics import PLANNED, SUPPRESSED
from .models import HELD, PENDING, QUEUED, SENT, Nudge, NudgeMute, NudgePreference, NudgeRun
from .models import SUPPRESSED as SUPPRESSED_STATUS
from .settings import NudgeSettings
from .templates import markdown_text, render

DIGEST_LINES = 15


@dataclass
class Planned:
    kind: str                  # student | digest
    recipient: str             # student:42 | mentor:3
    email: str
    rule: str
    period: str
    reason: str
    content: str
    status: str = PENDING      # pending | suppressed
    cause: str | None = None   # why suppressed

    @property
    def idempotency_key(self) -> str:
        return f"nudge:{self.rule}:{self.recipient}:{self.period}"


@dataclass
class Plan:
    day: dt.date
    students: int = 0
    items: list[Planned] = field(default_factory=list)
    duplicates: int = 0        # already planned in this period (not repeated)

    @property
    def to_send(self) -> list[Planned]:
        return [p for p in self.items if p.status == PENDING]

    @property
    def student_nudges(self) -> int:
        return sum(1 for p in self.to_send if p.kind == "student")

    def held_by_guard(self, settings: NudgeSettings) -> bool:
        """More than ``guard_percent`` of the students assessed (and more than
        ``guard_minimum``) would be messaged: an operator approves first (as provisioning's
        guard does)."""
        count = self.student_nudges
        return count > settings.guard_minimum and \
            count > self.students * settings.guard_percent / 100.0


def period_of(day: dt.date, period: str) -> str:
    if period == "day":
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _existing_keys(keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 5000):
        found.update(db.session.scalars(select(Nudge.idempotency_key).where(
            Nudge.idempotency_key.in_(keys[start:start + 5000]))))
    return found


def _recent_counts(now: dt.datetime) -> dict[str, int]:
    """Student nudges sent or on their way per recipient in the last 7 days (the cap)."""
    rows = db.session.execute(
        select(Nudge.recipient, func.count()).where(
            Nudge.kind == "student", Nudge.status.in_((PENDING, HELD, QUEUED, SENT)),
            Nudge.created_at >= now - dt.timedelta(days=7)).group_by(Nudge.recipient))
    return dict(rows.all())


def _choose(findings: list[Finding], templates: dict) -> Finding | None:
    """The finding a student hears about: the most severe concern, else the good news."""
    for finding in findings:  # already most severe first
        if finding.rule in templates:
            return finding
    return None


def build_plan(settings: NudgeSettings, templates: dict, day: dt.date,
               people: Iterable[Person], base_url: str) -> Plan:
    """Plan the run of school day ``day``; ``people`` is the LMS directory (students and
    mentors, streamed once)."""
    attention = current_app.extensions["attention"]
    plan = Plan(day)
    judged: dict[int, list[Finding]] = {}
    for student_id, _days, findings in assess(attention, day):
        plan.students += 1
        if findings:
            judged[student_id] = findings
    students: dict[int, Person] = {}
    mentors: dict[int, Person] = {}
    for person in people:
        if person.kind == "mentor":
            mentors[person.lms_id] = person
        elif person.lms_id in judged and person.active:
            students[person.lms_id] = person
    off = set(db.session.scalars(select(NudgePreference.subject)
                                 .where(NudgePreference.nudges_off)))
    muted = set(db.session.execute(select(NudgeMute.mentor_id, NudgeMute.student_id)).all())
    counts = _recent_counts(clock.now())
    student_period = period_of(day, settings.period)
    me_url = f"{base_url}/me"
    per_mentor: dict[int, list[tuple[Person, list[Finding]]]] = {}
    for student_id in sorted(students):
        person, findings = students[student_id], judged[student_id]
        is_muted = (person.mentor_id, student_id) in muted
        concerns = [f for f in findings if f.needs_attention]
        if concerns and person.mentor_id is not None and not is_muted:
            per_mentor.setdefault(person.mentor_id, []).append((person, concerns))
        chosen = _choose(findings, templates)
        if chosen is None:
            continue
        item = Planned("student", person.subject, person.email, chosen.rule, student_period,
                       chosen.reason, render(templates[chosen.rule],
                                             first_name=markdown_text(person.first_name
                                                                      or person.display_name),
                                             text=for_student(chosen), me_url=me_url))
        if person.subject in off:
            item.status, item.cause = SUPPRESSED_STATUS, "opted_out"
        elif is_muted:
            item.status, item.cause = SUPPRESSED_STATUS, "muted"
        elif counts.get(person.subject, 0) >= settings.cap_per_week:
            item.status, item.cause = SUPPRESSED_STATUS, "cap"
        else:
            counts[person.subject] = counts.get(person.subject, 0) + 1
        plan.items.append(item)
    digest_period = period_of(day, settings.digest_period)
    for mentor_id in sorted(per_mentor):
        mentor = mentors.get(mentor_id)
        if mentor is None:
            continue
        ranked = sorted(per_mentor[mentor_id],
                        key=lambda pf: (tuple(-x for x in attention_score(pf[1])),
                                        pf[0].display_name.lower()))
        lines = [f"1. [{markdown_text(p.display_name)}]({base_url}/mentor/students/{p.lms_id})"
                 f": {markdown_text('; '.join(f.reason for f in fs))}"
                 for p, fs in ranked[:DIGEST_LINES]]
        if len(ranked) > DIGEST_LINES:
            lines.append(f"1. … and {len(ranked) - DIGEST_LINES} more")
        content = render(templates["digest"],
                         mentor_name=markdown_text(mentor.first_name or mentor.display_name),
                         count=str(len(ranked)), day=day.isoformat(), lines="\n".join(lines),
                         triage_url=f"{base_url}/mentor?finding=needs_attention")
        plan.items.append(Planned("digest", mentor.subject, mentor.email, "digest",
                                  digest_period, f"{len(ranked)} students need attention",
                                  content))
    existing = _existing_keys([p.idempotency_key for p in plan.items])
    plan.duplicates = sum(1 for p in plan.items if p.idempotency_key in existing)
    plan.items = [p for p in plan.items if p.idempotency_key not in existing]
    return plan


def record_run(plan: Plan, settings: NudgeSettings) -> NudgeRun:
    """Write the run and its nudges in one transaction; held when the guard says so."""
    now = clock.now()
    held = plan.held_by_guard(settings)
    run = NudgeRun(day=plan.day, created_at=now, status="held" if held else "released",
                   students=plan.students, nudges=plan.student_nudges,
                   digests=sum(1 for p in plan.to_send if p.kind == "digest"),
                   suppressed=sum(1 for p in plan.items if p.status == SUPPRESSED_STATUS),
                   note=(f"{plan.student_nudges} student nudges for {plan.students} students "
                         f"is over {settings.guard_percent:g}%: approve with flask --app wsgi "
                         f"nudge approve RUN_ID") if held else None)
    db.session.add(run)
    db.session.flush()
    rows = [{"run_id": run.id, "kind": p.kind, "recipient": p.recipient, "email": p.email,
             "rule": p.rule, "period": p.period, "idempotency_key": p.idempotency_key,
             "status": (HELD if held and p.status == PENDING else p.status), "cause": p.cause,
             "reason": p.reason, "content": p.content, "attempts": 0,
             "created_at": now} for p in plan.items]
    for start in range(0, len(rows), 2000):
        db.session.execute(insert(Nudge).values(rows[start:start + 2000])
                           .on_conflict_do_nothing(index_elements=["idempotency_key"]))
    db.session.commit()
    for p in plan.items:
        if p.status == SUPPRESSED_STATUS:
            SUPPRESSED.labels(p.cause).inc()
        else:
            PLANNED.labels(p.kind, p.rule).inc()
    return run


def iter_plan_lines(plan: Plan) -> Iterator[str]:
    for p in plan.items:
        state = p.status if p.cause is None else f"{p.status} ({p.cause})"
        yield f"{p.kind:7} {p.recipient:16} {p.rule:20} {state:22} {p.reason}"
