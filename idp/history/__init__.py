"""Learning history: a daily snapshot per active student in the bridge's own database (the
seed's ``StudentAcademicSnapshot``), kept for a configured time (docs/history.md)."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from ..lms.history_source import SqlHistorySource
from .settings import HistorySettings, load_history_settings


@dataclass
class HistoryExtension:
    """``app.extensions["history"]``."""

    settings: HistorySettings
    source: SqlHistorySource


def init_app(app: Flask) -> None:
    from . import models  # noqa: F401  (tables on db.metadata)
    from .cli import history_cli

    settings = load_history_settings(app.config["IDP_ENV"])
    app.extensions["history"] = HistoryExtension(
        settings, SqlHistorySource(app.extensions["lms_directory"].engine))
    app.cli.add_command(history_cli)
