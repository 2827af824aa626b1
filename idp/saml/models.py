"""The SAML tables of the bridge: registered service providers, pending AuthnRequests (which
also guard against replayed request IDs), LogoutRequest IDs already seen (replay), the logins
each bridge session made at an SP (for Single Logout), and Single Logout chains in
progress."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .constants import BINDING_REDIRECT

UTCDateTime = DateTime(timezone=True)


class ServiceProvider(db.Model):
    """A SAML service provider (SAML metadata §2.4.4): where assertions may go and how they are
    signed. ACS URLs are matched byte for byte (never a prefix)."""

    __tablename__ = "saml_service_providers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    entity_id: Mapped[str] = mapped_column(String(1024), unique=True)
    acs_urls: Mapped[list] = mapped_column(JSONB)  # ordered; the first is the default
    slo_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    slo_binding: Mapped[str] = mapped_column(String(80), default=BINDING_REDIRECT,
                                             server_default=BINDING_REDIRECT)
    # Where LogoutResponses go when the SP named a ResponseLocation (metadata §2.2.2); its
    # LogoutRequests always go to slo_url (the Location).
    slo_response_url: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    certificate: Mapped[str | None] = mapped_column(Text, nullable=True)  # PEM
    want_authn_requests_signed: Mapped[bool] = mapped_column(Boolean, default=False)
    sign_assertion: Mapped[bool] = mapped_column(Boolean, default=True)
    sign_response: Mapped[bool] = mapped_column(Boolean, default=True)
    attribute_profile: Mapped[str] = mapped_column(String(32), default="zulip")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PendingAuthnRequest(db.Model):
    """An accepted AuthnRequest waiting for the person to sign in. ``(sp_entity_id,
    request_id)`` is unique, so the same request ID cannot be used twice (replay)."""

    __tablename__ = "saml_pending_requests"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(url token)
    sp_entity_id: Mapped[str] = mapped_column(String(1024))
    request_id: Mapped[str] = mapped_column(String(256))
    acs_url: Mapped[str] = mapped_column(String(2048))
    relay_state: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    force_authn: Mapped[bool] = mapped_column(Boolean, default=False)
    is_passive: Mapped[bool] = mapped_column(Boolean, default=False)
    subject_name_id: Mapped[str | None] = mapped_column(String(320), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ux_saml_pending_sp_request", "sp_entity_id", "request_id",
                            unique=True),)


class SeenLogoutRequest(db.Model):
    """A LogoutRequest ID already acted on, kept until the request's IssueInstant window has
    passed, so a replayed LogoutRequest is refused (SAML core §3.7.3; as
    :class:`PendingAuthnRequest` does for AuthnRequests)."""

    __tablename__ = "saml_seen_logout_requests"

    sp_entity_id: Mapped[str] = mapped_column(String(1024), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class SamlLogin(db.Model):
    """One assertion issued to an SP within a bridge session: its SessionIndex and NameID are
    what a LogoutRequest to that SP must carry (SAML core §3.7.1)."""

    __tablename__ = "saml_logins"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    login_session_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("login_sessions.id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(64), index=True)
    sp_entity_id: Mapped[str] = mapped_column(String(1024))
    name_id: Mapped[str] = mapped_column(String(320))
    session_index: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    logout_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    logout_chain: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)


class LogoutChain(db.Model):
    """A Single Logout in progress (SAML profiles §4.4.3.2): the SPs still to visit are the
    session's ``saml_logins`` rows without ``ended_at``; when an SP started it, the bridge
    answers that SP last."""

    __tablename__ = "saml_logout_chains"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256(relay token)
    login_session_id: Mapped[str] = mapped_column(String(64))
    initiator_entity_id: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    initiator_request_id: Mapped[str | None] = mapped_column(String(256), nullable=True)
    initiator_relay_state: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
