"""Agents: the MCP server (/mcp), the Zulip context bot (/integrations/zulip/context) and
GraphQL (/api/graphql), all views over the context service with the context API's
authorization, plus each student's choice about sharing with AI agents (docs/agents.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import click
from flask import Flask, url_for
from flask.cli import AppGroup

from ..extensions import db
from ..housekeeping import add_pruner
from ..navigation import StartLink, add_start_link
from ..revocation import register_cache_dropper
from .settings import AgentsSettings, load_agents_settings
from .sharing import SharingChoices

REGISTRATION_SCOPES = ("lms.context", "lms.context.email", "openid", "profile")

agents_cli = AppGroup("agents", help="AI agents: MCP client registrations.")


@dataclass
class AgentsExtension:
    """``app.extensions["agents"]``."""

    settings: AgentsSettings
    graphql_schema: object = None
    mcp_transport: object = None   # built on the first MCP request (mcp_server.transport_for)
    sharing_choices: SharingChoices = field(default_factory=SharingChoices)


@agents_cli.command("approve-client")
@click.argument("client_id")
def approve_client(client_id: str) -> None:
    """Let a dynamically registered client (IDP_AGENTS_REGISTRATION=approval) sign people in."""
    from ..oidc.registration import approve

    if not approve(client_id):
        raise click.ClickException(f"no dynamically registered client {client_id!r}")
    db.session.commit()
    click.echo(f"approved {client_id}")


@agents_cli.command("prune")
@click.option("--unused-days", type=click.IntRange(1, 3650), default=30, show_default=True,
              help="remove dynamically registered clients this old that hold no token")
def prune(unused_days: int) -> None:
    """Delete dead RFC 8707 bindings and abandoned dynamically registered clients (also done
    hourly by ``maintenance prune`` with the default age)."""
    counts = prune_agents(unused_days)
    db.session.commit()
    click.echo(f"removed {counts['unused registered clients']} unused registered clients, "
               f"{counts['resource bindings']} resource bindings")


def prune_agents(unused_days: int = 30) -> dict[str, int]:
    """The agents' part of housekeeping; the caller commits."""
    from ..oidc.registration import prune_registrations
    from ..oidc.resource_indicators import prune_bindings

    return {"unused registered clients": prune_registrations(unused_days),
            "resource bindings": prune_bindings()}


def init_app(app: Flask) -> None:
    from ..oidc.registration import RegistrationPolicy, enable_registration
    from ..oidc.resource_indicators import register_resource
    from . import models  # noqa: F401  (table registered on db.metadata)
    from .graphql_api import bp as graphql_bp
    from .graphql_api import build_schema
    from .pages import bp as pages_bp
    from .views import MCP_PATH
    from .views import bp as mcp_bp
    from .zulip_bot import bp as zulip_bp

    settings = load_agents_settings(app.config["IDP_ENV"])
    app.extensions["agents"] = agents = AgentsExtension(settings, build_schema(settings))
    register_cache_dropper(app, "agents sharing", agents.sharing_choices.forget)
    register_resource(app, app.config["IDP"].issuer + MCP_PATH)
    if settings.registration != "off":
        enable_registration(app, RegistrationPolicy(
            mode=settings.registration, per_hour=settings.registrations_per_hour,
            scopes=REGISTRATION_SCOPES, default_scope="lms.context"))
    app.register_blueprint(mcp_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(zulip_bp)
    app.register_blueprint(graphql_bp)
    app.cli.add_command(agents_cli)
    add_pruner(app, prune_agents)
    add_start_link(app, StartLink(
        "AI assistants and my data", url=lambda: url_for("agents_pages.privacy"),
        description="Choose whether AI assistants and chat bots may read your progress",
        shows_for=lambda person: person.kind == "student"))
