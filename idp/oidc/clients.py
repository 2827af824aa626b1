"""Registering, listing and removing OIDC clients (the admin side of RFC 7591 metadata).

Redirect URIs are stored exactly and matched exactly; they must be absolute https URLs (http only
for loopback hosts, RFC 8252 §7.3) without fragment. Public clients get no secret and must use
PKCE; only confidential clients may use client credentials.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import delete, or_, select

from .. import clock
from ..audit import record
from ..extensions import db
from .credentials import hash_client_secret, new_client_id, new_client_secret
from .models import OIDCAuthorizationCode, OIDCClient, OIDCToken

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
DEFAULT_USER_SCOPES = ("openid", "profile", "email")


class ClientError(ValueError):
    """A client registration that cannot be accepted; the message says what to fix."""


@dataclass(frozen=True)
class NewClient:
    client: OIDCClient
    secret: str | None


def check_redirect_uri(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ClientError(f"redirect URI {uri!r} must be an absolute https URL")
    if parts.fragment or "#" in uri:
        raise ClientError(f"redirect URI {uri!r} must not have a fragment")
    if parts.username or parts.password:
        raise ClientError(f"redirect URI {uri!r} must not carry credentials")
    if any(ch.isspace() or ord(ch) > 126 or ch in '"\\' for ch in uri) or len(uri) > 1000:
        raise ClientError(f"redirect URI {uri!r} has characters that are not allowed")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ClientError(f"redirect URI {uri!r} must use https (http only for localhost)")
    return uri


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_client(*, name: str, redirect_uris: list[str], public: bool = False,
                  trusted: bool = False, scopes: list[str] | None = None,
                  grant_types: list[str] | None = None,
                  post_logout_redirect_uris: list[str] | None = None,
                  resource_server: bool = False) -> NewClient:
    """Register a client; returns it with its secret (shown once, stored only as a hash)."""
    name = name.strip()
    if not name or len(name) > 120:
        raise ClientError("the name must be 1 to 120 characters")
    if db.session.execute(select(OIDCClient).where(OIDCClient.name == name)).first():
        raise ClientError(f"a client named {name!r} exists already")
    grants = list(dict.fromkeys(grant_types or ["authorization_code", "refresh_token"]))
    for grant in grants:
        if grant not in GRANT_TYPES:
            raise ClientError(f"unknown grant {grant!r}: use {', '.join(GRANT_TYPES)}")
    if public and "client_credentials" in grants:
        raise ClientError("a public client cannot use client_credentials (it has no secret)")
    if public and resource_server:
        raise ClientError("a resource server must be confidential (it authenticates to "
                          "introspect)")
    uses_code = "authorization_code" in grants
    if uses_code and not redirect_uris:
        raise ClientError("the authorization code flow needs at least one --redirect-uri")
    redirect_uris = [check_redirect_uri(u) for u in dict.fromkeys(redirect_uris)]
    post_logout = [check_redirect_uri(u) for u in dict.fromkeys(post_logout_redirect_uris or [])]
    supported = current_app.extensions["oidc"].settings.scopes
    if scopes:
        chosen = list(dict.fromkeys(scopes))
    else:
        chosen = list(DEFAULT_USER_SCOPES) if uses_code else ["lms.context"]
    for scope in chosen:
        if scope not in supported:
            raise ClientError(f"unknown scope {scope!r}: use {', '.join(supported)} "
                              f"(more via IDP_OIDC_EXTRA_SCOPES)")
    secret = None if public else new_client_secret()
    client = OIDCClient(
        client_id=new_client_id(), name=name,
        secret_hash=hash_client_secret(secret) if secret else None, public=public,
        trusted=trusted, resource_server=resource_server, redirect_uris=redirect_uris,
        post_logout_redirect_uris=post_logout, scopes=chosen, grant_types=grants,
        created_at=clock.now())
    db.session.add(client)
    record("oidc_client", "created", client_id=client.client_id, name=name)
    return NewClient(client, secret)


def list_clients() -> list[OIDCClient]:
    return list(db.session.execute(select(OIDCClient).order_by(OIDCClient.name)).scalars())


def find_client(id_or_name: str) -> OIDCClient | None:
    return db.session.execute(select(OIDCClient).where(or_(
        OIDCClient.client_id == id_or_name, OIDCClient.name == id_or_name))).scalars().first()


def remove_client(client: OIDCClient) -> None:
    """Delete the client with its codes and tokens (they stop working at once)."""
    db.session.execute(delete(OIDCToken).where(OIDCToken.client_id == client.client_id))
    db.session.execute(delete(OIDCAuthorizationCode)
                       .where(OIDCAuthorizationCode.client_id == client.client_id))
    record("oidc_client", "removed", client_id=client.client_id, name=client.name)
    db.session.delete(client)
