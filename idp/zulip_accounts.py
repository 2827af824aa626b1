"""The Zulip accounts the bridge knows (foundation): the ledger of managed accounts, keyed by
LMS subject, with the Zulip user id and the email as Zulip has them.

Provisioning writes it (:mod:`idp.provisioning`, the only writer: it creates, adopts and keeps
these accounts in step); nudges and the mentor pages read it, through :func:`zulip_user_id` and
:func:`zulip_user_ids`, to address a person the way Zulip does (DESIGN.md: feature packages
meet in the foundation, never sideways), and :func:`dm_narrow_url` links to a conversation.

The ledger holds only accounts the bridge created or adopted (by exact email match); its
``email``/``full_name``/``role``/``groups``/``active`` are the state the bridge has committed to
(the outbox delivers it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from urllib.parse import quote

from sqlalchemy import Boolean, DateTime, Index, String, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, Session, mapped_column

from .extensions import db


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
    adopted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    last_synced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True),
                                                               nullable=True)

    __table_args__ = (Index("ix_provision_ledger_lower_email", db.func.lower(email)),)


def _user_id(raw: str | None) -> int | None:
    """Zulip user ids are positive integers (SCIM ``id`` and REST ``user_id`` alike)."""
    if raw and raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63:
        return int(raw)
    return None


def zulip_user_id(session: Session, subject: str) -> int | None:
    """The Zulip user id of ``subject``'s account, when the ledger knows it; else None."""
    return _user_id(session.scalar(select(LedgerAccount.zulip_user_id)
                                   .where(LedgerAccount.subject == subject)))


def zulip_user_ids(session: Session, subjects: Iterable[str]) -> dict[str, int]:
    """subject → Zulip user id, for those of ``subjects`` the ledger knows (one query)."""
    wanted = list(dict.fromkeys(subjects))
    if not wanted:
        return {}
    rows = session.execute(select(LedgerAccount.subject, LedgerAccount.zulip_user_id)
                           .where(LedgerAccount.subject.in_(wanted)))
    return {subject: uid for subject, raw in rows if (uid := _user_id(raw)) is not None}


# Zulip's slug rule for a user's name (the web app's people.emails_to_slug) and its hash
# component encoding (zerver/lib/url_encoding.py, encode_hash_component).
_SLUG_UNSAFE = re.compile(r'[\s"%/<>`\x00-\x1f\x7f-\x9f]+')
_HASH_REPLACEMENTS = {"%": ".", "(": ".28", ")": ".29", ".": ".2E"}


def dm_narrow_url(zulip_url: str, user_id: int, full_name: str) -> str:
    """The link to one's direct messages with ``user_id`` in Zulip's web app, in Zulip's
    stable form ``<zulip>/#narrow/dm/<user id>-<slug>`` (https://zulip.com/api/zulip-urls):
    Zulip reads the id, the slug (the name) is for people reading the link. Not by email:
    emails change, and Zulip may hide them (``email_address_visibility``), so an email link
    can open nothing. Any name is safe: unsafe runs become ``-`` and the rest is
    percent-encoded with ``.`` for ``%``, as Zulip encodes hash components."""
    slug = _SLUG_UNSAFE.sub("-", full_name).strip("-") or "dm"
    encoded = "".join(_HASH_REPLACEMENTS.get(c, c) for c in quote(slug, safe=""))
    return f"{zulip_url.rstrip('/')}/#narrow/dm/{int(user_id)}-{encoded}"
