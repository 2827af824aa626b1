"""Tables of the OpenID Connect provider: registered clients, authorization codes, tokens.

Nothing secret is stored in clear: client secrets as a keyed HMAC-SHA256 (high-entropy secrets
need no slow hash), codes and tokens as SHA-256 digests. Codes are marked used, not deleted, so a
second redemption is recognised (RFC 6749 §4.1.2) and every token of that grant is revoked.
"""

from __future__ import annotations

import datetime as dt

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .credentials import verify_client_secret

UTCDateTime = DateTime(timezone=True)

USER_SCOPES = frozenset({"openid", "profile", "email"})
"""Scopes that describe a person: never granted to a client-credentials token."""


class OIDCClient(db.Model, ClientMixin):
    """A relying party or service (RFC 6749 §2, OIDC Registration §2 metadata)."""

    __tablename__ = "oidc_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    resource_server: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uris: Mapped[list] = mapped_column(JSONB, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(JSONB, default=list)
    scopes: Mapped[list] = mapped_column(JSONB, default=list)
    grant_types: Mapped[list] = mapped_column(JSONB, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    # -- Authlib ClientMixin ------------------------------------------------------------
    @property
    def client_metadata(self) -> dict:
        return {"post_logout_redirect_uris": list(self.post_logout_redirect_uris or [])}

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # OIDC Core §3.1.2.1: redirect_uri is always sent

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """Requested ∩ allowed; an omitted scope means every scope the client may hold. None
        (invalid_scope) when nothing requested is allowed."""
        allowed = list(self.scopes or [])
        if not scope:
            return list_to_scope(allowed)
        granted = [s for s in dict.fromkeys(scope_to_list(scope)) if s in allowed]
        return list_to_scope(granted) if granted else None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Exact string match (OIDC Core §3.1.2.1, RFC 9700 §4.1.3)."""
        return redirect_uri in (self.redirect_uris or [])

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and verify_client_secret(client_secret,
                                                                     self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in (self.grant_types or [])

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in (self.grant_types or [])


class OIDCAuthorizationCode(db.Model):
    """An issued authorization code (RFC 6749 §4.1.2), keyed by the SHA-256 of the code."""

    __tablename__ = "oidc_authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("oidc_clients.client_id", ondelete="CASCADE"), index=True)
    subject: Mapped[str] = mapped_column(String(64), index=True)
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    nonce: Mapped[str | None] = mapped_column(Text, nullable=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    code_challenge: Mapped[str | None] = mapped_column(String(128), nullable=True)
    code_challenge_method: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claims: Mapped[str | None] = mapped_column(Text, nullable=True)  # OIDC Core §5.5, as JSON
    auth_method: Mapped[str | None] = mapped_column(String(16), nullable=True)  # password|launch

    # -- Authlib AuthorizationCodeMixin (OIDC flavour) -----------------------------------
    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str | None:
        from .claims import acr_for

        return acr_for(self.auth_method)

    def get_amr(self) -> list[str] | None:
        from .claims import amr_for

        return amr_for(self.auth_method)


class OIDCToken(db.Model):
    """One access token and its (optional) refresh token. ``family_id`` ties together every
    token descended from one authorization code, so a replayed code or refresh token revokes the
    whole family (RFC 9700 §4.14.2)."""

    __tablename__ = "oidc_tokens"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("oidc_clients.client_id", ondelete="CASCADE"))
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True)
    scope: Mapped[str] = mapped_column(Text, default="")
    access_token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    refresh_token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    auth_time: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    issued_at: Mapped[int] = mapped_column(BigInteger)
    expires_in: Mapped[int] = mapped_column(Integer)
    refresh_expires_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    refresh_used_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    claims: Mapped[str | None] = mapped_column(Text, nullable=True)  # OIDC Core §5.5, as JSON

    # Partial: a service token (client credentials) has neither a refresh token nor a subject,
    # and its INSERT maintains neither index (migration 0014). Every lookup compares with "=",
    # which implies IS NOT NULL, so the planner uses them.
    __table_args__ = (Index("ix_oidc_tokens_subject", "subject",
                            postgresql_where=text("subject IS NOT NULL")),
                      Index("uq_oidc_tokens_refresh_token_hash", "refresh_token_hash",
                            unique=True,
                            postgresql_where=text("refresh_token_hash IS NOT NULL")),
                      Index("ix_oidc_tokens_client_id", "client_id"))

    @property
    def access_expires_at(self) -> int:
        return self.issued_at + self.expires_in

    # -- Authlib TokenMixin ------------------------------------------------------------
    def check_client(self, client: OIDCClient) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return self.expires_in

    def is_expired(self) -> bool:
        from .. import clock

        return clock.timestamp() >= self.access_expires_at

    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def get_client(self) -> OIDCClient | None:
        return db.session.get(OIDCClient, self.client_id)

    def get_user(self):
        from .. import liveness

        if "person" in self.__dict__:  # checked by the bearer protector in this request
            return self.__dict__["person"]
        return liveness.active_person(self.subject, liveness.Policy.FAIL_CLOSED) \
            if self.subject else None


class OIDCConsent(db.Model):
    """The scopes a person allowed a (non-trusted) client, remembered so the consent page is
    not shown again for the same or fewer scopes and ``prompt=none`` can succeed (OIDC Core
    §3.1.2.4). Deleted when the person revokes it, is deprovisioned, or the client is removed."""

    __tablename__ = "oidc_consents"

    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("oidc_clients.client_id", ondelete="CASCADE"), primary_key=True,
        index=True)
    scopes: Mapped[list] = mapped_column(JSONB, default=list)
    granted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
