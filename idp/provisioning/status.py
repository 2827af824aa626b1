"""What `provision status` and /admin/provisioning show: last runs, pending, held, failures,
lag. Read-only queries over the provisioning tables."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock
from .models import LedgerAccount, OutboxAction, ProvisionRun


@dataclass
class StatusReport:
    runs: list[ProvisionRun]
    held: list[ProvisionRun]
    pending: int
    retrying: int
    failures: list[OutboxAction]
    managed: int
    managed_active: int
    oldest_pending_age: float | None  # seconds
    last_delivered: OutboxAction | None
    last_read_at: dt.datetime | None

    @property
    def last_lag(self) -> float | None:
        action = self.last_delivered
        if action is None or action.delivered_at is None:
            return None
        return (action.delivered_at - action.changed_at).total_seconds()


def status_report(session: Session, *, runs: int = 15, failures: int = 20) -> StatusReport:
    pending = session.scalar(select(func.count()).select_from(OutboxAction)
                             .where(OutboxAction.status == "pending")) or 0
    retrying = session.scalar(select(func.count()).select_from(OutboxAction)
                              .where(OutboxAction.status == "pending",
                                     OutboxAction.attempts > 0)) or 0
    oldest = session.scalar(select(func.min(OutboxAction.changed_at))
                            .where(OutboxAction.status == "pending"))
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
        failures=list(session.scalars(select(OutboxAction)
                                      .where(OutboxAction.status == "failed")
                                      .order_by(OutboxAction.id.desc()).limit(failures))),
        managed=managed, managed_active=active,
        oldest_pending_age=(clock.now() - oldest).total_seconds() if oldest else None,
        last_delivered=session.scalars(select(OutboxAction)
                                       .where(OutboxAction.status == "done")
                                       .order_by(OutboxAction.delivered_at.desc())
                                       .limit(1)).first(),
        last_read_at=last_read)
