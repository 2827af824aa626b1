"""OpenID Connect provider (Authlib): discovery, JWKS, code flow with PKCE, refresh rotation,
client credentials, userinfo, revocation, introspection, RP-initiated logout, role claims.

``init_app`` reads the OIDC settings, builds the Authlib server, registers the blueprint and the
``oidc`` CLI group (plus ``zulip oidc-settings``), and ends a deprovisioned person's tokens.
"""

from __future__ import annotations

import logging

from flask import Flask, url_for
from sqlalchemy.orm import Session

from .. import revocation
from ..housekeeping import add_pruner
from ..navigation import StartLink, add_start_link


def _revoke_person(session: Session, subject: str) -> int:
    """idp.revocation: revoke the person's tokens and spend their codes (in the caller's
    transaction)."""
    from .tokens import revoke_subject

    return revoke_subject(subject)


def _forget_consents(session: Session, subject: str) -> int:
    """idp.revocation: forget the person's remembered consents (in the caller's transaction)."""
    from .consents import revoke_all

    return revoke_all(session, subject)


def init_app(app: Flask) -> None:
    """Register blueprints, CLI commands and signal handlers of this feature."""
    # Authlib logs issued tokens and client objects at DEBUG: never let them reach a log,
    # whatever IDP_LOG_LEVEL says (secrets are never logged).
    logging.getLogger("authlib").setLevel(logging.INFO)
    from . import models  # noqa: F401  (tables registered on db.metadata)
    from .account import bp as account_bp
    from .cli import oidc_cli
    from .registration import bp as registration_bp
    from .server import OIDCState, build_server
    from .settings import load_oidc_settings
    from .tokens import prune
    from .views import bp, login_form_targets

    settings = load_oidc_settings(app.config["IDP_ENV"])
    app.extensions["oidc"] = OIDCState(settings=settings, server=build_server(app, settings))
    app.register_blueprint(bp)
    app.register_blueprint(account_bp)
    add_start_link(app, StartLink(
        "Connected apps", lambda: url_for("oidc_account.connected_apps"),
        "applications you allowed to use your account"))
    app.register_blueprint(registration_bp)
    app.cli.add_command(oidc_cli)
    revocation.register_revoker("oidc tokens", _revoke_person)
    revocation.register_revoker("oidc consents", _forget_consents)
    app.extensions["login_form_targets"].append(login_form_targets)
    add_pruner(app, lambda: dict(zip(("OIDC codes", "OIDC tokens"), prune(), strict=True)))
