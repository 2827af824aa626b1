"""Each attention rule on hand-made histories, at the edges of its thresholds; overrides per
course and batch; the settings refuse what they do not understand."""

from __future__ import annotations

import datetime as dt

import pytest

from idp.attention import CATALOGUE, Evidence, attention_score, evaluate
from idp.attention.rules import DEFAULTS, weighted_slope
from idp.attention.settings import AttentionSettings, load_attention_settings
from idp.config import ConfigError
from idp.history.read import Day

LAST = dt.date(2026, 11, 26)
NONE = AttentionSettings({})


def days(n: int, **series) -> list[Day]:
    """``n`` consecutive days ending on LAST; each keyword is a list of n values (or one value
    for every day) of a Day field."""
    out = []
    for i in range(n):
        values = {k: (v[i] if isinstance(v, list) else v) for k, v in series.items()}
        values.setdefault("attempts", 10)
        values.setdefault("scored_attempts", values["attempts"])
        values.setdefault("score_sum", 70.0 * values["scored_attempts"])
        values.setdefault("last_attempt_day", LAST)
        out.append(Day(day=LAST - dt.timedelta(days=n - 1 - i), **values))
    return out


def rule(name: str, history: list[Day], settings: AttentionSettings = NONE, **evidence):
    found = [f for f in evaluate(Evidence(history, **evidence), settings) if f.rule == name]
    return found[0] if found else None


# -- streak reset --------------------------------------------------------------------------

@pytest.mark.parametrize("streaks,fires", [
    ([27, 28, 29, 25], False),      # shorter, not reset (the old "streak broken")
    ([3, 4, 5, 0], True),           # from 5 (= min_streak) to 0
    ([2, 3, 4, 0], False),          # from 4: under min_streak
    ([5, 6, 7, 1], True),           # 1 counts as reset
    ([5, 6, 7, 2], False),          # 2 is a (short) streak
    ([9, 0, 0, 0], True),           # still within the lookback
])
def test_streak_reset_edges(streaks, fires):
    found = rule("streak_reset", days(4, current_streak=streaks, best_streak=30))
    assert (found is not None) is fires
    if fires:
        assert found.numbers["streak_now"] == streaks[-1]
        assert found.numbers["streak_before"] == max(streaks[:-1])
        assert "reset" in found.reason


def test_streak_reset_outside_the_lookback_is_forgotten():
    history = days(10, current_streak=[9, 0, 0, 0, 0, 0, 0, 0, 0, 0], best_streak=9)
    assert rule("streak_reset", history) is None  # 9 days ago, lookback 7


# -- no activity ---------------------------------------------------------------------------

@pytest.mark.parametrize("idle,severity", [(6, None), (7, "medium"), (13, "medium"),
                                           (14, "high")])
def test_no_activity_edges(idle, severity):
    history = days(3, last_attempt_day=LAST - dt.timedelta(days=idle), videos_watched=40)
    found = rule("no_activity", history)
    assert (found.severity if found else None) == severity
    if found:
        assert found.numbers["days_idle"] == idle and f"{idle} days" in found.reason


def test_watching_videos_is_activity():
    history = days(3, last_attempt_day=LAST - dt.timedelta(days=20),
                   videos_watched=[40, 40, 41])
    assert rule("no_activity", history) is None


def test_no_activity_leaves_never_started_students_to_their_rule():
    history = days(10, attempts=0, last_attempt_day=None, videos_watched=0)
    assert rule("no_activity", history) is None
    assert rule("course_not_started", history) is not None


# -- scores declining ----------------------------------------------------------------------

def falling(per_day: list[float], start: int = 10) -> list[Day]:
    """A history where day i adds one attempt scoring per_day[i] (None: no attempt)."""
    count, total, rows = start, 70.0 * start, []
    for score in per_day:
        if score is not None:
            count, total = count + 1, total + score
        rows.append((count, total))
    return days(len(rows), attempts=[c for c, _ in rows], scored_attempts=[c for c, _ in rows],
                score_sum=[s for _, s in rows])


def test_scores_declining_fits_the_trend_of_new_attempts():
    # one attempt every 3 days, 2 points lower each time: -20 points a month
    scores = [None] * 29  # day 0 is the baseline: the rule reads differences
    for i, day in enumerate(range(1, 29, 3)):
        scores[day] = 80.0 - 2 * i
    found = rule("scores_declining", falling(scores))
    assert found is not None and found.severity == "high"
    assert found.numbers["points_per_30_days"] == pytest.approx(-20.0, abs=0.1)
    assert found.numbers["from"] == pytest.approx(80.0, abs=0.1)


@pytest.mark.parametrize("drop_per_month,fires", [(4.9, False), (5.0, True)])
def test_scores_declining_threshold(drop_per_month, fires):
    scores = [70.0 - drop_per_month / 30 * d if d % 2 == 0 else None for d in range(29)]
    found = rule("scores_declining", falling(scores))
    assert (found is not None) is fires


def test_scores_declining_needs_enough_attempts():
    scores = [None] * 29
    scores[10], scores[20], scores[28] = 90.0, 60.0, 30.0  # steep, but 3 < 4 attempts
    assert rule("scores_declining", falling(scores)) is None
    scores[5] = 95.0
    assert rule("scores_declining", falling(scores)) is not None


def test_a_high_cumulative_average_does_not_hide_a_fall():
    """The old two-windows rule looked at averages; the fit reads each day's new attempts."""
    history = falling([60.0, None, 55.0, None, 50.0, None, 45.0, None, 40.0], start=500)
    assert history[-1].average > 69  # the running average barely moves
    assert rule("scores_declining", history) is not None


def test_weighted_slope_needs_two_days():
    assert weighted_slope([(3, 50.0, 4)]) is None
    assert weighted_slope([(0, 50.0, 1), (10, 60.0, 1)]) == pytest.approx(1.0)


# -- struggling subject --------------------------------------------------------------------

@pytest.mark.parametrize("subjects,weak", [
    ({"Physics": 49.9, "Chemistry": 52.0}, ["Physics"]),
    ({"Physics": 50.0, "Chemistry": 52.0}, []),
    ({"Physics": 60.0, "Chemistry": 70.0, "Biology": 71.0}, ["Physics"]),  # 7 under mean 67
    ({"Physics": 63.0, "Chemistry": 66.0, "Biology": 69.0}, []),          # gap is 4 < 5
    ({"Only": 65.0}, []),
])
def test_struggling_subject_edges(subjects, weak):
    found = rule("struggling_subject", days(1, subjects=subjects))
    assert (sorted(found.numbers["subjects"]) if found else []) == weak


# -- course not started --------------------------------------------------------------------

@pytest.mark.parametrize("n,fires", [(7, False), (8, True)])
def test_course_not_started_edges(n, fires):
    history = days(n, attempts=0, last_attempt_day=None, videos_watched=0, exams_taken=0)
    found = rule("course_not_started", history, course_name="NEET 2026")
    assert (found is not None) is fires
    if found:
        assert "NEET 2026" in found.reason and found.severity == "high"


def test_watching_a_video_is_a_start():
    history = days(10, attempts=0, last_attempt_day=None, videos_watched=1)
    assert rule("course_not_started", history) is None


# -- good news -----------------------------------------------------------------------------

@pytest.mark.parametrize("streaks,best,fires", [
    ([0, 1, 2, 3], 20, True),
    ([0, 1, 2, 2], 20, False),     # not yet 3
    ([2, 3, 4, 5], 20, False),     # reached 3 days ago: said then
    ([0, 1, 2, 3], 3, False),      # a first streak: nothing "resumed"
])
def test_streak_resumed_edges(streaks, best, fires):
    found = rule("streak_resumed", days(4, current_streak=streaks, best_streak=best))
    assert (found is not None) is fires
    if found:
        assert found.severity == "positive" and not found.needs_attention


@pytest.mark.parametrize("streaks,bests,fires", [
    ([6, 7], [7, 7], False),     # equals the old best: not new
    ([7, 8], [7, 8], True),
    ([5, 6], [5, 6], False),     # under min_streak 7
    ([7, 0], [7, 8], False),     # best grew but the streak is not the record now
])
def test_personal_best_edges(streaks, bests, fires):
    found = rule("personal_best", days(2, current_streak=streaks, best_streak=bests))
    assert (found is not None) is fires


# -- catalogue, ranking, configuration -----------------------------------------------------

def test_every_rule_is_named_documented_and_configurable():
    for name, entry in CATALOGUE.items():
        assert entry.name == name and entry.title and entry.explanation
        assert entry.check.__doc__ and entry.defaults == DEFAULTS[name]


def test_findings_are_ranked_most_severe_first():
    history = days(10, attempts=0, last_attempt_day=None, videos_watched=0,
                   current_streak=[0, 1, 2, 3, 4, 5, 6, 7, 8, 8], best_streak=8)
    found = evaluate(Evidence(history), NONE)
    assert [f.rule for f in found][0] == "course_not_started"
    assert attention_score(found) == (3, 1)
    assert attention_score([]) == (0, 0)


def test_overrides_apply_per_course_then_batch():
    settings = load_attention_settings(
        {"IDP_ATTENTION_RULES": '{"default": {"no_activity.days": 10}, '
                                '"course:2": {"no_activity.days": 5}, '
                                '"batch:9": {"no_activity.days": 3}}'}, DEFAULTS)
    idle = LAST - dt.timedelta(days=4)
    assert rule("no_activity", days(2, last_attempt_day=idle), settings) is None  # 10
    assert rule("no_activity", days(2, last_attempt_day=idle, course_id=2), settings) is None
    assert rule("no_activity", days(2, last_attempt_day=idle, course_id=2, batch_id=9),
                settings) is not None
    assert settings.thresholds("no_activity", DEFAULTS["no_activity"], 9, 2) == {"days": 3.0}


@pytest.mark.parametrize("raw", ["not json", "[1]", '{"class:3": {}}', '{"default": 3}',
                                 '{"default": {"no_activity.weeks": 2}}',
                                 '{"default": {"nope.days": 2}}',
                                 '{"default": {"no_activity.days": "7"}}',
                                 '{"default": {"no_activity.days": -1}}',
                                 '{"default": {"no_activity.days": true}}',
                                 '{"batch:x": {}}'])
def test_bad_overrides_name_the_variable(raw):
    with pytest.raises(ConfigError) as error:
        load_attention_settings({"IDP_ATTENTION_RULES": raw}, DEFAULTS)
    assert str(error.value).startswith("IDP_ATTENTION_RULES")
