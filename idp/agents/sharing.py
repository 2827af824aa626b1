"""Whether a student shares their academic context with AI agents and bots.

A student's own choice (``agent_sharing``) wins; without one, the school-wide default
``IDP_AGENTS_SHARE_DEFAULT``. A student who does not share is "not found" to the MCP tools, the
Zulip bot and GraphQL, whoever asks (their mentor's pages and the JSON API are not agents and
are unaffected).
"""

from __future__ import annotations

from flask import current_app
from sqlalchemy import text

from .. import clock
from ..audit import record
from ..extensions import db

_GET = text("SELECT shares FROM agent_sharing WHERE subject = :subject")
_GET_MANY = text("SELECT subject, shares FROM agent_sharing WHERE subject = ANY(:subjects)")
_SET = text("""
    INSERT INTO agent_sharing (subject, shares, updated_at) VALUES (:subject, :shares, :now)
    ON CONFLICT (subject) DO UPDATE SET shares = EXCLUDED.shares, updated_at = EXCLUDED.updated_at
""")


def _default() -> bool:
    return current_app.extensions["agents"].settings.share_default


def shares(subject: str) -> bool:
    """One indexed lookup on the bridge database (a choice takes effect at once)."""
    row = db.session.connection().execute(_GET, {"subject": subject}).first()
    return _default() if row is None else bool(row[0])


def sharing_subjects(subjects: list[str]) -> set[str]:
    """The subjects among ``subjects`` that share, in one query."""
    if not subjects:
        return set()
    chosen = dict(db.session.connection().execute(_GET_MANY, {"subjects": subjects}).all())
    default = _default()
    return {s for s in subjects if chosen.get(s, default)}


def set_sharing(subject: str, value: bool) -> None:
    """Record the student's choice and audit it (the caller commits)."""
    db.session.connection().execute(_SET, {"subject": subject, "shares": value,
                                           "now": clock.now()})
    record("agents.sharing", "on" if value else "off", subject=subject)
