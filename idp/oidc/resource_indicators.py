"""Resource indicators for OAuth 2.0 (RFC 8707): tokens bound to the resource they are for.

A client names the protected resource with ``resource`` at the authorization endpoint
(§2.1) and again at the token endpoint (§2.2). The bridge accepts only resources it serves
(``app.extensions["oauth_resources"]``, filled by feature packages such as agents/ with
``https://<issuer>/mcp``); anything else is ``invalid_target`` (§2). The binding is stored
once per token family (the authorization code's digest, which every refreshed token
inherits), so a refresh cannot move a token to another resource, and a resource server asks
:func:`bound_resource` whether a token is meant for it (RFC 9068 §4 "aud" check, RFC 8707 §3).
"""

from __future__ import annotations

import datetime as dt
import threading
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2 import OAuth2Error
from cachetools import LRUCache
from flask import current_app
from sqlalchemy import DateTime, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from .. import clock
from ..extensions import db
from ..hashing import token_digest

_BINDINGS: LRUCache = LRUCache(maxsize=50000)
_LOCK = threading.Lock()
_UNBOUND = ""


class OAuthResourceBinding(db.Model):
    """The resource (audience) of one token family."""

    __tablename__ = "oauth_resource_bindings"

    family_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    resource: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is invalid, unknown or malformed."""

    error = "invalid_target"


def register_resource(app, uri: str) -> None:
    """Let clients ask for tokens bound to ``uri`` (a feature package serves it)."""
    app.extensions.setdefault("oauth_resources", set()).add(uri)


def served_resources() -> set[str]:
    return current_app.extensions.get("oauth_resources", set())


def canonical_resource(value: str | None) -> str | None:
    """The served resource ``value`` names (one trailing slash tolerated), or None when
    ``value`` is absent. Raises :class:`InvalidTargetError` for anything else (§2: an
    absolute URI without fragment that this server serves)."""
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc or parts.fragment or "#" in value:
        raise InvalidTargetError("The resource must be an absolute URI without a fragment.")
    served = served_resources()
    for candidate in (value, value.rstrip("/")):
        if candidate in served:
            return candidate
    raise InvalidTargetError("This server issues no tokens for that resource.")


def bind(family_id: str, resource: str) -> None:
    """Record the family's resource (the caller commits)."""
    db.session.connection().execute(text(
        "INSERT INTO oauth_resource_bindings (family_id, resource, created_at) "
        "VALUES (:family, :resource, :now) ON CONFLICT (family_id) DO NOTHING"),
        {"family": family_id, "resource": resource, "now": clock.now()})


def bound_resource(family_id: str) -> str | None:
    """The resource a token family is bound to, or None for an unbound (audience-less) one.
    Cached per process: a family's binding is written before its first token and never
    changes."""
    with _LOCK:
        cached = _BINDINGS.get(family_id)
    if cached is not None:
        return cached or None
    row = db.session.connection().execute(text(
        "SELECT resource FROM oauth_resource_bindings WHERE family_id = :family"),
        {"family": family_id}).first()
    value = row[0] if row else _UNBOUND
    with _LOCK:
        _BINDINGS[family_id] = value
    return value or None


def _requested(grant) -> str | None:
    return canonical_resource(grant.request.payload.data.get("resource"))


class ResourceIndicator:
    """Authlib grant extension: checks ``resource`` and binds the issued grant to it."""

    def __call__(self, grant) -> None:
        grant.register_hook("after_validate_authorization_request_payload",
                            self.validate_authorization)
        grant.register_hook("after_authorization_response", self.bind_code)
        grant.register_hook("after_validate_token_request", self.validate_token)
        if grant.GRANT_TYPE == "client_credentials":
            # Authlib runs no hook around this grant's token request: bind while saving.
            grant.save_token = self._binding_save(grant, grant.save_token)

    @staticmethod
    def validate_authorization(grant, *_) -> None:
        """§2.1: the authorization request's resource, remembered for the code."""
        grant.request.resource = _requested(grant)

    @staticmethod
    def bind_code(grant, response) -> None:
        resource = getattr(grant.request, "resource", None)
        location = getattr(response, "headers", {}).get("Location", "") \
            if getattr(response, "status_code", 0) == 302 else ""
        code = parse_qs(urlsplit(location).query).get("code")
        if resource and code:
            bind(token_digest(code[0]), resource)

    @staticmethod
    def validate_token(grant, *_) -> None:
        """§2.2: a resource named at the token endpoint must be the one the grant is bound
        to (no new audience through a code or a refresh token)."""
        requested = _requested(grant)
        code = getattr(grant.request, "authorization_code", None)
        previous = getattr(grant.request, "refresh_token", None)
        family = code.code_hash if code is not None else \
            previous.family_id if previous is not None else None
        if family is not None and requested is not None and requested != bound_resource(family):
            raise InvalidTargetError("The grant was not issued for this resource.")

    @staticmethod
    def _binding_save(grant, save_token):
        """Client credentials (§2.2 without a prior grant): check ``resource`` before the
        token is stored, then bind its new family."""

        def save_and_bind(token: dict) -> None:
            resource = _requested(grant)
            save_token(token)
            if resource is None:
                return
            row = db.session.connection().execute(text(
                "SELECT family_id FROM oidc_tokens WHERE access_token_hash = :hash"),
                {"hash": token_digest(token["access_token"])}).first()
            if row is not None:
                bind(row[0], resource)

        return save_and_bind


def prune_bindings() -> int:
    """Delete bindings older than a day whose family has no token row left and whose code (if
    any) is gone (``flask agents prune``; tokens are pruned by ``flask oidc prune``)."""
    horizon = clock.now() - dt.timedelta(days=1)
    result = db.session.execute(text("""
        DELETE FROM oauth_resource_bindings b
         WHERE b.created_at < :horizon
           AND NOT EXISTS (SELECT 1 FROM oidc_tokens t WHERE t.family_id = b.family_id)
           AND NOT EXISTS (SELECT 1 FROM oidc_authorization_codes c
                            WHERE c.code_hash = b.family_id)"""), {"horizon": horizon})
    with _LOCK:
        _BINDINGS.clear()
    return result.rowcount or 0
