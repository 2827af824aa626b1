"""Findings for many students at once, from the learning history: what /mentor, /me, the
mentor digests and the nudge planner all call (one evaluation, one answer)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping

from ..history.read import Day, recent_histories
from .findings import Finding
from .rules import CATALOGUE, Evidence, evaluate
from .settings import AttentionSettings

_DAY_PARAMS = ("days", "window_days", "lookback_days")


def evidence_days(settings: AttentionSettings) -> int:
    """How many days of history the rules need: the longest window any rule may use (with its
    overrides), plus the baseline day before it."""
    longest = [value for rule in CATALOGUE.values() for key, value in rule.defaults.items()
               if key in _DAY_PARAMS]
    longest += [value for scope in settings.overrides.values()
                for key, value in scope.items() if key.split(".", 1)[1] in _DAY_PARAMS]
    return int(max(longest)) + 2


def assess(settings: AttentionSettings, today: dt.date,
           student_ids: Iterable[int] | None = None,
           course_names: Mapping[int, str] | None = None,
           ) -> Iterator[tuple[int, list[Day], list[Finding]]]:
    """(student id, days, findings) for every student with history up to ``today`` (only
    ``student_ids`` if given), streamed in student order. A student whose latest day is not
    ``today`` (no snapshot that day: left, or the snapshot is late) gets no findings."""
    since = today - dt.timedelta(days=evidence_days(settings))
    ids = list(student_ids) if student_ids is not None else None
    if ids == []:
        return
    cache: dict = {}
    for student_id, days in recent_histories(since, ids, subjects_on=today):
        days = [d for d in days if d.day <= today]
        if not days or days[-1].day != today:
            yield student_id, days, []
            continue
        course = (course_names or {}).get(days[-1].course_id) if days[-1].course_id else None
        yield student_id, days, evaluate(Evidence(days, course), settings, cache)


def assess_one(settings: AttentionSettings, today: dt.date, student_id: int,
               course_names: Mapping[int, str] | None = None) -> tuple[list[Day],
                                                                      list[Finding]]:
    """(days, findings) of one student; ([], []) without history."""
    for _, days, findings in assess(settings, today, [student_id], course_names):
        return days, findings
    return [], []
