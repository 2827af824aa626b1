"""Login: the password form, sessions, throttling, logout and LMS launch links."""

from __future__ import annotations

from flask import Flask

from ..events import person_deprovisioned
from ..extensions import db
from .sessions import revoke_subject


def _end_sessions(sender, subject: str, **_) -> None:
    revoke_subject(subject)
    db.session.commit()


def init_app(app: Flask) -> None:
    from .views import bp

    app.register_blueprint(bp)
    person_deprovisioned.connect(_end_sessions, weak=False)
