"""What `provision status` and /admin/provisioning show: last runs, pending, held, failures,
lag. Read-only queries over the provisioning tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock, outbox
from ..outbox import OutboxMessage
from .actions import CHANNEL
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
        last_read_at=last_read)
