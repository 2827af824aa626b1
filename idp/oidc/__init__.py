"""OpenID Connect provider (Authlib): discovery, JWKS, code flow with PKCE, refresh rotation,
client credentials, userinfo, revocation, introspection, RP-initiated logout, role claims.

``init_app`` reads the OIDC settings, builds the Authlib server, registers the blueprint and the
``oidc`` CLI group (plus ``zulip oidc-settings``), and ends a deprovisioned person's tokens.
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy.orm import Session

from .. import revocation


def _revoke_person(session: Session, subject: str) -> int:
    """idp.revocation: revoke the person's tokens and spend their codes (in the caller's
    transaction)."""
    from .tokens import revoke_subject

    return revoke_subject(subject)


def init_app(app: Flask) -> None:
    """Register blueprints, CLI commands and signal handlers of this feature."""
    # Authlib logs issued tokens and client objects at DEBUG: never let them reach a log,
    # whatever IDP_LOG_LEVEL says (secrets are never logged).
    logging.getLogger("authlib").setLevel(logging.INFO)
    from . import models  # noqa: F401  (tables registered on db.metadata)
    from .cli import oidc_cli
    from .server import OIDCState, build_server
    from .settings import load_oidc_settings
    from .views import bp

    settings = load_oidc_settings(app.config["IDP_ENV"])
    app.extensions["oidc"] = OIDCState(settings=settings, server=build_server(app, settings))
    app.register_blueprint(bp)
    app.cli.add_command(oidc_cli)
    revocation.register_revoker("oidc tokens", _revoke_person)
