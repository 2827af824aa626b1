"""Nudges: findings → student direct messages and mentor digests in Zulip, with opt-outs,
mutes, a per-person cap, quiet hours and a guard (docs/nudges.md)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from .messages import ZulipMessages
from .settings import NudgeSettings, load_nudge_settings
from .templates import load_templates


@dataclass
class NudgeExtension:
    """``app.extensions["nudges"]``."""

    settings: NudgeSettings
    templates: dict
    base_url: str
    sender: ZulipMessages | None


def init_app(app: Flask) -> None:
    from . import models  # noqa: F401  (tables on db.metadata)
    from .cli import nudge_cli
    from .views import bp, me_section, student_section

    settings = load_nudge_settings(app.config["IDP_ENV"])
    sender = ZulipMessages(settings.zulip_url, settings.bot_email, settings.bot_api_key,
                           settings.http_timeout) if settings.sends else None
    app.extensions["nudges"] = NudgeExtension(settings, load_templates(settings.templates_dir),
                                              app.config["IDP"].issuer.rstrip("/"), sender)
    app.extensions.setdefault("me_sections", []).append(me_section)
    app.extensions.setdefault("student_sections", []).append(student_section)
    app.register_blueprint(bp)
    app.cli.add_command(nudge_cli)
