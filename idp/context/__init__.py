"""Context: the academic context API (JSON, /api/v1/lms/...) and the mentor pages (/mentor),
over cached academic queries on the LMS (docs/context-api.md)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, url_for

from .. import revocation
from ..events import person_changed
from ..navigation import StartLink, add_start_link
from .service import ContextService
from .settings import ContextSettings, load_context_settings


@dataclass
class ContextExtension:
    """``app.extensions["context"]``."""

    settings: ContextSettings
    service: ContextService


def init_app(app: Flask) -> None:
    """Read settings, build the cached service, register the API and the pages, and drop a
    person's cached context when provisioning sees them change or leave."""
    from .api import bp as api_bp
    from .cli import context_cli
    from .pages import bp as pages_bp
    from .pages import is_mentor_or_staff, is_student

    settings = load_context_settings(app.config["IDP_ENV"])
    service = ContextService(app.extensions["lms_directory"], settings)
    app.extensions["context"] = ContextExtension(settings, service)
    app.register_blueprint(api_bp)
    app.register_blueprint(pages_bp)
    app.cli.add_command(context_cli)

    def forget(sender, subject: str, **_) -> None:
        service.forget(subject)

    person_changed.connect(forget, weak=False)
    revocation.register_cache_dropper(app, "context", service.forget)
    add_start_link(app, StartLink(
        "My students", url=lambda: url_for("context_pages.my_students"),
        description="Progress, streaks and scores of the students you mentor",
        shows_for=is_mentor_or_staff))
    add_start_link(app, StartLink(
        "My progress", url=lambda: url_for("context_pages.me"),
        description="Your streak, scores and subjects, and what to do next",
        shows_for=is_student))
