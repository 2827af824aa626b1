"""A nudge run per school day: planned once the day's learning history is complete, held by
the guard or released, approved by an operator (``nudge approve RUN_ID``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, text, update

from .. import clock
from ..audit import record
from ..extensions import db
from ..history.models import HistoryDay
from .models import HELD, PENDING, Nudge, NudgeRun
from .plan import Plan, build_plan, record_run

RUN_LOCK_KEY = 0x6E75_6467  # "nudg": the advisory lock of run planning


class ApprovalRefused(Exception):
    pass


def plan_day(ext, day: dt.date, people) -> Plan:
    return build_plan(ext.settings, ext.templates, day, people, ext.base_url)


def run_day(ext, day: dt.date, people) -> NudgeRun | None:
    """Plan and record the run of ``day`` once its snapshot is complete; None if the day
    already has a run or no snapshot yet (idempotent: run it as often as you like). A
    transaction-level advisory lock makes the check and the insert one step across replicas:
    the second worker waits, then finds the run."""
    db.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": RUN_LOCK_KEY})
    if db.session.get(HistoryDay, day) is None:
        db.session.rollback()
        return None
    if db.session.scalar(select(NudgeRun.id).where(NudgeRun.day == day)) is not None:
        db.session.rollback()
        return None
    run = record_run(plan_day(ext, day, people), ext.settings)
    record("nudge_run", run.status, None, run_id=run.id, day=day.isoformat(),
           nudges=run.nudges, digests=run.digests, suppressed=run.suppressed)
    db.session.commit()
    return run


def approve(run_id: int, by: str) -> int:
    """Release a held run; how many nudges became due."""
    run = db.session.get(NudgeRun, run_id, with_for_update=True)
    if run is None:
        raise ApprovalRefused(f"no nudge run {run_id}")
    if run.status != "held":
        raise ApprovalRefused(f"run {run_id} is {run.status}, not held")
    now = clock.now()
    released = db.session.execute(update(Nudge).where(Nudge.run_id == run_id,
                                                      Nudge.status == HELD)
                                  .values(status=PENDING)).rowcount
    run.status, run.approved_at = "approved", now
    record("nudge_run_approved", "ok", None, run_id=run_id, by=by, released=released)
    db.session.commit()
    return released
