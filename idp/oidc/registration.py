"""OAuth 2.0 Dynamic Client Registration (RFC 7591) for public clients such as MCP agents,
and the authorization-server metadata (RFC 8414) that advertises it.

Safe limits (MCP authorization spec, "Dynamic Client Registration"; RFC 7591 §5): only public
clients (``token_endpoint_auth_method`` ``none``, PKCE S256 enforced by the code grant), only
the code and refresh grants, redirect URIs exact https URLs or http on a loopback host (RFC 8252
§7.3), scopes from a short allow-list, a cap per client address per hour, and never trusted (the
person always sees the consent page). A feature package switches registration on with
:func:`enable_registration`; ``approval`` mode registers clients that cannot authorize until
``flask agents approve-client`` (or :func:`approve`) lets them.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, request, url_for
from sqlalchemy import DateTime, ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, mapped_column

from .. import clock
from ..audit import record
from ..extensions import csrf, db
from ..net import client_ip
from .clients import ClientError, create_client
from .server import forget_clients
from .views import _json, discovery

bp = Blueprint("oauth_registration", __name__)
csrf.exempt(bp)

GRANTS = ("authorization_code", "refresh_token")
MAX_REDIRECT_URIS = 5
MAX_BODY_BYTES = 8 * 1024
MAX_NAME_CHARS = 80


@dataclass(frozen=True)
class RegistrationPolicy:
    mode: str                       # "open" or "approval"
    per_hour: int                   # registrations per client address per hour
    scopes: tuple[str, ...]         # what a registered client may ask for
    default_scope: str


class OAuthClientRegistration(db.Model):
    """A dynamically registered client: from where, when, and whether staff approved it."""

    __tablename__ = "oauth_client_registrations"

    client_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("oidc_clients.client_id", ondelete="CASCADE"), primary_key=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    approved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True),
                                                            nullable=True)


def enable_registration(app, policy: RegistrationPolicy) -> None:
    app.extensions["oauth_registration"] = policy


def _policy() -> RegistrationPolicy | None:
    return current_app.extensions.get("oauth_registration")


def _error(error: str, description: str, status: int = 400, headers: dict | None = None):
    """RFC 7591 §3.2.2 error response."""
    return _json({"error": error, "error_description": description}, status, headers)


class MetadataProblem(ValueError):
    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error


def _strings(metadata: dict, key: str, default: list[str]) -> list[str]:
    value = metadata.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MetadataProblem("invalid_client_metadata", f"{key} must be a list of strings.")
    return value


def parse_metadata(metadata: object, policy: RegistrationPolicy) -> dict:
    """RFC 7591 §2 client metadata → what :func:`create_client` needs. Raises
    :class:`MetadataProblem` (§3.2.2 codes) for anything outside the limits."""
    if not isinstance(metadata, dict):
        raise MetadataProblem("invalid_client_metadata", "The body must be a JSON object.")
    uris = _strings(metadata, "redirect_uris", [])
    if not uris or len(uris) > MAX_REDIRECT_URIS:
        raise MetadataProblem("invalid_redirect_uri",
                              f"Send 1 to {MAX_REDIRECT_URIS} redirect_uris.")
    method = metadata.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise MetadataProblem("invalid_client_metadata", "Only public clients may register: "
                                                         "token_endpoint_auth_method none.")
    grants = _strings(metadata, "grant_types", list(GRANTS))
    if "authorization_code" not in grants or set(grants) - set(GRANTS):
        raise MetadataProblem("invalid_client_metadata", "grant_types may be "
                                                         "authorization_code and refresh_token.")
    if _strings(metadata, "response_types", ["code"]) != ["code"]:
        raise MetadataProblem("invalid_client_metadata", "response_types must be [\"code\"].")
    scope = metadata.get("scope", policy.default_scope)
    if not isinstance(scope, str) or len(scope) > 200:
        raise MetadataProblem("invalid_client_metadata", "scope must be a string.")
    scopes = list(dict.fromkeys(scope.split())) or policy.default_scope.split()
    if set(scopes) - set(policy.scopes):
        raise MetadataProblem("invalid_client_metadata",
                              f"scope may contain {' '.join(policy.scopes)}.")
    name = metadata.get("client_name", "MCP client")
    if not isinstance(name, str):
        raise MetadataProblem("invalid_client_metadata", "client_name must be a string.")
    name = "".join(ch for ch in name if ch.isprintable()).strip()[:MAX_NAME_CHARS] \
        or "MCP client"
    return {"name": name, "redirect_uris": uris, "grant_types": list(dict.fromkeys(grants)),
            "scopes": scopes}


def _recent_from(ip: str) -> int:
    since = clock.now() - dt.timedelta(hours=1)
    return db.session.execute(select(func.count()).select_from(OAuthClientRegistration).where(
        OAuthClientRegistration.client_ip == ip,
        OAuthClientRegistration.created_at > since)).scalar_one()


@bp.post("/oauth/register")
def register() -> Response:
    """RFC 7591 §3.1: register a public client; §3.2.1: the client information response."""
    policy = _policy()
    if policy is None:
        return _error("invalid_request", "Dynamic client registration is turned off here; "
                                         "ask the administrators for a client.", 403)
    if (request.content_length or 0) > MAX_BODY_BYTES:
        return _error("invalid_client_metadata", "The request body is too large.", 413)
    ip = client_ip()
    if _recent_from(ip) >= policy.per_hour:
        record("oauth_register", "throttled")
        db.session.commit()
        return _error("invalid_request", "Too many registrations from this address; try "
                                         "again later.", 429, {"Retry-After": "3600"})
    try:
        metadata = parse_metadata(request.get_json(force=True, silent=True), policy)
    except MetadataProblem as problem:
        return _error(problem.error, str(problem))
    display = f"{metadata['name']} [{secrets.token_hex(4)}]"
    try:
        new = create_client(name=display, redirect_uris=metadata["redirect_uris"], public=True,
                            trusted=False, scopes=metadata["scopes"],
                            grant_types=metadata["grant_types"])
    except ClientError as problem:
        db.session.rollback()
        error = "invalid_redirect_uri" if "redirect URI" in str(problem) \
            else "invalid_client_metadata"
        return _error(error, str(problem))
    client = new.client
    now = clock.now()
    approved = now if policy.mode == "open" else None
    if approved is None:
        client.grant_types = []          # held until staff approve (approve() restores them)
    db.session.add(OAuthClientRegistration(client_id=client.client_id, client_ip=ip,
                                           created_at=now, approved_at=approved))
    record("oauth_register", "success" if approved else "pending",
           client_id=client.client_id, name=display)
    db.session.commit()
    body = {"client_id": client.client_id, "client_id_issued_at": int(now.timestamp()),
            "client_name": display, "redirect_uris": metadata["redirect_uris"],
            "grant_types": metadata["grant_types"], "response_types": ["code"],
            "token_endpoint_auth_method": "none", "scope": " ".join(metadata["scopes"])}
    if approved is None:
        body["approval"] = "pending: the administrators must approve this client before use"
    return _json(body, 201)


def approve(client_id: str) -> bool:
    """Let a registration held in ``approval`` mode authorize (the caller commits)."""
    from .models import OIDCClient

    row = db.session.get(OAuthClientRegistration, client_id)
    client = db.session.get(OIDCClient, client_id)
    if row is None or client is None:
        return False
    row.approved_at = row.approved_at or clock.now()
    client.grant_types = list(GRANTS)
    record("oauth_register", "approved", client_id=client_id)
    forget_clients()
    return True


@bp.get("/.well-known/oauth-authorization-server")
def authorization_server_metadata() -> Response:
    """RFC 8414 §3: the OIDC discovery document plus the registration endpoint (when open)
    and the PKCE and resource-indicator facts MCP clients look for."""
    document = json.loads(discovery().get_data())
    if _policy() is not None:
        document["registration_endpoint"] = document["issuer"] + url_for(
            "oauth_registration.register")
    document["code_challenge_methods_supported"] = ["S256"]
    response = _json(document, 200)
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def prune_registrations(unused_days: int) -> int:
    """Remove dynamically registered clients created more than ``unused_days`` ago that hold
    no token any more (abandoned agents; their codes and registration rows go with them)."""
    from .clients import remove_client
    from .models import OIDCClient, OIDCToken

    horizon = clock.now() - dt.timedelta(days=unused_days)
    stale = db.session.execute(
        select(OIDCClient).join(OAuthClientRegistration,
                                OAuthClientRegistration.client_id == OIDCClient.client_id)
        .where(OAuthClientRegistration.created_at < horizon,
               ~select(OIDCToken.id).where(OIDCToken.client_id == OIDCClient.client_id)
               .exists())).scalars().all()
    for client in stale:
        remove_client(client)
    if stale:
        forget_clients()
    return len(stale)
