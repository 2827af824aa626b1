"""Feature package: provisioning into Zulip over SCIM 2.0 or REST, with nothing lost.

Modules (imports flow downwards): ``views``/``sync_api``/``cli`` → ``worker`` →
``runs``/``delivery``/``capabilities``/``adoption``/``notify`` → ``plan``/``ledger`` →
``actions`` (the typed vocabulary) → ``targets`` → ``models``/``settings``; actions wait in the
foundation's :mod:`idp.outbox`, and deactivations end local access through
:mod:`idp.revocation`.
"""

from __future__ import annotations

import logging

from flask import Flask, url_for
from sqlalchemy.exc import SQLAlchemyError

from ..events import inactive_login_attempt
from ..extensions import db
from ..lms.db import LMSUnavailable
from ..lms.directory import get_directory
from ..navigation import StartLink, add_start_link
from .settings import load_provision_settings

log = logging.getLogger(__name__)


def _deprovision_on_login(sender, subject: str, **_) -> None:
    """An inactive person tried to sign in: deprovision them at once (login path)."""
    from .runs import deprovision_now

    try:
        person = get_directory().get(subject)
        deprovision_now(db.session, subject,
                        lms_confirms_gone=person is None or not person.active)
    except LMSUnavailable as exc:
        log.warning("login-path deprovisioning of %s postponed: %s", subject, exc)
    except SQLAlchemyError as exc:
        db.session.rollback()
        log.error("login-path deprovisioning of %s failed: %s", subject, type(exc).__name__)


def init_app(app: Flask) -> None:
    """Read settings, register the models, the status page, the CLI and the login receiver."""
    from . import models  # noqa: F401 - registers the tables
    from .cli import provision_cli
    from .sync_api import bp as sync_bp
    from .views import bp

    settings = load_provision_settings(app.config["IDP_ENV"])
    app.extensions["provisioning"] = {"settings": settings}
    app.register_blueprint(bp)
    app.register_blueprint(sync_bp)
    app.cli.add_command(provision_cli)
    add_start_link(app, StartLink(
        "Provisioning", url=lambda: url_for("provisioning.status_page"),
        description="Zulip accounts: pending deactivations, Zulip version and features, errors",
        shows_for=lambda person: person.is_staff))
    inactive_login_attempt.connect(_deprovision_on_login, weak=False)
