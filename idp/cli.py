"""Admin commands of the foundation (``flask --app wsgi ...``): ``lms demo``,
``lms launch-link``, ``keys rotate``, ``keys status``, ``maintenance prune``. Database
migrations are ``flask --app wsgi db upgrade`` (Flask-Migrate). Feature packages add their
own groups (``saml``, ``oidc``, ``provisioning``, ``zulip``)."""

from __future__ import annotations

import os
from urllib.parse import urlencode

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .keys import get_keystore
from .lms.directory import get_directory

lms_cli = AppGroup("lms", help="The LMS: demo data and launch links.")
keys_cli = AppGroup("keys", help="Signing keys (SAML and OIDC).")
maintenance_cli = AppGroup("maintenance", help="Housekeeping of the bridge database.")
zulip_cli = AppGroup("zulip", help="Print the settings Zulip needs (SAML, OIDC).")
"""Shared by feature packages: ``saml`` adds ``saml-settings``, ``oidc`` adds ``oidc-settings``."""


def admin_command(args: str) -> str:
    """An admin command as the operator types it in the mode in use: ``./scripts/run flask
    ARGS`` on the embedded default (scripts/devstack.py sets ``IDP_ADMIN_COMMAND``), else
    ``flask --app wsgi ARGS``. Hints in messages use it, so they name a command that works."""
    return f"{os.environ.get('IDP_ADMIN_COMMAND') or 'flask --app wsgi'} {args}"


@lms_cli.command("demo")
@click.option("--students", type=click.IntRange(6, 5_000_000), default=2000, show_default=True)
@click.option("--attempts-per-student", type=click.IntRange(0, 1000), default=50,
              show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--hash-cost", type=click.Choice(["realistic", "fast"]), default="realistic",
              show_default=True, help="fast: cheap hash parameters, for tests and benchmarks")
@click.option("--admin-url", envvar="LMS_ADMIN_DATABASE_URL",
              help="LMS connection allowed to create tables (default: LMS_DATABASE_URL)")
@click.option("--reader-role", default="idp_reader", show_default=True,
              help="read-only role to create for the bridge ('' to skip)")
@click.option("--reader-password", envvar="LMS_READER_PASSWORD", default=None)
@click.option("--replace", is_flag=True, help="drop existing LMS tables first (demo only!)")
def lms_demo(students, attempts_per_student, seed, hash_cost, admin_url, reader_role,
             reader_password, replace):
    """Create the LMS schema and realistic demo data."""
    from .lms.demo import DEMO_PASSWORD, DemoExists, generate

    url = admin_url or current_app.config["IDP"].lms_database_url
    try:
        counts = generate(url, students=students, seed=seed, hash_cost=hash_cost,
                          attempts_per_student=attempts_per_student, replace=replace,
                          reader_role=reader_role or None, reader_password=reader_password,
                          progress=lambda msg: click.echo(f"  {msg}"))
    except DemoExists as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("demo LMS ready: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    click.echo(f"demo accounts: student1 / mentor1 / staff1, password {DEMO_PASSWORD}")


@lms_cli.command("launch-link")
@click.argument("username")
@click.option("--next", "next_url", default="/", show_default=True)
def lms_launch_link(username, next_url):
    """Print a launch link for USERNAME, as the LMS's Chat button would build it."""
    from .login.launch import LaunchRefused, sign_launch_token

    settings = current_app.config["IDP"]
    person = get_directory().find(username)
    if person is None:
        raise click.ClickException(f"no LMS person with username or email {username!r}")
    try:
        token = sign_launch_token(settings, person.subject)
    except LaunchRefused as exc:
        raise click.ClickException(exc.reason) from None
    click.echo(f"{settings.issuer}/launch?" + urlencode({"token": token, "next": next_url}))


@keys_cli.command("rotate")
def keys_rotate():
    """Stage a next signing key (published, not signing); run again to activate it."""
    action, key = get_keystore().rotate()
    if action == "staged":
        click.echo(f"staged key {key.kid}: it is now published in SAML metadata and the JWKS. "
                   "Update every service provider's certificate, then run this again.")
    else:
        click.echo(f"activated key {key.kid}: it signs from now on; the previous key stays "
                   "published for tokens it signed.")


@keys_cli.command("status")
def keys_status():
    store = get_keystore()
    staged = store.staged()
    click.echo(f"current: {store.current().kid}")
    click.echo(f"staged:  {staged.kid if staged else '-'}")
    click.echo("published: " + ", ".join(k.kid for k in store.published()))


@maintenance_cli.command("prune")
def maintenance_prune():
    """Delete what is expired or past retention: sessions, throttle counters, launch-token
    ids, audit rows, SAML records, OIDC codes and tokens (the shipped timer runs it hourly)."""
    from .housekeeping import prune_all

    counts = prune_all()
    click.echo("pruned " + ", ".join(f"{n} {what}" for what, n in counts.items()))


def init_app(app: Flask) -> None:
    for group in (lms_cli, keys_cli, maintenance_cli, zulip_cli):
        app.cli.add_command(group)
