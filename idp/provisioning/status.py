"""What `provision status` and /admin/provisioning show: last runs, pending, held, failures,
lag. Read-only queries over the provisioning tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock, outbox
from ..outbox import OutboxChannel, OutboxMessage
from .actions import CHANNEL, DEACTIVATE_KINDS
from .capabilities import Capabilities
from .models import LedgerAccount, ProvisionRun

_OURS = (OutboxMessage.channel == CHANNEL, OutboxMessage.kind.startswith("provision."))


@dataclass
class StatusReport:
    runs: list[ProvisionRun]
    held: list[ProvisionRun]
    pending: int
    retrying: int
    failures: list[OutboxMessage]
    managed: int
    managed_active: int
    oldest_pending_age: float | None  # seconds
    last_delivered: OutboxMessage | None
    last_read_at: dt.datetime | None
    pending_deactivations: int = 0
    oldest_deactivation_age: float | None = None  # seconds
    zulip: OutboxChannel | None = None  # breaker, pause, last error, capabilities

    @property
    def capabilities(self) -> Capabilities | None:
        if self.zulip is None or not self.zulip.capabilities:
            return None
        return Capabilities.from_json(self.zulip.capabilities, "")

    @property
    def zulip_reachable(self) -> str:
        """"yes", "no (breaker open)", "no (paused by Retry-After)", "unknown"."""
        channel = self.zulip
        if channel is None:
            return "unknown (nothing sent yet)"
        if channel.paused_until is not None and channel.paused_until > clock.now():
            return f"rate limited until {channel.paused_until:%H:%M:%S} UTC (Retry-After)"
        if channel.breaker == "open":
            return "no: circuit breaker open, Zulip is tried again after the cool-down"
        caps = self.capabilities
        if channel.breaker == "closed" and (caps is None or caps.reachable is not False):
            return "yes"
        return "no: last attempts failed"

    @property
    def last_lag(self) -> float | None:
        action = self.last_delivered
        if action is None or action.delivered_at is None:
            return None
        return (action.delivered_at - action.changed_at).total_seconds()


def status_report(session: Session, *, runs: int = 15, failures: int = 20) -> StatusReport:
    pending = session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.status == outbox.PENDING, *_OURS)) or 0
    retrying = session.scalar(select(func.count()).select_from(OutboxMessage)
                              .where(OutboxMessage.status == outbox.PENDING,
                                     OutboxMessage.attempts > 0, *_OURS)) or 0
    oldest = session.scalar(select(func.min(OutboxMessage.changed_at))
                            .where(OutboxMessage.status == outbox.PENDING, *_OURS))
    managed = session.scalar(select(func.count()).select_from(LedgerAccount)) or 0
    active = session.scalar(select(func.count()).select_from(LedgerAccount)
                            .where(LedgerAccount.active.is_(True))) or 0
    deactivations = session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.status == outbox.PENDING, OutboxMessage.kind.in_(DEACTIVATE_KINDS),
        *_OURS)) or 0
    oldest_deactivation = outbox.oldest_pending(session, CHANNEL, kinds=DEACTIVATE_KINDS)
    last_read = session.scalar(select(func.max(ProvisionRun.started_at))
                               .where(ProvisionRun.status.not_in(("failed",))))
    return StatusReport(
        runs=list(session.scalars(select(ProvisionRun).order_by(ProvisionRun.id.desc())
                                  .limit(runs))),
        held=list(session.scalars(select(ProvisionRun).where(ProvisionRun.status == "held")
                                  .order_by(ProvisionRun.id))),
        pending=pending, retrying=retrying,
        failures=list(session.scalars(select(OutboxMessage)
                                      .where(OutboxMessage.status.in_(
                                          (outbox.FAILED, outbox.UNSUPPORTED)), *_OURS)
                                      .order_by(OutboxMessage.id.desc()).limit(failures))),
        managed=managed, managed_active=active,
        oldest_pending_age=(clock.now() - oldest).total_seconds() if oldest else None,
        last_delivered=session.scalars(select(OutboxMessage)
                                       .where(OutboxMessage.status == outbox.DONE, *_OURS)
                                       .order_by(OutboxMessage.delivered_at.desc())
                                       .limit(1)).first(),
        last_read_at=last_read, pending_deactivations=deactivations,
        oldest_deactivation_age=(clock.now() - oldest_deactivation).total_seconds()
        if oldest_deactivation else None,
        zulip=session.get(OutboxChannel, CHANNEL))
