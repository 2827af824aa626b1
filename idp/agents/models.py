"""The agents package's table: each student's choice about sharing with AI agents and bots."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db


class AgentSharing(db.Model):
    """A student's explicit choice; no row means the school-wide default
    (``IDP_AGENTS_SHARE_DEFAULT``)."""

    __tablename__ = "agent_sharing"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    shares: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
