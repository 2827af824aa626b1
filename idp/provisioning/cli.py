"""``flask --app wsgi provision ...``: plan, run, apply --once, approve RUN_ID, retry ACTION_ID,
status."""

from __future__ import annotations

import getpass
import logging
import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup, ScriptInfo
from sqlalchemy.exc import SQLAlchemyError

from ..cli import admin_command
from ..dbtimeouts import database_failure
from ..extensions import db
from ..lms.db import LMSUnavailable
from ..lms.directory import get_directory
from .actions import ACTIONS as VOCABULARY
from .actions import Kind
from .plan import guard
from .runs import ApprovalRefused, approve, retry_failed
from .status import status_report
from .targets import TargetError, build_target
from .worker import Provisioner, snapshot_plan


class ProvisionGroup(AppGroup):
    """Commands whose database failures end in one line naming the database, no traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SQLAlchemyError as exc:
            app = ctx.ensure_object(ScriptInfo).load_app()
            with app.app_context():
                where = database_failure(exc, db.engine.url)
            raise click.ClickException(f"bridge database unavailable: {where}") from None


provision_cli = ProvisionGroup("provision", help="Provisioning into Zulip (SCIM 2.0 or REST).")
log = logging.getLogger(__name__)


def _settings():
    return current_app.extensions["provisioning"]["settings"]


def _provisioner() -> Provisioner:
    settings = _settings()
    return Provisioner(session=db.session, directory=get_directory(), settings=settings,
                       target=build_target(settings), engine=db.engine)


def _detail(action) -> str:
    return VOCABULARY[Kind(action.action)].describe(action.payload)


@provision_cli.command("plan")
@click.option("--limit", type=click.IntRange(0), default=200, show_default=True,
              help="rows to print (0: all)")
def plan_command(limit):
    """Print what a run would do now, as a table, without doing anything."""
    settings = _settings()
    try:
        plan = snapshot_plan(db.session, get_directory(), settings)
    except LMSUnavailable as exc:
        raise click.ClickException(f"{exc}: nothing planned") from None
    finally:
        db.session.rollback()
    click.echo(f"LMS people read: {plan.people_seen}; managed active accounts: {plan.managed}; "
               f"target: {settings.target}")
    if plan.refused:
        click.echo(f"REFUSED: {plan.refused}")
        return
    held = guard(plan, max_percent=settings.guard_percent, max_count=settings.guard_max)
    rows = plan.actions if limit == 0 else plan.actions[:limit]
    width = max([len("subject")] + [len(a.subject) for a in rows])
    click.echo(f"{'subject':<{width}}  {'action':<10}  detail")
    click.echo(f"{'-' * width}  {'-' * 10}  {'-' * 30}")
    for action in rows:
        click.echo(f"{action.subject:<{width}}  {action.action:<10}  {_detail(action)}")
    if len(rows) < len(plan.actions):
        click.echo(f"... {len(plan.actions) - len(rows)} more (use --limit 0)")
    counts = ", ".join(f"{k}={v}" for k, v in sorted(plan.counts().items())) or "nothing to do"
    click.echo(f"total: {len(plan.actions)} actions ({counts})")
    if held:
        click.echo(f"GUARD: a run would be held for approval: {held}")


@provision_cli.command("run")
def run_command():
    """The long-running worker (plan-only while no Zulip is configured)."""
    provisioner = _provisioner()
    if provisioner.target is not None:
        try:
            provisioner.target.check()
        except TargetError as exc:
            if not exc.transient:
                raise click.ClickException(f"Zulip refused the bridge: {exc}: check "
                                           f"ZULIP_SCIM_TOKEN or ZULIP_BOT_*") from None
            log.warning("Zulip not reachable yet (%s); actions wait in the outbox", exc)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"provisioning worker started (target: {_settings().target})", err=True)
    provisioner.run(stop)


@provision_cli.command("apply")
@click.option("--once", is_flag=True, required=True,
              help="adopt, plan once and deliver what is ready, then exit")
def apply_command(once):
    """Adopt, plan once and deliver (needs a configured Zulip)."""
    provisioner = _provisioner()
    if provisioner.target is None:
        raise click.ClickException(f"{_settings().plan_only_reason}: provisioning needs "
                                   f"ZULIP_URL with ZULIP_SCIM_TOKEN (or ZULIP_BOT_EMAIL and "
                                   f"ZULIP_BOT_API_KEY)")
    try:
        plan, adopted, report = provisioner.apply_once()
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from None
    planned = "LMS unreadable: nothing planned" if plan is None else (
        f"refused: {plan.refused}" if plan.refused else f"planned {len(plan.actions)} actions")
    click.echo(f"adopted {adopted}; {planned}; delivered {report.delivered}, "
               f"retrying {report.retried}, failed {report.failed}")


@provision_cli.command("approve")
@click.argument("run_id", type=int)
@click.option("--by", default=None, help="who approves (default: the OS user)")
def approve_command(run_id, by):
    """Release a run held by the safety guard."""
    try:
        run = approve(db.session, run_id, by=by or getpass.getuser())
    except ApprovalRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"run {run.id} approved: {run.deactivations} deactivations and the rest of its "
               f"actions are queued for delivery")


@provision_cli.command("retry")
@click.argument("action_id", type=int)
def retry_command(action_id):
    """Queue a failed action again, once its cause is fixed in Zulip."""
    try:
        action = retry_failed(db.session, action_id)
    except ApprovalRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"action {action.id} ({action.action} of {action.subject}) queued again")


@provision_cli.command("status")
def status_command():
    """Last runs, pending, held, failures, lag."""
    report = status_report(db.session)
    click.echo(f"target: {_settings().target}; managed accounts: {report.managed} "
               f"({report.managed_active} active)")
    click.echo(f"pending actions: {report.pending} ({report.retrying} retrying); oldest "
               f"waiting: {_seconds(report.oldest_pending_age)}; last lag: "
               f"{_seconds(report.last_lag)}")
    click.echo(f"pending deactivations: {report.pending_deactivations}; oldest waiting: "
               f"{_seconds(report.oldest_deactivation_age)}")
    caps = report.capabilities
    version = (f"{caps.version} (feature level {caps.feature_level})"
               if caps and caps.version else "not detected yet")
    features = " ".join(f"{k}={'on' if v else 'off'}" for k, v in
                        sorted(caps.features.items())) if caps else "-"
    click.echo(f"zulip: reachable: {report.zulip_reachable}; version: {version}; "
               f"features: {features}")
    for warning in caps.warnings if caps else []:
        click.echo(f"SWITCHED OFF: {warning}")
    if report.zulip is not None and report.zulip.last_error:
        click.echo(f"last Zulip error ({report.zulip.last_error_at:%Y-%m-%d %H:%M:%S}): "
                   f"{report.zulip.last_error}")
    if _settings().plan_only:
        click.echo(f"plan-only, {_settings().plan_only_reason}: runs say what would be done; "
                   f"nothing is sent to Zulip")
    for run in report.held:
        click.echo(f"HELD run {run.id}: {run.reason} -> "
                   f"{admin_command(f'provision approve {run.id}')}")
    click.echo("last runs:")
    for run in report.runs:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(run.counts.items())) or "-"
        click.echo(f"  {run.id:>6}  {run.started_at:%Y-%m-%d %H:%M:%S}  {run.trigger:<7} "
                   f"{run.status:<10} {counts}{'  ' + run.reason if run.reason else ''}")
    if report.failures:
        click.echo("failures:")
        for action in report.failures:
            click.echo(f"  #{action.id} {action.subject} {action.action}: {action.last_error} "
                       f"({admin_command(f'provision retry {action.id}')})")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
