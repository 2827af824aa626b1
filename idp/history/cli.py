"""``flask --app wsgi history snapshot|backfill|prune|run`` (docs/history.md)."""

from __future__ import annotations

import datetime as dt
import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from .. import clock
from ..lms.db import LMSUnavailable
from .snapshots import backfill, last_complete_day, prune, take_snapshot
from .worker import run_forever

history_cli = AppGroup("history", help="The learning history (daily academic snapshots).")


def _ext():
    return current_app.extensions["history"]


def parse_day(value: str | None) -> dt.date | None:
    """A ``--day`` option: None stays None; anything but YYYY-MM-DD is a usage error."""
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-11-26") from None


@history_cli.command("snapshot")
@click.option("--day", help="the school day to snapshot (YYYY-MM-DD); default: yesterday")
@click.option("--force", is_flag=True, help="add rows still missing for a day already taken")
def snapshot_command(day: str | None, force: bool) -> None:
    """Snapshot every active student at the end of one day (idempotent)."""
    ext = _ext()
    tz = ext.settings.timezone
    chosen = parse_day(day) or last_complete_day(clock.now(), tz)
    try:
        result = take_snapshot(ext.source, chosen, tz, force=force)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    except LMSUnavailable as exc:
        raise click.ClickException(f"the LMS cannot be reached: {exc}") from None
    if result.skipped:
        click.echo(f"{chosen}: already taken (use --force to add missing rows)")
    else:
        click.echo(f"{chosen}: {result.students} students, {result.inserted} new rows, "
                   f"{result.seconds:.1f}s")


@history_cli.command("backfill")
@click.option("--days", type=click.IntRange(1, 3660), default=None,
              help="how many days back from yesterday (default: the retention)")
def backfill_command(days: int | None) -> None:
    """Rebuild past days from what the LMS keeps (dated attempts; activity rows as of then)."""
    ext = _ext()
    tz = ext.settings.timezone
    last = last_complete_day(clock.now(), tz)
    first = last - dt.timedelta(days=(days or ext.settings.retention_days) - 1)
    try:
        results = backfill(ext.source, first, last, tz)
    except LMSUnavailable as exc:
        raise click.ClickException(f"the LMS cannot be reached: {exc}") from None
    taken = [r for r in results if not r.skipped]
    click.echo(f"{first}..{last}: {len(taken)} days taken, {len(results) - len(taken)} "
               f"already there, {sum(r.inserted for r in taken)} rows")


@history_cli.command("prune")
def prune_command() -> None:
    """Delete snapshots older than IDP_HISTORY_RETENTION_DAYS."""
    ext = _ext()
    deleted = prune(ext.settings.retention_days, ext.settings.timezone)
    click.echo(f"{deleted} rows older than {ext.settings.retention_days} days deleted")


@history_cli.command("run")
def run_command() -> None:
    """Worker loop: snapshot each day after midnight (school time zone), prune; stops on
    SIGTERM/SIGINT after the current step."""
    ext = _ext()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"history worker: time zone {ext.settings.timezone.key}, checking every "
               f"{ext.settings.interval}s")
    run_forever(ext.source, ext.settings, stop)
