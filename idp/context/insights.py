"""Rules that turn academic numbers into judgements: struggling and strong subjects, score
trend, flags, and recommendations. Every recommendation carries the reason it was made, so a
mentor (or an AI agent) can say why. Thresholds are documented in docs/context-api.md.
"""

from __future__ import annotations

import datetime as dt

from ..attention.rules import DEFAULTS
from ..attention.rules import classify_subjects as _classify

STRUGGLING_BELOW = 50.0      # a subject average under this is struggling, whatever else
STRONG_FROM = 80.0           # a subject average from this up is strong
RELATIVE_GAP = 5.0           # or this many points under / over the student's own subject mean
FALLING_POINTS = 10.0        # last 5 attempts this much under the 5 before: scores falling
TREND_POINTS = 3.0           # a fitted slope of at least this many points per 30 days is a trend
IDLE_DAYS = 14               # no attempt for this long: nudge to practise
TOP_PERCENTILE = 90.0


def classify_subjects(subjects: list[dict]) -> dict[str, str]:
    """Subject → ``struggling``, ``strong`` or ``steady``, by the attention catalogue's one
    rule (idp.attention.rules.classify_subjects) with the thresholds documented above."""
    return _classify({s["subject"]: s["average_score"] for s in subjects
                      if s["average_score"] is not None},
                     below=STRUGGLING_BELOW, strong_from=STRONG_FROM, gap=RELATIVE_GAP)


def streak_broken(metrics: dict) -> bool:
    """The streak was really reset, by the attention catalogue's rule (``streak_reset``): now
    at most 1 day after a streak of at least 5 (at the previous snapshot, or the best one when
    there is no previous snapshot). A streak that is merely shorter (29 → 25) is not broken."""
    current, previous = metrics.get("current_streak"), metrics.get("previous_streak")
    limits = DEFAULTS["streak_reset"]
    if current is None or current > limits["reset_to"]:
        return False
    before = previous if previous is not None else metrics.get("highest_streak")
    return (before or 0) >= limits["min_streak"]


def scores_falling(metrics: dict) -> bool:
    recent, previous = metrics.get("recent_average"), metrics.get("previous_average")
    return recent is not None and previous is not None and previous - recent >= FALLING_POINTS


def trend_direction(points_per_30_days: float | None) -> str:
    if points_per_30_days is None:
        return "unknown"
    if points_per_30_days >= TREND_POINTS:
        return "improving"
    if points_per_30_days <= -TREND_POINTS:
        return "declining"
    return "steady"


def _rec(code: str, title: str, reason: str, priority: str, subject: str | None = None) -> dict:
    return {"code": code, "title": title, "reason": reason, "priority": priority,
            "subject": subject}


def recommendations(metrics: dict, subjects: list[dict], weekdays: list[dict],
                    percentile: float | None, now: dt.datetime) -> list[dict]:
    """Rule-based advice, most urgent first; each item says which numbers triggered it."""
    out: list[dict] = []
    status = classify_subjects(subjects)
    scored = [s for s in subjects if s["average_score"] is not None]
    mean = sum(s["average_score"] for s in scored) / len(scored) if scored else None
    if scores_falling(metrics):
        out.append(_rec(
            "scores_falling", "Check in about the recent drop in scores",
            f"The last 5 attempts averaged {metrics['recent_average']:.1f}%, down from "
            f"{metrics['previous_average']:.1f}% over the 5 before.", "high"))
    for s in sorted(scored, key=lambda s: s["average_score"]):
        if status.get(s["subject"]) == "struggling":
            out.append(_rec(
                "review_subject", f"Review the fundamentals of {s['subject']}",
                f"{s['subject']} averages {s['average_score']:.1f}% over {s['attempts']} "
                f"scored attempts, against {mean:.1f}% across all subjects.", "high",
                s["subject"]))
    last = metrics.get("last_attempt_at")
    if last:
        idle = (now - dt.datetime.fromisoformat(last.replace("Z", "+00:00"))).days
        if idle >= IDLE_DAYS:
            out.append(_rec("resume_practice", "Take a practice test this week",
                            f"The last attempt was {_days(idle)} ago.", "medium"))
    elif metrics.get("attempts_count") == 0:
        out.append(_rec("first_attempt", "Take a first practice test",
                        "No attempt has been recorded yet.", "medium"))
    if streak_broken(metrics):
        previous = metrics.get("previous_streak")
        before = (f" (it was {_days(previous)} at the previous snapshot)"
                  if previous is not None and previous > metrics["current_streak"] else "")
        out.append(_rec("restart_streak", "Restart the daily learning streak",
                        f"The current streak is {_days(metrics['current_streak'])}{before}; the "
                        f"best so far was {metrics.get('highest_streak') or 0}.", "medium"))
    videos, exams = metrics.get("videos_watched"), metrics.get("total_exams")
    if videos is not None and exams and videos < exams:
        out.append(_rec("watch_lessons", "Watch the lesson videos before the next test",
                        f"{videos} videos watched against {exams} exams taken.", "low"))
    busiest = max(weekdays, key=lambda d: d["attempts"], default=None)
    total = sum(d["attempts"] for d in weekdays)
    if busiest and total >= 10 and busiest["attempts"] / total >= 0.4:
        out.append(_rec("spread_practice", "Spread practice across the week",
                        f"{busiest['attempts']} of {total} attempts fell on a "
                        f"{busiest['weekday']}.", "low"))
    if percentile is not None and percentile >= TOP_PERCENTILE:
        out.append(_rec("stretch_goals", "Try advanced problem sets",
                        f"Average score is in the {percentile:.0f}th percentile of the batch.",
                        "low"))
    for s in sorted(scored, key=lambda s: -s["average_score"]):
        if status.get(s["subject"]) == "strong" and percentile is not None \
                and percentile >= 50:
            out.append(_rec("peer_help", f"Help peers with {s['subject']}",
                            f"{s['subject']} averages {s['average_score']:.1f}%, a strength.",
                            "low", s["subject"]))
            break
    return out


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"
