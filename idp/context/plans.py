"""EXPLAIN (ANALYZE, BUFFERS) of every academic query, for the LMS's DBA and the benchmark:
which indexes each query used, whether any large table was scanned sequentially, how long it
took (docs/lms-indexes.md, "Checking the plans"). Runs as the bridge's read-only role."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ..lms.academics import NO_PARALLEL, SqlAcademics
from ..lms.db import lms_query

_INDEX = re.compile(r"(?:Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? "
                    r"(?:using|on) (\w+)")
_SEQ = re.compile(r"Seq Scan on (\w+)")
_TIME = re.compile(r"Execution Time: ([\d.]+) ms")
LMS_TABLES = ("students", "attempts", "student_activities", "subject_stats")
LARGE_ROWS = 10_000  # below this a sequential scan is the planner's right choice
_SIZES = text("SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
              "AND relname = ANY(:names) AND relnamespace = 'public'::regnamespace")


@dataclass(frozen=True)
class QueryPlan:
    name: str
    plan: str
    indexes: tuple[str, ...]
    sequential_scans: tuple[str, ...]
    milliseconds: float
    large_tables: frozenset[str] = frozenset()

    @property
    def scans_a_large_table(self) -> bool:
        """A sequential scan of an LMS table with more than LARGE_ROWS rows (a missing index)."""
        return any(table in self.large_tables for table in self.sequential_scans)


def explain_queries(engine: Engine, student_id: int, batch_id: int | None,
                    mentor_id: int | None, now: dt.datetime) -> list[QueryPlan]:
    """Run every academic query under EXPLAIN ANALYZE for this student, batch and mentor."""
    statements = SqlAcademics(engine).explainable(student_id, batch_id, mentor_id, now)
    plans = []
    with lms_query(engine, "context_explain") as conn:
        large = frozenset(name for name, rows in conn.execute(
            _SIZES, {"names": list(LMS_TABLES)}) if rows > LARGE_ROWS)
        conn.execute(NO_PARALLEL)  # as the batch and mentor queries run
        for name, statement, params in statements:
            compiled = statement.compile(dialect=conn.dialect)
            lines = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + compiled.string,
                                         compiled.construct_params(params)).scalars().all()
            plan = "\n".join(lines)
            took = _TIME.search(plan)
            plans.append(QueryPlan(name, plan, tuple(sorted(set(_INDEX.findall(plan)))),
                                   tuple(sorted(set(_SEQ.findall(plan)))),
                                   float(took.group(1)) if took else 0.0, large))
    return plans


def student_context(engine: Engine, student_id: int) -> tuple[int | None, int | None] | None:
    """(batch id, mentor id) of a student, or None when there is no such student."""
    owner = SqlAcademics(engine).owner(student_id)
    return None if owner is None else (owner["batch_id"], owner["mentor_id"])
