"""Login: the password form, sessions, throttling, logout and LMS launch links."""

from __future__ import annotations

from flask import Flask
from sqlalchemy.orm import Session

from .. import revocation
from .sessions import revoke_subject


def _end_sessions(session: Session, subject: str) -> int:
    """idp.revocation: the person's browser sessions end (in the caller's transaction)."""
    return revoke_subject(subject)


def init_app(app: Flask) -> None:
    from .views import bp

    app.register_blueprint(bp)
    revocation.register_revoker("login sessions", _end_sessions)
