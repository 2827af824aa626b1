"""Findings told to the student themself (second person, encouraging), for /me and as the
default text of student nudges. One sentence per rule, from the finding's numbers."""

from __future__ import annotations

from .findings import Finding


def _days(count) -> str:
    count = int(count)
    return f"{count} day" if count == 1 else f"{count} days"


def _subjects(numbers: dict) -> str:
    return ", ".join(f"{name} ({score:.0f}%)" for name, score in numbers["subjects"].items())


_TO_STUDENT = {
    "streak_reset": lambda n: (f"Your streak of {_days(n['streak_before'])} was reset. One "
                               f"short session today starts a new one."),
    "no_activity": lambda n: (f"It has been {_days(n['days_idle'])} since your last practice "
                              f"test. A short one today keeps the momentum."),
    "scores_declining": lambda n: (f"Your recent scores have slipped from about "
                                   f"{n['from']:.0f}% to {n['to']:.0f}%. Reviewing the "
                                   f"topics of your last tests can turn this around."),
    "struggling_subject": lambda n: (f"{_subjects(n)} could use some extra practice: it is "
                                     f"below your average of {n['mean']:.0f}%."),
    "course_not_started": lambda n: (f"You have not started {n['course'] or 'your course'} "
                                     f"yet. The first lesson video is a good place to begin."),
    "streak_resumed": lambda n: f"You are back on a streak: {_days(n['streak_now'])} in a row!",
    "personal_best": lambda n: (f"New personal best: {_days(n['best_streak'])} in a row, your "
                                f"longest streak yet!"),
}


def for_student(finding: Finding) -> str:
    return _TO_STUDENT[finding.rule](finding.numbers)
