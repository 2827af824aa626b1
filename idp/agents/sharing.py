"""Whether a student shares their academic context with AI agents and bots.

A student's own choice (``agent_sharing``) wins; without one, the school-wide default
``IDP_AGENTS_SHARE_DEFAULT``. A student who does not share is "not found" to the MCP tools, the
Zulip bot and GraphQL, whoever asks (their mentor's pages and the JSON API are not agents and
are unaffected).

One student's choice is read once and then kept by each process (:class:`SharingChoices`,
beside the cached owner that authorization reads), so a cached tool call costs no query for it.
A change drops it everywhere as the bridge drops a changed person from its caches
(:func:`idp.revocation.announce_change`): at once in the process that saved it, within a second
in the others (their revocation listeners), and after ``CHOICE_TTL_SECONDS`` at the latest
should a process miss the notice (listener off or reconnecting).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cachetools import TTLCache
from flask import current_app
from sqlalchemy import text

from .. import clock, revocation
from ..audit import record
from ..extensions import db

_GET = text("SELECT shares FROM agent_sharing WHERE subject = :subject")
_GET_MANY = text("SELECT subject, shares FROM agent_sharing WHERE subject = ANY(:subjects)")
_SET = text("""
    INSERT INTO agent_sharing (subject, shares, updated_at) VALUES (:subject, :shares, :now)
    ON CONFLICT (subject) DO UPDATE SET shares = EXCLUDED.shares, updated_at = EXCLUDED.updated_at
""")


CHOICE_TTL_SECONDS = 2    # the bound a deactivation has too (IDP_LIVENESS_CACHE_SECONDS)
_UNKNOWN = object()


class SharingChoices:
    """This process's copy of the students' explicit choices (None: no choice made), one per
    app; thread-safe."""

    def __init__(self, ttl: float = CHOICE_TTL_SECONDS, maxsize: int = 50_000,
                 timer: Callable[[], float] | None = None):
        self._cache: TTLCache = TTLCache(maxsize, ttl, **({"timer": timer} if timer else {}))
        self._lock = threading.Lock()

    def get(self, subject: str):
        """The cached choice (True, False or None), or ``_UNKNOWN``."""
        with self._lock:
            return self._cache.get(subject, _UNKNOWN)

    def put(self, subject: str, choice: bool | None) -> None:
        with self._lock:
            self._cache[subject] = choice

    def forget(self, subject: str) -> None:
        """A revocation-listener cache dropper (``idp.revocation.register_cache_dropper``)."""
        with self._lock:
            self._cache.pop(subject, None)

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()


def _agents():
    return current_app.extensions["agents"]


def _default() -> bool:
    return _agents().settings.share_default


def shares(subject: str) -> bool:
    """The student's choice, else the school's default: one indexed lookup on the bridge
    database the first time, then this process's copy."""
    choices: SharingChoices = _agents().sharing_choices
    choice = choices.get(subject)
    if choice is _UNKNOWN:
        row = db.session.connection().execute(_GET, {"subject": subject}).first()
        choice = None if row is None else bool(row[0])
        choices.put(subject, choice)
    return _default() if choice is None else choice


def sharing_subjects(subjects: list[str]) -> set[str]:
    """The subjects among ``subjects`` that share, in one query."""
    if not subjects:
        return set()
    chosen = dict(db.session.connection().execute(_GET_MANY, {"subjects": subjects}).all())
    default = _default()
    return {s for s in subjects if chosen.get(s, default)}


def set_sharing(subject: str, value: bool) -> None:
    """Record the student's choice and audit it (the caller commits); every process drops its
    copy (this one now, the others when the commit's notice reaches them)."""
    db.session.connection().execute(_SET, {"subject": subject, "shares": value,
                                           "now": clock.now()})
    record("agents.sharing", "on" if value else "off", subject=subject)
    revocation.announce_change(db.session, subject)
    _agents().sharing_choices.forget(subject)
