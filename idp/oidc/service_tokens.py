"""The token endpoint's most frequent request without Authlib's generic machinery: a
client-credentials grant (RFC 6749 §4.4) by a confidential client over HTTP Basic, that
succeeds.

Authlib wraps the request (its full URL rebuilt), picks the grant among all registered, tries
each client authentication method and builds the answer: about a third of the CPU of this
request. :func:`issue_service_token` issues only when every check Authlib would make passes,
with Authlib's own predicates (``is_secure_transport``, ``extract_basic_authorization``, the
client's ``check_client_secret``/``check_endpoint_auth_method``/``check_grant_type``, the
grant's :func:`~.grants.service_scope`) and Authlib's token generator and response; it returns
None for anything else, and the request then goes through Flask and Authlib unchanged. So this
path never refuses anything itself: every error answer is still Authlib's. It is called below
Flask, by :mod:`.service_token_layer`.
"""

from __future__ import annotations

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import Response
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request

from .grants import ClientCredentialsGrant, service_scope
from .server import get_server, query_client
from .tokens import new_family_id, store_token

GRANT = ClientCredentialsGrant.GRANT_TYPE
# Parameters that make Authlib's path take another turn (client_secret_post, RFC 8707).
_OTHER_TURNS = ("client_id", "client_secret", "resource")


def issue_service_token(request: Request, form: MultiDict) -> dict | None:
    """The token of a client-credentials grant that succeeds, stored; or None (let Authlib
    answer). ``request`` is a werkzeug request and ``form`` its parsed body, which passed the
    token endpoint's shape checks (:func:`~.params.check_machine_request`); an app context is
    needed, a request context is not. Database errors propagate."""
    if form.get("grant_type") != GRANT or request.args \
            or any(name in form for name in _OTHER_TURNS):
        return None
    # Authlib's InsecureTransportError check looks at the scheme and host only.
    if not is_secure_transport(f"{request.scheme}://{request.host}/"):
        return None
    client_id, secret = extract_basic_authorization(request.headers)
    if not client_id or not secret:
        return None
    client = query_client(client_id)
    if client is None or not client.check_client_secret(secret) \
            or not client.check_endpoint_auth_method("client_secret_basic", "token") \
            or not client.check_grant_type(GRANT):
        return None
    try:
        scope = service_scope(client, form.get("scope"))
        token = get_server().generate_token(grant_type=GRANT, client=client, user=None,
                                            scope=scope, include_refresh_token=False)
        store_token(token, client_id=client.client_id, subject=None,
                    family_id=new_family_id(), auth_time=None, on_its_own=True)
    except OAuth2Error:
        return None   # refused after all (e.g. the client was removed meanwhile): Authlib
        #               makes the same checks and words the error
    return token


def token_response(token: dict) -> Response:
    """RFC 6749 §5.1: the successful answer, built by Authlib as its own grant builds it."""
    return get_server().handle_response(200, token, ClientCredentialsGrant.TOKEN_RESPONSE_HEADER)
