"""Provisioning tables: the ledger of managed Zulip accounts and plan runs (the actions wait in
the generic outbox, :mod:`idp.outbox`, as ``provision.<action>`` messages).

The ledger holds only accounts the bridge created or adopted (by exact email match); its
``email``/``full_name``/``role``/``groups``/``active`` are the state the bridge has committed to
(the outbox delivers it). Plan, ledger changes and outbox rows are written in one transaction
(transactional outbox), so a crash never loses or doubles an action.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .. import outbox  # noqa: F401 - the outbox tables are this package's too
from ..extensions import db

UTCDateTime = DateTime(timezone=True)


class LedgerAccount(db.Model):
    """One Zulip account the bridge manages, keyed by the LMS subject (``student:42``)."""

    __tablename__ = "provision_ledger"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    zulip_user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    groups: Mapped[list] = mapped_column(JSONB, default=list)
    active: Mapped[bool] = mapped_column(Boolean)
    origin: Mapped[str] = mapped_column(String(16))  # "created" | "adopted"
    adopted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_provision_ledger_lower_email", db.func.lower(email)),)


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
