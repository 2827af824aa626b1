"""Authlib endpoints besides authorize/token: revocation (RFC 7009), introspection (RFC 7662),
userinfo (OIDC Core §5.3), RP-initiated logout (OIDC RP-Initiated Logout 1.0)."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.consts import default_json_headers
from authlib.integrations.flask_oauth2 import ResourceProtector
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6750 import InsufficientScopeError, InvalidTokenError
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import current_app
from flask import request as flask_request
from joserfc.jwk import KeySet

from .. import liveness
from ..audit import record
from ..extensions import db
from ..keys import get_keystore
from ..login.sessions import close_session, current_session
from .claims import person_claims, requested_names
from .idtoken import decode_id_token_hint
from .models import OIDCToken
from .resource import BearerError, check_access_token
from .tokens import (
    access_token_active,
    find_by_access_token,
    find_by_refresh_token,
    refresh_token_active,
    revoke_family,
    revoke_row,
)


@dataclass
class MatchedToken:
    """A token row and which of its two credentials was presented."""

    row: OIDCToken
    kind: str  # "access_token" | "refresh_token"

    def check_client(self, client) -> bool:
        return self.row.client_id == client.client_id


def _find(token_string: str, hint: str | None) -> MatchedToken | None:
    order = ("refresh_token", "access_token") if hint == "refresh_token" \
        else ("access_token", "refresh_token")
    for kind in order:
        row = find_by_access_token(token_string) if kind == "access_token" \
            else find_by_refresh_token(token_string)
        if row is not None:
            return MatchedToken(row, kind)
    return None


class TokenRevocation(RevocationEndpoint):
    """RFC 7009 §2: a client revokes its own token; a refresh token takes its whole family,
    an access token its row. Unknown tokens answer 200 as the RFC requires."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None):
        return _find(token_string, token_type_hint)

    def revoke_token(self, token: MatchedToken, request) -> None:
        if token.kind == "refresh_token":
            revoke_family(token.row.family_id)
        else:
            revoke_row(token.row)
        record("oidc_revoke", "success", subject=token.row.subject,
               client_id=token.row.client_id, kind=token.kind)


class TokenIntrospection(IntrospectionEndpoint):
    """RFC 7662: only clients registered as resource servers may introspect; anything else,
    and any token no longer usable (expired, revoked, person inactive), is ``active: false``."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None):
        return _find(token_string, token_type_hint)

    def check_permission(self, token: MatchedToken, client, request) -> bool:
        return bool(client.resource_server)

    def create_introspection_payload(self, token: MatchedToken | None) -> dict:
        if token is None:
            return {"active": False}
        row = token.row
        usable = access_token_active(row) if token.kind == "access_token" \
            else refresh_token_active(row)
        if not usable or (row.subject and liveness.active_person(
                row.subject, liveness.Policy.FAIL_CLOSED) is None):
            return {"active": False}
        payload = {"active": True, "client_id": row.client_id, "scope": row.scope,
                   "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
                   "iat": row.issued_at, "iss": current_app.config["IDP"].issuer,
                   "exp": row.access_expires_at if token.kind == "access_token"
                   else row.refresh_expires_at}
        if row.subject:
            payload["sub"] = row.subject
        return payload


def _presented_token() -> str | None:
    """The access token as an ``Authorization`` value, from the header (RFC 6750 §2.1) or a
    form-encoded POST body's ``access_token`` (§2.2). The query (§2.3) is refused: URLs end up
    in logs. §2: "Clients MUST NOT use more than one method to transmit the token in each
    request" - two methods are an ``invalid_request``."""
    header = flask_request.headers.get("Authorization")
    if "access_token" in flask_request.args:
        raise InvalidRequestError("Send the access token in the Authorization header or a "
                                  "form-encoded POST body, never in the query.")
    if flask_request.method != "POST" or flask_request.mimetype != \
            "application/x-www-form-urlencoded" or "access_token" not in flask_request.form:
        return header
    if header:
        raise InvalidRequestError("Send the access token by one method only.")
    values = flask_request.form.getlist("access_token")
    if len(values) != 1:
        raise InvalidRequestError("The access_token parameter is repeated.")
    return "Bearer " + values[0]


class BearerProtector(ResourceProtector):
    """Authlib's resource protector over :func:`check_access_token`, so userinfo and the
    context API refuse exactly the same tokens (RFC 6750 §3)."""

    def validate_request(self, scopes, request, **kwargs):
        required = scopes[0] if scopes else None
        try:
            row, _grant, person = check_access_token(_presented_token(), required)
        except BearerError as error:
            if error.status == 403:
                raise InsufficientScopeError(error.description) from None
            raise InvalidTokenError(error.description, realm="bridge") from None
        row.person = person  # read once; userinfo's get_user() returns it
        return row


class UserInfo(UserInfoEndpoint):
    """OIDC Core §5.3: the same claims as the ID token, for the token's scope and the claims
    requested for userinfo (§5.5), read from the LMS now. Unsigned JSON only."""

    def __call__(self, request):
        token = self.resource_protector.acquire_token("openid")
        claims = person_claims(token.get_user(), token.scope,
                               requested_names(token.claims, "userinfo"))
        return 200, claims, default_json_headers

    def generate_user_info(self, user, scope: str):
        return person_claims(user, scope)

    def get_issuer(self) -> str:
        return current_app.config["IDP"].issuer


class RPInitiatedLogout(EndSessionEndpoint):
    """OIDC RP-Initiated Logout §2-§3: ``id_token_hint`` must be an ID token this bridge
    signed; the browser returns only to a registered ``post_logout_redirect_uri``."""

    def get_server_jwks(self) -> KeySet:
        return KeySet.import_key_set(get_keystore().jwks())

    def get_algorithms(self) -> list[str]:
        return ["RS256"]

    def _validate_id_token_hint(self, id_token_hint: str) -> dict:
        """§2: the bridge must have issued the hint (one check, :mod:`.idtoken`)."""
        return decode_id_token_hint(id_token_hint)

    def end_session(self, end_session_request) -> None:
        row = current_session()
        claims = end_session_request.id_token_claims or {}
        if row is None or claims.get("sub") != row.subject:
            return  # nobody, or somebody else, is signed in here: nothing to end
        close_session()
        record("logout", "success", subject=row.subject, method="oidc_rp",
               client_id=getattr(end_session_request.client, "client_id", None))
        db.session.commit()

