"""Nudge tables: runs (one per school day planned), nudges (student messages and mentor
digests, each with a unique idempotency key: rule + person + period), students' opt-outs and
mentors' mutes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db

UTCDateTime = DateTime(timezone=True)

# pending (waiting for the end of quiet hours) → queued (in the outbox) → sent | failed;
# held (the guard) → pending (approved); suppressed (never sent: ``cause`` says why)
PENDING, HELD, QUEUED, SENT, FAILED, SUPPRESSED = (
    "pending", "held", "queued", "sent", "failed", "suppressed")


class NudgeRun(db.Model):
    __tablename__ = "nudge_runs"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    day: Mapped[dt.date] = mapped_column(Date)               # the school day judged
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))          # released | held | approved
    students: Mapped[int] = mapped_column(Integer)           # students assessed
    nudges: Mapped[int] = mapped_column(Integer)             # student nudges to send
    digests: Mapped[int] = mapped_column(Integer)
    suppressed: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Nudge(db.Model):
    __tablename__ = "nudges"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigInteger, index=True)
    kind: Mapped[str] = mapped_column(String(16))            # student | digest
    recipient: Mapped[str] = mapped_column(String(64))       # student:42 | mentor:3
    email: Mapped[str] = mapped_column(String(320))
    rule: Mapped[str] = mapped_column(String(64))            # a catalogue rule, or "digest"
    period: Mapped[str] = mapped_column(String(16))          # 2026-W48 | 2026-11-26
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    cause: Mapped[str | None] = mapped_column(String(32), nullable=True)
    reason: Mapped[str] = mapped_column(Text)                # why, for plan and admin page
    content: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # sends started
    # set (committed on its own) just before each send: a later attempt that finds it set
    # first asks Zulip whether the earlier one arrived
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    zulip_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_nudges_status", "status"),
                      Index("ix_nudges_recipient_created", "recipient", "created_at"))


class NudgePreference(db.Model):
    """A student who turned nudges off on /me."""

    __tablename__ = "nudge_preferences"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    nudges_off: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NudgeMute(db.Model):
    """A mentor muted automatic nudges (and digest lines) for one of their students."""

    __tablename__ = "nudge_mutes"

    mentor_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    student_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
