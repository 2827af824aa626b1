"""ID tokens the bridge issued, presented back to it as ``id_token_hint``.

OIDC Core §3.1.2.1 (authorization request) and RP-Initiated Logout 1.0 §2 (logout request):
the bridge must verify that it was the issuer. One check for both: the signature with a key it
publishes (current, staged or recently retired, so the age of an accepted hint is bounded by
the key grace period), RS256 only, ``iss`` equal to the issuer, a subject present. ``exp`` is
not enforced: a hint identifies a person, it grants nothing (RP-Initiated Logout §2: "SHOULD
accept ID Tokens ... even when the exp time has passed").
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from flask import current_app
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..keys import get_keystore


def decode_id_token_hint(hint: str) -> dict:
    """The claims of ``hint``; raises :class:`InvalidRequestError` unless the bridge signed it."""
    try:
        token = jwt.decode(hint, KeySet.import_key_set(get_keystore().jwks()),
                           algorithms=["RS256"])
    except (JoseError, ValueError) as error:
        raise InvalidRequestError("The id_token_hint is not an ID token of this bridge.") \
            from error
    claims = dict(token.claims)
    if claims.get("iss") != current_app.config["IDP"].issuer or \
            not isinstance(claims.get("sub"), str):
        raise InvalidRequestError("The id_token_hint is not an ID token of this bridge.")
    return claims


def hint_audience(claims: dict) -> list[str]:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
