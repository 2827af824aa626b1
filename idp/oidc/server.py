"""The Authlib authorization server of the bridge, wired to its tables and keys."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from cachetools import TTLCache
from flask import Flask, current_app
from sqlalchemy import text

from ..extensions import db
from .credentials import new_token
from .endpoints import BearerProtector, RPInitiatedLogout, TokenIntrospection, TokenRevocation
from .endpoints import UserInfo as UserInfoEndpoint
from .grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    OpenIDCode,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from .models import OIDCClient
from .resource_indicators import ResourceIndicator
from .settings import OIDCSettings
from .tokens import new_family_id, store_token

MAX_CLIENT_ID_CHARS = 64


CLIENT_CACHE_SECONDS = 5


@dataclass
class OIDCState:
    """``app.extensions["oidc"]``."""

    settings: OIDCSettings
    server: AuthorizationServer
    client_cache: TTLCache = field(
        default_factory=lambda: TTLCache(maxsize=1024, ttl=CLIENT_CACHE_SECONDS))
    client_lock: threading.Lock = field(default_factory=threading.Lock)


_CLIENT = text("""
    SELECT client_id, name, secret_hash, public, trusted, resource_server, redirect_uris,
           post_logout_redirect_uris, scopes, grant_types, created_at
      FROM oidc_clients WHERE client_id = :client_id""")


def query_client(client_id: str | None) -> OIDCClient | None:
    """The registered client, as a detached read-only object, cached per process for
    ``CLIENT_CACHE_SECONDS`` (every token request asks). A client removed meanwhile still gets
    no token: the token INSERT only succeeds while its client row exists."""
    if not client_id or len(client_id) > MAX_CLIENT_ID_CHARS:
        return None
    state = current_app.extensions["oidc"]
    with state.client_lock:
        client = state.client_cache.get(client_id)
    if client is not None:
        return client
    row = db.session.connection().execute(_CLIENT, {"client_id": client_id}).mappings().first()
    if row is None:
        return None
    client = OIDCClient(**row)
    with state.client_lock:
        state.client_cache[client_id] = client
    return client


def forget_clients() -> None:
    """Drop this process's cached clients (after add/remove in the same process)."""
    state = current_app.extensions["oidc"]
    with state.client_lock:
        state.client_cache.clear()


def save_token(token: dict, request) -> None:
    """Store a token response (RFC 6749 §5.1): the family is the code's, the refreshed
    token's, or a new one for client credentials."""
    code = request.authorization_code
    previous = request.refresh_token
    if code is not None:
        family, auth_time, claims = code.code_hash, code.auth_time, code.claims
    elif previous is not None:
        family, auth_time, claims = previous.family_id, previous.auth_time, previous.claims
    else:
        family, auth_time, claims = new_family_id(), None, None
    user = request.user
    store_token(token, client_id=request.client.client_id,
                subject=user.subject if user is not None else None, family_id=family,
                auth_time=auth_time, claims=claims,
                on_its_own=code is None and previous is None, rotates=previous)


class BridgeAuthorizationServer(AuthorizationServer):
    def validate_requested_scope(self, scope) -> None:
        """OIDC Core §3.1.2.1: "Scope values used that are not understood by an implementation
        SHOULD be ignored" (RFC 6749 §3.3 lets the server grant less than asked). Each grant
        keeps what the client may hold (:meth:`OIDCClient.get_allowed_scope`, the client
        credentials grant) and answers ``invalid_scope`` only when nothing is left; the token
        response's ``scope`` says what was granted."""


def build_server(app: Flask, settings: OIDCSettings) -> AuthorizationServer:
    server = BridgeAuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.scopes_supported = list(settings.scopes)
    lifetime = settings.access_token_lifetime
    server.register_token_generator("default", BearerTokenGenerator(
        access_token_generator=lambda **_: new_token(32),
        refresh_token_generator=lambda **_: new_token(48),
        expires_generator=lambda client, grant_type: lifetime))
    server.register_grant(AuthorizationCodeGrant,
                          [S256CodeChallenge(required=True), OpenIDCode(require_nonce=False),
                           ResourceIndicator()])
    server.register_grant(RefreshTokenGrant, [ResourceIndicator()])
    server.register_grant(ClientCredentialsGrant, [ResourceIndicator()])
    server.register_endpoint(TokenRevocation)
    server.register_endpoint(TokenIntrospection)
    protector = BearerProtector()
    server.register_endpoint(UserInfoEndpoint(resource_protector=protector))
    server.register_endpoint(RPInitiatedLogout)
    return server


def get_server() -> AuthorizationServer:
    return current_app.extensions["oidc"].server
