"""``flask --app wsgi nudge plan|run|approve|deliver`` (docs/nudges.md)."""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from .. import clock
from ..extensions import db
from ..history.cli import parse_day
from ..history.snapshots import last_complete_day
from ..history.worker import run_once as history_step
from ..lms.db import LMSUnavailable
from ..lms.directory import get_directory
from .delivery import deliver
from .plan import iter_plan_lines
from .runs import ApprovalRefused, approve, plan_day, run_day

nudge_cli = AppGroup("nudge", help="Student nudges and mentor digests over Zulip.")
log = logging.getLogger(__name__)


def _ext():
    return current_app.extensions["nudges"]


def _tz():
    return current_app.extensions["history"].settings.timezone


def _day(value: str | None) -> dt.date:
    return parse_day(value) or last_complete_day(clock.now(), _tz())


@nudge_cli.command("plan")
@click.option("--day", help="the school day judged (default: yesterday)")
def plan_command(day: str | None) -> None:
    """Print who would get what and why (writes nothing)."""
    ext = _ext()
    chosen = _day(day)
    try:
        plan = plan_day(ext, chosen, get_directory().iter_people())
    except LMSUnavailable as exc:
        raise click.ClickException(f"the LMS cannot be reached: {exc}") from None
    for line in iter_plan_lines(plan):
        click.echo(line)
    held = " (would be HELD by the guard)" if plan.held_by_guard(ext.settings) else ""
    click.echo(f"day {chosen}: {plan.students} students assessed, {plan.student_nudges} "
               f"student nudges, {sum(1 for p in plan.to_send if p.kind == 'digest')} "
               f"digests, {len(plan.items) - len(plan.to_send)} suppressed, "
               f"{plan.duplicates} already planned this period{held}")
    if not ext.settings.sends:
        click.echo("no nudge bot configured (ZULIP_NUDGE_BOT_EMAIL): nothing would be sent")


@nudge_cli.command("approve")
@click.argument("run_id", type=click.IntRange(1, 2**62))
@click.option("--by", default=None, help="who approves (default: the OS user)")
def approve_command(run_id: int, by: str | None) -> None:
    """Release a run held by the guard."""
    try:
        released = approve(run_id, by or getpass.getuser())
    except ApprovalRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"run {run_id} approved: {released} nudges released")


def _step(ext) -> None:
    """Snapshot yesterday if due, plan its run once, deliver what is due."""
    history = current_app.extensions["history"]
    history_step(history.source, history.settings)
    day = last_complete_day(clock.now(), history.settings.timezone)
    run = run_day(ext, day, get_directory().iter_people())
    if run is not None:
        log.info("nudge run %d for %s: %s, %d nudges, %d digests, %d suppressed", run.id, day,
                 run.status, run.nudges, run.digests, run.suppressed)
    if ext.sender is not None:
        report = deliver(ext.settings, ext.sender, history.settings.timezone)
        if report is not None and report.touched:
            log.info("nudges: %d sent, %d failed, %d to retry", report.delivered,
                     report.failed, report.retried)


@nudge_cli.command("deliver")
def deliver_command() -> None:
    """Send what is due now (one pass), outside quiet hours."""
    ext = _ext()
    if ext.sender is None:
        raise click.ClickException("no nudge bot configured: set ZULIP_NUDGE_BOT_EMAIL and "
                                   "ZULIP_NUDGE_BOT_API_KEY")
    report = deliver(ext.settings, ext.sender, _tz())
    if report is None:
        raise click.ClickException("another worker is delivering nudges right now")
    click.echo(f"{report.delivered} sent, {report.failed} failed, {report.retried} to retry"
               + (" (paused: quiet hours, Retry-After or Zulip down)" if report.blocked
                  else ""))


@nudge_cli.command("run")
def run_command() -> None:
    """Worker loop: daily snapshot, one nudge run per school day, delivery at the configured
    pace; stops on SIGTERM/SIGINT after the current step."""
    ext = _ext()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"nudge worker: every {ext.settings.interval}s"
               + ("" if ext.sender else " (no bot configured: planning only)"))
    while not stop.is_set():
        try:
            _step(ext)
        except LMSUnavailable as exc:
            db.session.rollback()
            log.warning("nudge step postponed: %s", exc)
        stop.wait(ext.settings.interval)
