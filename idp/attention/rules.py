"""The catalogue of attention rules (docs/attention.md).

Each rule is one small function over a student's learning history (``idp.history``: one
:class:`~idp.history.read.Day` per school day, oldest first, the last one being the day judged)
and its thresholds (catalogue defaults, overridable per course or batch: settings.py). It
returns a :class:`Finding` or None. The same findings rank ``/mentor``, fill mentor digests,
write ``/me`` and choose student nudges: nothing else judges a student.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..history.read import Day
from .findings import RANK, Finding
from .settings import AttentionSettings


@dataclass(frozen=True)
class Evidence:
    """What the rules read: the history and the few profile facts they name."""

    days: list[Day]
    course_name: str | None = None

    @property
    def today(self) -> Day:
        return self.days[-1]

    def since(self, days: float) -> list[Day]:
        """The days from ``days`` before the judged day, the judged day included."""
        first = self.today.day - dt.timedelta(days=int(days))
        return [d for d in self.days if d.day >= first]

    def before(self, day: dt.date) -> Day | None:
        """The latest day strictly before ``day``."""
        earlier = [d for d in self.days if d.day < day]
        return earlier[-1] if earlier else None


@dataclass(frozen=True)
class Rule:
    name: str
    title: str           # the label on pages ("Streak reset")
    explanation: str     # when it fires, in words a mentor reads next to the flag
    defaults: Mapping[str, float]
    check: Callable[[Evidence, Mapping[str, float]], Finding | None]


def _days(count: float) -> str:
    count = int(count)
    return f"{count} day" if count == 1 else f"{count} days"


# -- concerns ------------------------------------------------------------------------------

def streak_reset(e: Evidence, t: Mapping[str, float]) -> Finding | None:
    """The streak fell to ``reset_to`` or less after reaching ``min_streak`` within the last
    ``lookback_days``. A streak that is merely lower (29 → 25) is not a reset."""
    now = e.today.current_streak
    if now is None or now > t["reset_to"]:
        return None
    window = [d.current_streak for d in e.since(t["lookback_days"])[:-1]
              if d.current_streak is not None]
    peak = max(window, default=0)
    if peak < t["min_streak"]:
        return None
    return Finding("streak_reset", "medium",
                   f"The daily streak was reset: {_days(peak)} in a row, now {now}.",
                   {"streak_before": peak, "streak_now": now,
                    "best_streak": e.today.best_streak})


def no_activity(e: Evidence, t: Mapping[str, float]) -> Finding | None:
    """No exam attempt for ``days`` days or more, and no video watched meanwhile (a student
    who never attempted anything is ``course_not_started`` instead)."""
    today = e.today
    if not today.attempts or today.last_attempt_day is None:
        return None
    idle = (today.day - today.last_attempt_day).days
    if idle < t["days"]:
        return None
    window = e.since(t["days"])
    if today.videos_watched is not None and any(
            d.videos_watched is not None and d.videos_watched < today.videos_watched
            for d in window):
        return None
    severity = "high" if idle >= 2 * t["days"] else "medium"
    return Finding("no_activity", severity,
                   f"No exam attempt for {_days(idle)} (the last on "
                   f"{today.last_attempt_day.isoformat()}) and no video since.",
                   {"days_idle": idle, "last_attempt_day": today.last_attempt_day.isoformat()})


def new_attempt_means(e: Evidence, window_days: float) -> list[tuple[int, float, int]]:
    """(day offset, mean score of the attempts made that day, how many) over the window, from
    the differences of consecutive snapshots' score sums (exact, not rounded averages)."""
    window = e.since(window_days)
    if not window:
        return []
    previous = e.before(window[0].day)
    first = window[0].day
    points = []
    for day in window:
        if previous is not None and day.scored_attempts > previous.scored_attempts:
            count = day.scored_attempts - previous.scored_attempts
            points.append(((day.day - first).days,
                           (day.score_sum - previous.score_sum) / count, count))
        previous = day
    return points


def weighted_slope(points: list[tuple[int, float, int]]) -> float | None:
    """Least-squares slope (points per day) of mean scores, each weighted by its attempts."""
    total = sum(w for _, _, w in points)
    if total == 0 or len({x for x, _, _ in points}) < 2:
        return None
    mx = sum(x * w for x, _, w in points) / total
    my = sum(y * w for _, y, w in points) / total
    sxx = sum(w * (x - mx) ** 2 for x, _, w in points)
    sxy = sum(w * (x - mx) * (y - my) for x, y, w in points)
    return sxy / sxx


def scores_declining(e: Evidence, t: Mapping[str, float]) -> Finding | None:
    """Over the last ``window_days``, with at least ``min_attempts`` new scored attempts, the
    fitted trend of their scores falls by ``points_per_30_days`` or more a month."""
    points = new_attempt_means(e, t["window_days"])
    attempts = sum(w for _, _, w in points)
    if attempts < t["min_attempts"]:
        return None
    slope = weighted_slope(points)
    if slope is None or slope * 30 > -t["points_per_30_days"]:
        return None
    per_30 = round(slope * 30, 1)
    mean_x = sum(x * w for x, _, w in points) / attempts
    mean_y = sum(y * w for _, y, w in points) / attempts
    start = mean_y + slope * (points[0][0] - mean_x)
    end = mean_y + slope * (points[-1][0] - mean_x)
    severity = "high" if -per_30 >= 2 * t["points_per_30_days"] else "medium"
    return Finding("scores_declining", severity,
                   f"Scores of the {attempts} attempts in the last {_days(t['window_days'])} "
                   f"fall by {-per_30:.1f} points a month (from about {start:.0f}% to "
                   f"{end:.0f}%).",
                   {"points_per_30_days": per_30, "attempts": attempts,
                    "window_days": int(t["window_days"]), "from": round(start, 1),
                    "to": round(end, 1)})


def classify_subjects(averages: Mapping[str, float], *, below: float = 50.0,
                      strong_from: float = 80.0, gap: float = 5.0) -> dict[str, str]:
    """Subject → ``struggling``, ``strong`` or ``steady``: struggling under ``below`` or
    ``gap`` points under the student's own mean over their subjects; strong (if not
    struggling) from ``strong_from`` or ``gap`` points over that mean."""
    if not averages:
        return {}
    mean = sum(averages.values()) / len(averages)
    several = len(averages) > 1
    status = {}
    for name, avg in averages.items():
        if avg < below or (several and avg <= mean - gap):
            status[name] = "struggling"
        elif avg >= strong_from or (several and avg >= mean + gap):
            status[name] = "strong"
        else:
            status[name] = "steady"
    return status


def struggling_subject(e: Evidence, t: Mapping[str, float]) -> Finding | None:
    """A subject averages under ``below``, or ``gap`` points or more under the student's own
    mean across subjects."""
    averages = e.today.subjects
    status = classify_subjects(averages, below=t["below"], gap=t["gap"])
    weak = sorted((n for n, s in status.items() if s == "struggling"), key=averages.get)
    if not weak:
        return None
    mean = sum(averages.values()) / len(averages)
    listed = ", ".join(f"{n} ({averages[n]:.0f}%)" for n in weak)
    return Finding("struggling_subject", "medium",
                   f"Struggling in {listed}, against {mean:.0f}% across all subjects.",
                   {"subjects": {n: round(averages[n], 1) for n in weak},
                    "mean": round(mean, 1)})


def course_not_started(e: Evidence, t: Mapping[str, float]) -> Finding | None:
    """Enrolled for ``days`` days or more (by the history) with no exam attempt and no video."""
    today = e.today
    if today.attempts or (today.videos_watched or 0) or (today.exams_taken or 0):
        return None
    tracked = (today.day - e.days[0].day).days
    if tracked < t["days"]:
        return None
    course = e.course_name or "the course"
    return Finding("course_not_started", "high",
                   f"Enrolled in {course} for at least {_days(tracked)} without an exam "
                   f"attempt or a lesson video.",
                   {"days_enrolled": tracked, "course": e.course_name})


# -- good news -----------------------------------------------------------------------------

def streak_resumed(e: Evidence, t: Mapping[str, float]) -> Finding | None:
    """The streak just reached ``days`` again after a reset (the best streak is longer)."""
    if len(e.days) < 2:
        return None
    now, before = e.today.current_streak, e.days[-2].current_streak
    if now is None or before is None or not (before < t["days"] <= now):
        return None
    if (e.today.best_streak or 0) <= now:
        return None  # a first streak, or a record: personal_best speaks then
    return Finding("streak_resumed", "positive",
                   f"Back on a daily streak: {_days(now)} in a row again.",
                   {"streak_now": now, "best_streak": e.today.best_streak})


def personal_best(e: Evidence, t: Mapping[str, float]) -> Finding | None:
    """A new longest streak of at least ``min_streak`` days, reached on the judged day."""
    if len(e.days) < 2:
        return None
    today, before = e.today, e.days[-2]
    best = today.best_streak or 0
    if best < t["min_streak"] or best <= (before.best_streak or 0) \
            or today.current_streak != best:
        return None
    return Finding("personal_best", "positive",
                   f"A new personal best: {_days(best)} in a row, the longest streak so far.",
                   {"best_streak": best, "previous_best": before.best_streak})


CATALOGUE: dict[str, Rule] = {rule.name: rule for rule in (
    Rule("course_not_started", "Not started",
         "Enrolled for some days without any exam attempt or video.", {"days": 7},
         course_not_started),
    Rule("no_activity", "No activity",
         "No exam attempt and no video for some days.", {"days": 7}, no_activity),
    Rule("scores_declining", "Scores declining",
         "The trend of recent scores, fitted over the history, falls by several points a "
         "month.", {"window_days": 28, "min_attempts": 4, "points_per_30_days": 5},
         scores_declining),
    Rule("streak_reset", "Streak reset",
         "The daily streak fell to 0 or 1 after a streak of several days (merely shorter "
         "is not a reset).", {"min_streak": 5, "reset_to": 1, "lookback_days": 7},
         streak_reset),
    Rule("struggling_subject", "Struggling subject",
         "A subject averages under 50%, or 5 points or more under the student's own mean.",
         {"below": 50, "gap": 5}, struggling_subject),
    Rule("streak_resumed", "Streak resumed",
         "Back on a daily streak after a reset.", {"days": 3}, streak_resumed),
    Rule("personal_best", "Personal best",
         "A new longest daily streak.", {"min_streak": 7}, personal_best),
)}

DEFAULTS = {name: dict(rule.defaults) for name, rule in CATALOGUE.items()}


def thresholds_for(settings: AttentionSettings, batch_id: int | None,
                   course_id: int | None) -> dict[str, Mapping[str, float]]:
    """Every rule's thresholds for a student of this batch and course."""
    return {rule.name: settings.thresholds(rule.name, rule.defaults, batch_id, course_id)
            for rule in CATALOGUE.values()}


def evaluate(evidence: Evidence, settings: AttentionSettings,
             cache: dict | None = None) -> list[Finding]:
    """Every rule on one student; findings most severe first (good news last). ``cache``
    (a dict kept by the caller) keeps the thresholds per batch and course across students."""
    if not evidence.days:
        return []
    today = evidence.today
    key = (today.batch_id, today.course_id)
    limits = cache.get(key) if cache is not None else None
    if limits is None:
        limits = thresholds_for(settings, *key)
        if cache is not None:
            cache[key] = limits
    found = []
    for rule in CATALOGUE.values():
        finding = rule.check(evidence, limits[rule.name])
        if finding is not None:
            found.append(finding)
    found.sort(key=lambda f: -RANK[f.severity])
    return found
