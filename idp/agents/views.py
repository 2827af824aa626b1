"""HTTP face of the MCP server: ``/mcp`` behind OAuth, and its protected-resource metadata.

MCP authorization (spec 2025-06-18 "Authorization"): the bridge is both the resource server
(``/mcp``) and the authorization server. A request without a valid token gets 401 with
``WWW-Authenticate: Bearer resource_metadata="…"`` (RFC 9728 §5.1) pointing to the
protected-resource metadata (RFC 9728 §3), which names the bridge as authorization server
(RFC 8414 metadata at ``/.well-known/oauth-authorization-server``). Tokens must be bound to
this resource (RFC 8707, ``idp.oidc.resource_indicators``) and carry ``lms.context``; a token
issued for another audience is refused here, and an MCP token is refused by the JSON context
API (RFC 8707 §3: one audience per token).
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from ..context.access import SCOPE, Viewer
from ..context.audit import record_read
from ..extensions import csrf
from ..lms.db import LMSUnavailable
from ..oidc.resource import BearerError, check_access_token
from .answers import EMAIL_SCOPE, AgentCaller
from .mcp_server import calling_as, transport_for

bp = Blueprint("agents_mcp", __name__)
csrf.exempt(bp)

MCP_PATH = "/mcp"
MAX_BODY_BYTES = 256 * 1024   # a JSON-RPC call to these tools is a few hundred bytes
METADATA_PATH = "/.well-known/oauth-protected-resource"


def _issuer() -> str:
    return current_app.config["IDP"].issuer


def mcp_resource() -> str:
    """The resource identifier of the MCP server (RFC 8707 §2, RFC 9728 §1.2)."""
    return _issuer() + MCP_PATH


def _quotable(value: str) -> str:
    return "".join(ch for ch in value if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\')[:200]


def _challenge(status: int, error: str | None, description: str) -> Response:
    """RFC 6750 §3 with RFC 9728 §5.1's ``resource_metadata``."""
    parts = [f'resource_metadata="{_issuer()}{METADATA_PATH}{MCP_PATH}"', f'scope="{SCOPE}"']
    if error:
        parts += [f'error="{error}"', f'error_description="{_quotable(description)}"']
    response = jsonify({"error": error or "unauthorized", "error_description": description})
    response.status_code = status
    response.headers["WWW-Authenticate"] = "Bearer " + ", ".join(parts)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route(MCP_PATH, methods=["POST"])
def mcp_endpoint() -> Response:
    """Streamable HTTP: authenticate, then let the SDK answer the JSON-RPC message. Only POST:
    a stateless server opens no event stream and has no session to end, so GET and DELETE
    answer 405 (MCP 2025-06-18 "Transports" §2.2.3, §2.5.5)."""
    header = request.headers.get("Authorization")
    if header is None:
        return _challenge(401, None, f"Send an OAuth bearer token for {mcp_resource()} with "
                                     f"scope {SCOPE}.")
    try:
        _row, grant, person = check_access_token(header, SCOPE, audience=mcp_resource())
    except BearerError as refused:
        record_read("mcp", "mcp", "refused", None, None, reason=refused.error)
        return _challenge(refused.status, refused.error, refused.description)
    except LMSUnavailable:
        return _challenge(503, "temporarily_unavailable", "The LMS cannot be reached.")
    if request.content_length is None or request.content_length > MAX_BODY_BYTES:
        response = jsonify({"jsonrpc": "2.0", "id": None, "error": {
            "code": -32600, "message": f"Send a JSON-RPC message of at most {MAX_BODY_BYTES} "
                                       f"bytes with a Content-Length."}})
        response.status_code = 413 if request.content_length else 411
        return response
    caller = AgentCaller(Viewer(person, "token", client_id=grant.client_id), grant.scopes,
                         "mcp")
    transport = transport_for(current_app._get_current_object())
    with calling_as(caller):
        # the tool shares this request's database transaction, as the JSON API's answer does
        # (token lookup, sharing choice, audit row, one commit)
        response = transport(request.environ, request.get_data())
    response.headers["Cache-Control"] = "no-store"
    return response


def protected_resource_metadata() -> Response:
    """RFC 9728 §3.2."""
    response = jsonify({
        "resource": mcp_resource(),
        "authorization_servers": [_issuer()],
        "scopes_supported": [SCOPE, EMAIL_SCOPE],
        "bearer_methods_supported": ["header"],
        "resource_name": "LMS academic context (MCP)",
        "resource_documentation": _issuer() + "/api/v1/openapi.json",
    })
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


bp.add_url_rule(METADATA_PATH + MCP_PATH, "resource_metadata", protected_resource_metadata)
bp.add_url_rule(METADATA_PATH, "resource_metadata_root", protected_resource_metadata)
