"""Feature package: SAML 2.0 identity provider for Zulip (SAML core, bindings, profiles,
metadata). ``init_app`` reads the SAML settings, registers the blueprint (CSRF-exempt: SAML
messages arrive as cross-site POSTs), the ``saml`` and ``zulip saml-settings`` commands, the
Single Logout hook on bridge ``/logout``, the revoker of SAML logins (``idp.revocation``) and
the "Open Zulip" start link."""

from __future__ import annotations

from flask import Flask, url_for

from .. import revocation
from ..extensions import csrf
from ..housekeeping import add_pruner
from ..navigation import StartLink, add_start_link


def init_app(app: Flask) -> None:
    """Register blueprints, CLI commands and the logout and start-page hooks of SAML."""
    from . import models  # noqa: F401  (registers the tables)
    from .cli import saml_cli
    from .housekeeping import end_logins, prune
    from .registry import first_sp, list_sps
    from .settings import load_saml_settings
    from .views import bp, logout_hook

    settings = app.config["IDP"]
    env = app.config.get("IDP_ENV") or {}
    saml_settings = load_saml_settings(env, settings)
    app.extensions["saml"] = saml_settings
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.cli.add_command(saml_cli)
    app.extensions["logout_handlers"].append(logout_hook)
    app.extensions["logout_form_targets"].append(
        lambda: [url for sp in list_sps() for url in (sp.slo_url, sp.slo_response_url) if url])
    revocation.register_revoker("saml logins", end_logins)
    add_pruner(app, lambda: prune(settings.session_lifetime))

    def open_zulip_url() -> str:
        sp = first_sp()
        return url_for("saml.sso_init", sp=sp.entity_id if sp else "",
                       subdomain=saml_settings.zulip_subdomain)

    add_start_link(app, StartLink(
        label="Open Zulip", url=open_zulip_url,
        description="Chat with your batch and mentors, signed in already.",
        shows_for=lambda person: first_sp() is not None))
