"""Authlib grants of the bridge: authorization code (+ PKCE, + OpenID Connect), refresh token
with rotation, client credentials.

RFC 6749 §4.1 (code), §4.4 (client credentials), §6 (refresh); RFC 7636 (PKCE, S256 only);
OIDC Core §3.1 (code flow) and §12.2 (refresh: no new ID token here, the refresh response keeps
the signing cost out of the hot path); RFC 9700 §4.14.2 (refresh rotation and replay detection).
"""

from __future__ import annotations

import datetime as dt

from authlib.oauth2.rfc6749 import grants, list_to_scope, scope_to_list
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import grants as oidc_grants
from flask import current_app
from joserfc.jwk import RSAKey
from sqlalchemy import exists, select

from .. import clock, liveness
from ..audit import record
from ..extensions import db
from ..hashing import token_digest
from ..keys import get_keystore
from .claims import person_claims, requested_names
from .models import USER_SCOPES, OIDCAuthorizationCode
from .tokens import (
    MAX_TOKEN_CHARS,
    PresentedRefreshToken,
    RefreshTokenGone,
    look_up_refresh_token,
    refresh_token_by_digest,
    revoke_family,
)

CLIENT_AUTH = ["client_secret_basic", "client_secret_post", "none"]
_RSA_KEYS: dict[str, RSAKey] = {}


def _oidc():
    return current_app.extensions["oidc"]


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """RFC 6749 §4.1 with single-use codes: a second redemption revokes the grant's tokens."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH

    def save_authorization_code(self, code: str, request) -> None:
        now = clock.now()
        data = request.payload.data
        challenge = data.get("code_challenge")
        db.session.add(OIDCAuthorizationCode(
            code_hash=token_digest(code), client_id=request.client.client_id,
            subject=request.user.subject, redirect_uri=request.payload.redirect_uri,
            scope=request.scope or "", nonce=data.get("nonce") or None,
            auth_time=int(getattr(request, "auth_time", clock.timestamp())),
            code_challenge=challenge or None,
            code_challenge_method=data.get("code_challenge_method") if challenge else None,
            claims=getattr(request, "claims_json", None),
            auth_method=getattr(request, "auth_method", None),
            created_at=now,
            expires_at=now + dt.timedelta(seconds=_oidc().settings.code_lifetime)))

    def query_authorization_code(self, code: str, client) -> OIDCAuthorizationCode | None:
        if len(code) > MAX_TOKEN_CHARS:
            return None
        row = db.session.execute(
            select(OIDCAuthorizationCode)
            .where(OIDCAuthorizationCode.code_hash == token_digest(code))
            .with_for_update()).scalar_one_or_none()
        if row is None or row.client_id != client.client_id:
            return None
        if row.used_at is not None:
            revoked = revoke_family(row.code_hash)
            record("oidc_code_reuse", "revoked", subject=row.subject, client_id=row.client_id,
                   tokens=revoked)
            db.session.commit()
            return None
        if row.expires_at <= clock.now():
            return None
        return row

    def delete_authorization_code(self, authorization_code: OIDCAuthorizationCode) -> None:
        authorization_code.used_at = clock.now()

    def authenticate_user(self, authorization_code: OIDCAuthorizationCode):
        """The person as the LMS has them now: a deactivated person gets no token."""
        return liveness.active_person(authorization_code.subject, liveness.Policy.FAIL_CLOSED)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """RFC 6749 §6 with rotation: each refresh token works once; presenting a spent one again
    revokes the whole family (RFC 9700 §4.14.2). The token is read, the person checked in the
    LMS, and only then spent, in the statement that stores its successor
    (:func:`~.tokens.store_token`): a refusal or an LMS outage spends nothing."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> PresentedRefreshToken | None:
        row = look_up_refresh_token(refresh_token)
        if row is None:
            return None
        if row.spent:
            _replayed(row)
            return None
        return row if row.usable else None

    def authenticate_user(self, refresh_token: PresentedRefreshToken):
        person = liveness.active_person(refresh_token.subject, liveness.Policy.FAIL_CLOSED) \
            if refresh_token.subject else None
        if person is None:
            revoke_family(refresh_token.family_id)
            db.session.commit()
            raise InvalidGrantError("The person is no longer active in the LMS.")
        return person

    def save_token(self, token: dict) -> None:
        try:
            super().save_token(token)
        except RefreshTokenGone:
            # Spent meanwhile by a concurrent request with the same token: that is a second
            # use too, and ends the family like any replay.
            row = refresh_token_by_digest(self.request.refresh_token.digest)
            if row is not None and row.spent:
                _replayed(row)
            raise InvalidGrantError() from None

    def revoke_old_credential(self, refresh_token: PresentedRefreshToken) -> None:
        """Spent by :func:`~.tokens.store_token` in the statement that stored its successor."""


def _replayed(row: PresentedRefreshToken) -> None:
    """RFC 9700 §4.14.2: a spent refresh token presented again revokes its whole family."""
    revoked = revoke_family(row.family_id)
    record("oidc_refresh_reuse", "revoked", subject=row.subject, client_id=row.client_id,
           tokens=revoked)
    db.session.commit()


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4 for services; person scopes (openid, profile, email) are refused."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self) -> None:
        super().validate_token_request()
        self.request.scope = service_scope(self.client, self.request.payload.scope)

    def create_token_response(self):
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


def service_scope(client, requested_scope: str | None) -> str:
    """The scope a client-credentials token gets: what was asked and the client may hold
    (everything it may hold when nothing was asked), never a person scope."""
    requested = scope_to_list(requested_scope) or []
    if set(requested) & USER_SCOPES:
        raise InvalidScopeError("openid, profile and email describe a person: use the "
                                "authorization code flow.")
    allowed = [s for s in client.scopes if s not in USER_SCOPES]
    scope = [s for s in dict.fromkeys(requested) if s in allowed] if requested else allowed
    if not scope:
        raise InvalidScopeError("This client may not request these scopes.")
    return list_to_scope(scope)


class S256CodeChallenge(CodeChallenge):
    """RFC 7636 with S256 only; public clients must use it (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        challenge = data.get("code_challenge")
        if grant.request.client.public and not challenge:
            raise InvalidRequestError("Public clients must send code_challenge with "
                                      "code_challenge_method=S256.")
        if challenge and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class OpenIDCode(oidc_grants.OpenIDCode):
    """OIDC Core §3.1.3.6: the ID token, RS256 with the bridge's current key and its ``kid``."""

    def exists_nonce(self, nonce: str, request) -> bool:
        return bool(db.session.execute(select(exists().where(
            OIDCAuthorizationCode.client_id == request.payload.client_id,
            OIDCAuthorizationCode.nonce == nonce))).scalar())

    def resolve_client_private_key(self, client) -> RSAKey:
        key = get_keystore().current()
        jwk = _RSA_KEYS.get(key.kid)
        if jwk is None:
            jwk = RSAKey.import_key(key.private_pem, {"kid": key.kid, "alg": "RS256"})
            _RSA_KEYS[key.kid] = jwk
        return jwk

    def get_client_algorithm(self, client) -> str:
        return "RS256"

    def get_encode_header(self, client) -> dict:
        return {"alg": "RS256", "typ": "JWT", "kid": get_keystore().current().kid}

    def get_client_claims(self, client) -> dict:
        now = clock.timestamp()
        return {"iss": current_app.config["IDP"].issuer, "aud": client.client_id, "iat": now,
                "exp": now + _oidc().settings.id_token_lifetime}

    def encode_id_token(self, token, request):
        if request.authorization_code is not None:  # this request's objects, not self: the
            request.authorization_code.person = request.user  # extension is shared by threads
        return super().encode_id_token(token, request)

    def get_authorization_code_claims(self, authorization_code: OIDCAuthorizationCode) -> dict:
        """nonce, auth_time, acr, amr, and the claims requested for the ID token (§5.5)."""
        claims = super().get_authorization_code_claims(authorization_code)
        names = requested_names(authorization_code.claims, "id_token")
        if names:
            claims.update(person_claims(authorization_code.person, None, names))
        return claims

    def generate_user_info(self, user, scope: str):
        return person_claims(user, scope)

