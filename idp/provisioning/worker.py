"""The provisioning worker: read the LMS, plan, guard, and deliver the outbox to Zulip.

Change detection has three paths: a streamed snapshot diff every ``PROVISION_INTERVAL`` seconds,
the optional LISTEN/NOTIFY fast path (a targeted diff of the people named), and the login path
(:func:`~idp.provisioning.runs.deprovision_now`, from the web process). Only one worker plans and
delivers at a time across replicas: it holds a PostgreSQL session-level advisory lock
(``pg_try_advisory_lock``) on a dedicated connection; the others stand by and take over when
that connection ends (a crashed worker's lock goes with its connection).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from .. import clock
from ..lms.db import LMSUnavailable
from ..lms.directory import Directory
from . import capabilities
from .actions import Feature
from .adoption import adopt_existing
from .capabilities import Capabilities
from .delivery import DeliveryReport, deliver_batch, replan_returned, settle_switched_off
from .ledger import load_ledger
from .metrics import LEADER, ZULIP_FEATURE
from .notify import Change, LmsListener
from .plan import Plan, PlanOptions, person_actions, plan_changes
from .runs import (
    recent_targeted_deactivations,
    record_failure,
    record_plan,
    record_plan_only,
)
from .settings import ProvisionSettings
from .targets.base import TargetError, ZulipTarget

log = logging.getLogger(__name__)
TARGETED_LIMIT = 500  # more notified people than this at once: read the whole snapshot
GUARD_WINDOW = 300.0  # seconds of NOTIFY deactivations the guard adds up


class DeliveryLock:
    """``pg_try_advisory_lock(key)`` held on its own autocommit connection."""

    def __init__(self, engine: Engine, key: int):
        self.engine, self.key = engine, key
        self._conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None

    def try_acquire(self) -> bool:
        if self._conn is not None:
            return True
        try:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
        except SQLAlchemyError as exc:
            log.warning("delivery lock unavailable: %s", type(exc).__name__)
            return False
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def alive(self) -> bool:
        """The lock connection still answers (else the lock is gone with it)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            self._conn = None
            return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.close()
            except SQLAlchemyError:
                log.debug("releasing the delivery lock failed; the connection is gone anyway")
            self._conn = None


def plan_options(settings: ProvisionSettings) -> PlanOptions:
    return PlanOptions(create=settings.create, sync_role=settings.sync_role,
                       sync_groups=settings.sync_groups)


def snapshot_plan(session: Session, directory: Directory, settings: ProvisionSettings) -> Plan:
    """Diff every LMS person (streamed) against the ledger. An LMS failure midway raises
    LMSUnavailable before anything is planned: a partial snapshot is never used."""
    ledger = load_ledger(session)
    session.rollback()  # end the read transaction; the LMS stream may take a while
    return plan_changes(directory.iter_people(), ledger, plan_options(settings))


def targeted_plan(session: Session, directory: Directory, subjects: list[str],
                  settings: ProvisionSettings) -> Plan:
    """Diff only the people a NOTIFY named (one indexed LMS lookup each)."""
    people = [p for p in (directory.get(s) for s in subjects) if p is not None]
    found = {p.subject for p in people}
    ledger = load_ledger(session)
    managed = sum(1 for e in ledger.values() if e.active)
    named = {s: ledger[s] for s in subjects if s in ledger}
    plan = plan_changes(people, named, plan_options(settings), full_snapshot=False)
    for subject in subjects:  # named, gone from the LMS, still managed: removed
        if subject not in found and subject in named:
            plan.actions.extend(person_actions(None, named[subject], plan_options(settings)))
    plan.managed = managed
    return plan


@dataclass
class Provisioner:
    """One worker's state; :meth:`run` is ``provision run``, :meth:`apply_once` is
    ``provision apply --once``."""

    session: Session
    directory: Directory
    settings: ProvisionSettings
    target: ZulipTarget | None
    engine: Engine

    def __post_init__(self) -> None:
        self.lock = DeliveryLock(self.engine, self.settings.lock_key)
        self.listener: LmsListener | None = None
        self._next_poll = 0.0
        self._next_adopt = 0.0
        self._next_listen = 0.0
        self._next_detect = 0.0
        self._last_summary: tuple | None = None
        self.capabilities: Capabilities | None = None

    def _load_capabilities(self) -> None:
        """What another worker detected recently (a fresh process need not ask again)."""
        stored, checked_at = capabilities.load(self.session, self.target.name)
        if stored is not None and checked_at is not None:
            age = (clock.now() - checked_at).total_seconds()
            if 0 <= age < self.settings.capability_interval:
                self.capabilities = stored
                self._next_detect = time.monotonic() + self.settings.capability_interval - age

    def detect_capabilities(self) -> Capabilities | None:
        """Read Zulip's version and decide its features (at start and every
        PROVISION_CAPABILITY_INTERVAL seconds); stored for the status surfaces."""
        if self.target is None or self.settings.zulip_url is None:
            return None
        if self.capabilities is None:
            self.capabilities = capabilities.load(self.session, self.target.name)[0]
        before = (None if self.capabilities is None else
                  Capabilities.from_json(self.capabilities.as_json(), self.target.name))
        self.capabilities = capabilities.detect(self.target.name, self.settings.zulip_url,
                                                self.settings.http_timeout, self.capabilities)
        capabilities.store(self.session, self.capabilities)
        not_synced = [name for name, synced in ((Feature.GROUPS, self.settings.sync_groups),
                                                (Feature.ROLE, self.settings.sync_role))
                      if not synced]
        replan_returned(self.session, before, self.capabilities,  # same transaction
                        not_synced=not_synced)
        self.session.commit()
        for name in Feature:
            ZULIP_FEATURE.labels(name.value).set(int(self.capabilities.allows(name)))
        self._next_detect = time.monotonic() + self.settings.capability_interval
        return self.capabilities

    # -- single steps --------------------------------------------------------------------
    def poll(self, trigger: str = "poll") -> Plan | None:
        try:
            plan = snapshot_plan(self.session, self.directory, self.settings)
        except LMSUnavailable as exc:
            log.error("LMS unreadable, nothing planned: %s", exc)
            record_failure(self.session, trigger, str(exc))
            return None
        recent = recent_targeted_deactivations(self.session, GUARD_WINDOW)
        record_plan(self.session, plan, self.settings, trigger=trigger,
                    recent_deactivations=recent)
        return plan

    def on_changes(self, changes: list[Change]) -> None:
        subjects = list(dict.fromkeys(c.subject for c in changes))
        if len(subjects) > TARGETED_LIMIT:
            self.poll("notify")
            return
        try:
            plan = targeted_plan(self.session, self.directory, subjects, self.settings)
        except LMSUnavailable as exc:
            log.error("LMS unreadable after NOTIFY, nothing planned: %s", exc)
            record_failure(self.session, "notify", str(exc))
            return
        changed_at: dict[str, dt.datetime] = {}
        for change in changes:
            if change.at is not None:
                changed_at.setdefault(change.subject, change.at)
        recent = recent_targeted_deactivations(self.session, GUARD_WINDOW)
        record_plan(self.session, plan, self.settings, trigger="notify", changed_at=changed_at,
                    recent_deactivations=recent)

    def adopt(self) -> int:
        try:
            return adopt_existing(self.session, self.target, self.directory)
        except (TargetError, LMSUnavailable) as exc:
            self.session.rollback()
            log.warning("adoption postponed: %s", exc)
            return 0

    def deliver_all(self, *, max_rounds: int = 1000,
                    stop: threading.Event | None = None) -> DeliveryReport:
        total = DeliveryReport()
        if self.capabilities is None and self.target is not None:
            self._load_capabilities()
        if self.capabilities is None or time.monotonic() >= self._next_detect:
            self.detect_capabilities()
        if self.capabilities is not None:  # actions planned since for a switched-off feature
            total.unsupported += settle_switched_off(self.session, self.capabilities)
            self.session.commit()
        for _ in range(max_rounds):
            if stop is not None and stop.is_set():  # SIGTERM: leave between batches
                break
            report = deliver_batch(self.session, self.target, self.settings,
                                   capabilities=self.capabilities)
            total.add(report)
            if report.blocked or report.touched == 0:
                break
        return total

    def apply_once(self) -> tuple[Plan | None, int, DeliveryReport]:
        """Adopt, plan once, deliver what is ready; needs the delivery lock."""
        if not self.lock.try_acquire():
            raise RuntimeError("another worker holds the delivery lock: it delivers; nothing "
                               "was done here")
        try:
            adopted = self.adopt()
            plan = self.poll("manual")
            return plan, adopted, self.deliver_all()
        finally:
            self.lock.release()

    # -- the long-running loop -------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        if self.target is None:
            log.warning("%s: provisioning runs plan-only", self.settings.plan_only_reason)
        else:
            try:
                self.detect_capabilities()
            except SQLAlchemyError as exc:
                self.session.rollback()
                log.error("bridge database error storing Zulip's capabilities: %s",
                          type(exc).__name__)
        while not stop.is_set():
            try:
                self._step(stop)
            except SQLAlchemyError as exc:
                self.session.rollback()
                log.error("bridge database error in the provisioning worker: %s",
                          type(exc).__name__)
                stop.wait(min(self.settings.interval, 5.0))
            except Exception:  # noqa: BLE001 - keep the worker alive; the outbox keeps the work
                self.session.rollback()
                log.exception("unexpected error in the provisioning worker; retrying")
                stop.wait(min(self.settings.interval, 5.0))
        if self.listener is not None:
            self.listener.close()
        self.lock.release()
        LEADER.set(0)

    def _step(self, stop: threading.Event) -> None:
        if self.target is None:
            try:
                plan = snapshot_plan(self.session, self.directory, self.settings)
                record_plan_only(self.session, plan, self.settings.plan_only_reason)
                summary = (plan.people_seen, plan.counts())
                log.log(logging.INFO if summary != self._last_summary else logging.DEBUG,
                        "plan-only: %d people read, %d actions would be planned %s",
                        plan.people_seen, len(plan.actions), plan.counts())
                self._last_summary = summary
            except LMSUnavailable as exc:
                log.error("plan-only: LMS unreadable: %s", exc)
            stop.wait(self.settings.interval)
            return
        if not self.lock.held or not self.lock.alive():
            if not self.lock.try_acquire():
                LEADER.set(0)
                stop.wait(min(self.settings.interval, 2.0))  # stand by
                return
            LEADER.set(1)
            log.info("this worker now delivers (delivery lock %s)", self.settings.lock_key)
            self._next_poll = self._next_adopt = 0.0
        now = time.monotonic()
        if self.settings.notify and self.listener is None:
            self.listener = LmsListener(self.directory.engine, self.settings.notify_channel)
        if self.listener is not None and not self.listener.connected and now >= self._next_listen:
            self._next_listen = now + 30.0
            self.listener.connect()
        if now >= self._next_adopt:
            self._next_adopt = now + self.settings.adopt_interval
            self.adopt()
        if now >= self._next_poll:
            self._next_poll = now + self.settings.interval
            self.poll()
        report = self.deliver_all(max_rounds=10, stop=stop)
        if report.touched and not report.blocked:
            return
        timeout = max(0.0, min(self._next_poll - time.monotonic(), 1.0))
        if self.listener is not None and self.listener.connected:
            changes = self.listener.wait(timeout)
            if changes:
                self.on_changes(changes)
        else:
            stop.wait(timeout)
