"""Provisioning tables: plan runs, and the ledger of managed Zulip accounts, which provisioning
alone writes but which lives in the foundation (:mod:`idp.zulip_accounts`) because nudges and
the mentor pages read it too. The actions wait in the generic outbox (:mod:`idp.outbox`) as
``provision.<action>`` messages. Plan, ledger changes and outbox rows are written in one transaction
(transactional outbox), so a crash never loses or doubles an action.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .. import outbox  # noqa: F401 - the outbox tables are this package's too
from ..extensions import db
from ..zulip_accounts import LedgerAccount

__all__ = ["LedgerAccount", "ProvisionRun"]

UTCDateTime = DateTime(timezone=True)


class ProvisionRun(db.Model):
    """One plan: what changed in the LMS and what the bridge decided to do about it."""

    __tablename__ = "provision_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    trigger: Mapped[str] = mapped_column(String(16))  # poll | notify | login | manual
    # applied | held | approved | superseded | refused | failed | empty
    status: Mapped[str] = mapped_column(String(16), index=True)
    people_seen: Mapped[int] = mapped_column(Integer, default=0)
    managed: Mapped[int] = mapped_column(Integer, default=0)
    deactivations: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict] = mapped_column(JSONB, default=dict)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
