"""``flask --app wsgi oidc add-client|list-clients|remove-client`` and
``flask --app wsgi zulip oidc-settings``."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from ..cli import admin_command, zulip_cli
from ..extensions import db
from .clients import GRANT_TYPES, ClientError, create_client, find_client, list_clients
from .clients import remove_client as delete_client
from .server import forget_clients

oidc_cli = AppGroup("oidc", help="OpenID Connect clients (relying parties and services).")
ZULIP_CALLBACK = "/complete/oidc/"


@oidc_cli.command("add-client")
@click.option("--name", required=True, help="unique display name, e.g. zulip")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="exact redirect URI (repeatable), e.g. https://chat.example.edu/complete/oidc/")
@click.option("--public", is_flag=True, help="no secret (SPA/native app); PKCE S256 required")
@click.option("--trusted", is_flag=True, help="first-party: skip the consent page")
@click.option("--scope", "scopes", multiple=True,
              help="allowed scope (repeatable; default openid profile email, or lms.context "
                   "for client credentials)")
@click.option("--grant", "grants", multiple=True, type=click.Choice(GRANT_TYPES),
              help="allowed grant (repeatable; default authorization_code refresh_token)")
@click.option("--post-logout-redirect-uri", "post_logout", multiple=True,
              help="registered post_logout_redirect_uri (repeatable)")
@click.option("--resource-server", is_flag=True,
              help="may call the introspection endpoint (RFC 7662)")
def add_client(name, redirect_uris, public, trusted, scopes, grants, post_logout,
               resource_server):
    """Register a client and print its id and secret (the secret is shown only once)."""
    try:
        new = create_client(name=name, redirect_uris=list(redirect_uris), public=public,
                            trusted=trusted, scopes=list(scopes), grant_types=list(grants),
                            post_logout_redirect_uris=list(post_logout),
                            resource_server=resource_server)
    except ClientError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"client_id:     {new.client.client_id}")
    if new.secret:
        click.echo(f"client_secret: {new.secret}")
        click.echo("Store the secret now: the bridge keeps only a hash and cannot show it again.")
    else:
        click.echo("public client: no secret; it must use PKCE (S256).")


@oidc_cli.command("list-clients")
def list_clients_command():
    """One line per client: id, name, kind, grants, scopes, redirect URIs."""
    clients = list_clients()
    if not clients:
        click.echo("no OIDC clients registered")
    for c in clients:
        kind = "public" if c.public else "confidential"
        flags = ",".join(f for f, on in (("trusted", c.trusted),
                                         ("resource-server", c.resource_server)) if on)
        click.echo(f"{c.client_id}  {c.name}  {kind}{' ' + flags if flags else ''}  "
                   f"grants={' '.join(c.grant_types)}  scopes={' '.join(c.scopes)}  "
                   f"redirect_uris={' '.join(c.redirect_uris) or '-'}")


@oidc_cli.command("remove-client")
@click.argument("client")
def remove_client_command(client):
    """Remove CLIENT (id or name); its codes and tokens stop working at once."""
    row = find_client(client)
    if row is None:
        raise click.ClickException(f"no OIDC client with id or name {client!r}")
    delete_client(row)
    db.session.commit()
    forget_clients()
    click.echo(f"removed client {row.client_id} ({row.name}) and its tokens")


@oidc_cli.command("prune")
def prune_command():
    """Delete long-expired authorization codes and tokens (run daily)."""
    from .tokens import prune

    codes, tokens = prune()
    db.session.commit()
    click.echo(f"pruned {codes} authorization codes and {tokens} tokens")


@oidc_cli.group("consents")
def consents_cli():
    """Remembered consents of people for non-trusted clients."""


@consents_cli.command("list")
@click.option("--subject", default=None, help="only this person, e.g. student:42")
@click.option("--client", "client_ref", default=None, help="only this client (id or name)")
def consents_list(subject, client_ref):
    """One line per consent: subject, client, scopes, when allowed."""
    from .consents import list_consents

    client_id = _client_id(client_ref) if client_ref else None
    rows = list_consents(subject=subject, client_id=client_id)
    if not rows:
        click.echo("no remembered consents")
    for c in rows:
        click.echo(f"{c.subject}  {c.client_id}  {c.client_name}  scopes={' '.join(c.scopes)}  "
                   f"granted={c.granted_at:%Y-%m-%d %H:%M}Z")


@consents_cli.command("revoke")
@click.argument("subject")
@click.option("--client", "client_ref", default=None,
              help="only this client (id or name); default: every client")
def consents_revoke(subject, client_ref):
    """Forget SUBJECT's consents (and end those clients' tokens for SUBJECT)."""
    from ..audit import record
    from .consents import list_consents, revoke

    client_id = _client_id(client_ref) if client_ref else None
    held = list_consents(subject=subject, client_id=client_id)
    if not held:
        raise click.ClickException(f"{subject} has no remembered consent"
                                   + (f" for {client_ref}" if client_ref else ""))
    for c in held:
        tokens = revoke(db.session, c.subject, c.client_id)
        record("oidc_consent", "revoked", subject=c.subject, client_id=c.client_id,
               tokens=tokens, by="cli")
        click.echo(f"revoked {c.subject}'s consent for {c.client_name} ({tokens} tokens)")
    db.session.commit()


def _client_id(client_ref: str) -> str:
    client = find_client(client_ref)
    if client is None:
        raise click.ClickException(f"no OIDC client with id or name {client_ref!r}")
    return client.client_id


@zulip_cli.command("oidc-settings")
@click.option("--client", "client_ref", default=None,
              help="client id or name (default: the one client whose redirect URI ends in "
                   "/complete/oidc/)")
@click.option("--idp-name", default="lms", show_default=True)
@click.option("--display-name", default="LMS", show_default=True)
def oidc_settings(client_ref, idp_name, display_name):
    """Print the SOCIAL_AUTH_OIDC_ENABLED_IDPS block for /etc/zulip/settings.py."""
    if client_ref:
        client = find_client(client_ref)
        if client is None:
            raise click.ClickException(f"no OIDC client with id or name {client_ref!r}")
    else:
        matches = [c for c in list_clients()
                   if any(u.endswith(ZULIP_CALLBACK) for u in c.redirect_uris)]
        if len(matches) != 1:
            raise click.ClickException(
                "register Zulip first (" + admin_command(
                    "oidc add-client --name zulip --trusted --redirect-uri "
                    "https://CHAT-HOST/complete/oidc/") + "), or name it with "
                "--client" if not matches else
                "several clients redirect to /complete/oidc/: choose one with --client")
        client = matches[0]
    issuer = current_app.config["IDP"].issuer
    click.echo(f"""# /etc/zulip/settings.py  (generated by: flask --app wsgi zulip oidc-settings)
SOCIAL_AUTH_OIDC_ENABLED_IDPS = {{
    "{idp_name}": {{
        "oidc_url": "{issuer}",
        "display_name": "{display_name}",
        "display_icon": None,
        "client_id": "{client.client_id}",
        "secret": get_secret("social_auth_oidc_secret"),
        "auto_signup": True,
    }}
}}
SOCIAL_AUTH_OIDC_FULL_NAME_VALIDATED = True

# /etc/zulip/zulip-secrets.conf  ([secrets] section): the secret printed by oidc add-client
# social_auth_oidc_secret = <client secret>
# Then: /home/zulip/deployments/current/scripts/restart-server""")
