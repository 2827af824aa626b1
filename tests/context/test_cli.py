"""``flask context explain`` on the demo LMS: every query uses an index, none scans a large
table sequentially; bad input and a dead LMS are clear errors."""

from __future__ import annotations

from idp.context.plans import QueryPlan
from tests.context.test_cache_breaker import DEAD_LMS


def test_explain_lists_every_query(app):
    """On the 60-student test LMS the planner rightly scans small tables; the 100k-student
    plans are in docs/benchmarks.md (bench/context.py)."""
    result = app.test_cli_runner().invoke(args=["context", "explain", "--student", "1"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert set(lines) == {"owner", "student", "activity", "attempt_summary", "latest_attempts",
                          "subjects", "exam_history", "weekdays", "weekly", "batch_ranks",
                          "mentor_students", "roster_scores", "roster_activity",
                          "roster_recent"}
    assert "student_activities_student_id_idx" in lines["activity"]
    assert "attempts_user_id_date" in lines["latest_attempts"]
    assert "sequential scan of a large table" not in result.output


def test_a_sequential_scan_of_a_large_table_is_flagged():
    plan = QueryPlan("batch_ranks", "...", (), ("attempts", "batches"), 1.0,
                     frozenset({"attempts"}))
    assert plan.scans_a_large_table
    small = QueryPlan("batch_ranks", "...", (), ("batches",), 1.0, frozenset({"attempts"}))
    assert not small.scans_a_large_table


def test_explain_verbose_prints_the_plans(app):
    result = app.test_cli_runner().invoke(args=["context", "explain", "--verbose"])
    assert result.exit_code == 0 and "Execution Time" in result.output


def test_explain_refuses_bad_input_and_a_dead_lms(app, make_app):
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["context", "explain", "--student", "2147483647"])
    assert missing.exit_code == 1 and "no student with id 2147483647" in missing.output
    bad = runner.invoke(args=["context", "explain", "--student", "abc"])
    assert bad.exit_code == 2 and "--student" in bad.output
    dead = make_app(LMS_DATABASE_URL=DEAD_LMS).test_cli_runner().invoke(
        args=["context", "explain"])
    assert dead.exit_code == 1 and "the LMS cannot be reached" in dead.output
