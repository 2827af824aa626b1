"""The bridge's own tables for the foundation: login sessions, throttling, launch-token replay
protection and the audit log. Feature packages keep their tables in ``idp/<feature>/models.py``
on the same ``db``; every table is created by the Alembic migrations in ``idp/migrations``
(``flask --app wsgi db upgrade``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from .extensions import db

UTCDateTime = DateTime(timezone=True)


class LoginSession(db.Model):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored, so a
    leaked table cannot be replayed as cookies. Revoking sets ``revoked_at``."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(token) hex
    subject: Mapped[str] = mapped_column(String(64), index=True)
    auth_method: Mapped[str] = mapped_column(String(16))  # "password" | "launch"
    authenticated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)


class LoginThrottle(db.Model):
    """Failed-login counters per key (``account:<login>`` or ``ip:<address>``) in a sliding
    window; ``blocked_until`` is always finite, so nobody can be locked out for good."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    blocked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class UsedLaunchToken(db.Model):
    """``jti`` of every accepted LMS launch token, kept until the token would have expired."""

    __tablename__ = "used_launch_tokens"

    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class AuditEvent(db.Model):
    """Who did what, when, from where. Never a password, token or secret."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    event: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict] = mapped_column(JSONB, default=dict)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_audit_events_subject_at", "subject", "at"),
                      Index("ix_audit_events_at", "at"))
