"""Feature package: saml (see its issue)."""

from flask import Flask


def init_app(app: Flask) -> None:
    """Register blueprints, CLI commands and signal handlers of this feature."""
