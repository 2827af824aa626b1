"""``flask --app wsgi context explain``: the query plans of the context API on this LMS."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from .. import clock
from ..lms.db import LMSUnavailable
from ..lms.directory import get_directory
from .plans import explain_queries, student_context

context_cli = AppGroup("context", help="The academic context API.")


@context_cli.command("explain")
@click.option("--student", "student_id", type=click.IntRange(1, 2**31 - 1), default=1,
              show_default=True, help="LMS student id whose queries are explained")
@click.option("--verbose", is_flag=True, help="print every plan in full")
def explain(student_id: int, verbose: bool) -> None:
    """EXPLAIN ANALYZE every context query for one student (and their batch and mentor):
    indexes used, sequential scans, time. Exits 1 if a large table is scanned sequentially
    (add the indexes in docs/lms-indexes.md)."""
    engine = get_directory().engine
    try:
        found = student_context(engine, student_id)
        if found is None:
            raise click.ClickException(f"no student with id {student_id} in the LMS")
        plans = explain_queries(engine, student_id, *found, now=clock.now())
    except LMSUnavailable as exc:
        raise click.ClickException(f"the LMS cannot be reached: {exc}") from None
    for plan in plans:
        if verbose:
            click.echo(f"--- {plan.name}\n{plan.plan}\n")
        flag = "  <-- sequential scan of a large table" if plan.scans_a_large_table else ""
        click.echo(f"{plan.name:16} {plan.milliseconds:8.3f} ms  indexes: "
                   f"{', '.join(plan.indexes) or '-'}; seq scans: "
                   f"{', '.join(plan.sequential_scans) or 'none'}{flag}")
    if any(plan.scans_a_large_table for plan in plans):
        raise SystemExit(1)
