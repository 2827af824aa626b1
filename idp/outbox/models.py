"""Outbox tables: one row per message to deliver, one row per channel (its breaker and what the
peer at the other end supports)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Index, Integer, SmallInteger, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

UTCDateTime = DateTime(timezone=True)


class OutboxMessage(db.Model):
    """One message for a peer. Delivered by priority then ``id``; within one ``ordering_key``
    a message waits for every older pending message of equal or more urgent priority."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(48))
    ordering_key: Mapped[str] = mapped_column(String(128))
    priority: Mapped[int] = mapped_column(SmallInteger)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    batch_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    payload: Mapped[dict] = mapped_column(JSONB, default=dict)
    # pending | held | done | failed | unsupported | cancelled
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # the event behind it
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_outbox_messages_ready", "channel", "priority", "id",
              postgresql_where=db.text("status = 'pending'")),
        Index("ix_outbox_messages_key", "channel", "ordering_key", "id",
              postgresql_where=db.text("status = 'pending'")),
        Index("ix_outbox_messages_status", "status", "id"),
    )

    # provisioning reads these under their domain names
    @property
    def subject(self) -> str:
        return self.ordering_key

    @property
    def action(self) -> str:
        return self.kind.rsplit(".", 1)[-1]


class OutboxChannel(db.Model):
    """The state of one channel (one peer): breaker, pause (Retry-After), last error, and what
    the peer supports (``capabilities``, written by the package that detects them)."""

    __tablename__ = "outbox_channels"

    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    breaker: Mapped[str] = mapped_column(String(16), default="closed")
    paused_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    capabilities: Mapped[dict] = mapped_column(JSONB, default=dict)
    checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
