"""THE way to end what a person holds (DESIGN.md, layout): sessions, OIDC tokens and codes,
SAML login records, launch links and cached answers, inside the caller's transaction.

    from idp import revocation
    revocation.revoke_person(session, "student:42", reason="deactivated in the LMS")
    session.commit()   # everything ends together with what the caller recorded, or nothing

Feature packages register what they hold at ``init_app``; each revoker runs in the same
transaction (no commit of its own; an exception aborts the whole revocation):

    revocation.register_revoker("oidc tokens", lambda session, subject: revoke_subject(subject))

A row in ``person_revocations`` records when (launch links issued before it are void, see
:func:`revoked_at`), and ``pg_notify('idp_revocations', subject)`` in the same transaction tells
every web process at commit; each process's listener thread (:class:`RevocationListener`) then
runs the registered cache droppers (``register_cache_dropper``): the person leaves every
process's caches within a second. :func:`announce_change` does the same for a person whose LMS
data changed (caches only, nothing revoked).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import select
import threading
from collections.abc import Callable

from flask import Flask, current_app
from sqlalchemy import DateTime, String, Text, text
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from . import audit, clock
from .extensions import db

log = logging.getLogger(__name__)
CHANNEL = "idp_revocations"

Revoker = Callable[[Session, str], int]
"""Ends what one feature holds for ``subject`` in ``session``'s transaction; returns a count."""
CacheDropper = Callable[[str], None]

_REVOKERS: dict[str, Revoker] = {}


class PersonRevocation(db.Model):
    """The last time everything a person held was ended, and why."""

    __tablename__ = "person_revocations"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)


def register_revoker(name: str, revoker: Revoker) -> None:
    """Register (or replace: idempotent across ``create_app`` calls) what ``name`` ends."""
    _REVOKERS[name] = revoker


def register_cache_dropper(app: Flask, name: str, dropper: CacheDropper) -> None:
    """Register one of ``app``'s in-process caches to drop a person from (in every process)."""
    app.extensions.setdefault("cache_droppers", {})[name] = dropper


def revoke_person(session: Session, subject: str, reason: str) -> dict[str, int]:
    """End everything ``subject`` holds, in the caller's transaction (the caller commits).
    Returns what each revoker ended."""
    now = clock.now()
    ended = {name: int(revoker(session, subject) or 0) for name, revoker in _REVOKERS.items()}
    session.execute(insert(PersonRevocation).values(subject=subject, revoked_at=now,
                                                    reason=reason[:500])
                    .on_conflict_do_update(index_elements=["subject"],
                                           set_={"revoked_at": now, "reason": reason[:500]}))
    audit.record("person.revoked", "ok", subject=subject, reason=reason[:200], **ended)
    _notify(session, subject, "revoked")
    return ended


def announce_change(session: Session, subject: str) -> None:
    """Tell every process (at commit) to drop cached answers about ``subject``."""
    _notify(session, subject, "changed")


def _notify(session: Session, subject: str, kind: str) -> None:
    payload = json.dumps({"subject": subject, "kind": kind})
    session.execute(text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": CHANNEL, "payload": payload})


def revoked_at(session: Session, subject: str) -> dt.datetime | None:
    """When the person's holdings were last ended (a launch link issued before is void)."""
    return session.scalar(sa_select(PersonRevocation.revoked_at)
                          .where(PersonRevocation.subject == subject))


def drop_from_caches(subject: str, app: Flask | None = None) -> None:
    """Run every cache dropper of ``app`` (default: the current one) for ``subject``."""
    app = app or current_app._get_current_object()
    for name, dropper in list(app.extensions.get("cache_droppers", {}).items()):
        try:
            dropper(subject)
        except Exception:  # noqa: BLE001 - one cache's bug must not keep the others
            log.exception("cache dropper %s failed for %s", name, subject)


class RevocationListener(threading.Thread):
    """LISTENs on the bridge database and drops revoked or changed people from this process's
    caches. One daemon thread per process; reconnects after a lost connection."""

    def __init__(self, app: Flask, engine: Engine, *, reconnect_every: float = 2.0):
        super().__init__(name="revocation-listener", daemon=True)
        self.app, self.engine, self.reconnect_every = app, engine, reconnect_every
        self.stop_event = threading.Event()
        self.listening = threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            conn = None
            try:
                conn = self.engine.raw_connection()
                driver = conn.driver_connection
                conn.detach()
                driver.rollback()
                driver.autocommit = True
                with driver.cursor() as cur:
                    cur.execute(f'LISTEN "{CHANNEL}"')
                self.listening.set()
                self._loop(driver)
            except Exception as exc:  # noqa: BLE001 - any driver failure: reconnect later
                self.listening.clear()
                log.warning("revocation listener lost its connection (%s); reconnecting",
                            type(exc).__name__)
            finally:
                if conn is not None:
                    try:
                        conn.driver_connection.close()
                    except Exception:  # noqa: BLE001 - closing a broken socket
                        log.debug("closing the revocation LISTEN connection failed")
            self.stop_event.wait(self.reconnect_every)

    def _loop(self, driver) -> None:
        while not self.stop_event.is_set():
            ready, _, _ = select.select([driver], [], [], 0.5)
            if ready:
                driver.poll()
            notes, driver.notifies[:] = list(driver.notifies), []
            for note in notes:
                try:
                    subject = json.loads(note.payload)["subject"]
                except (ValueError, KeyError, TypeError):
                    continue
                drop_from_caches(str(subject), self.app)

    def stop(self) -> None:
        self.stop_event.set()


def init_app(app: Flask) -> None:
    """Start this process's listener with its first request (each worker process gets one);
    ``IDP_REVOCATION_LISTENER=off`` disables it (on by default, off under TESTING unless
    set to on)."""
    setting = str(app.config["IDP_ENV"].get("IDP_REVOCATION_LISTENER", "")).strip().lower()
    enabled = setting in ("on", "1", "true", "yes") or (not setting and not app.testing)
    app.extensions["revocation_listener"] = None
    if not enabled:
        return
    lock = threading.Lock()

    @app.before_request
    def start_listener() -> None:
        if app.extensions["revocation_listener"] is not None:
            return
        with lock:
            if app.extensions["revocation_listener"] is None:
                listener = RevocationListener(app, db.engine)
                listener.start()
                app.extensions["revocation_listener"] = listener

