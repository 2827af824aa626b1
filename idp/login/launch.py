"""LMS launch links: the LMS's "Chat" button signs a short-lived token; the bridge verifies it
and opens a session without a second password.

Token (JWT, RFC 7519) signed HS256 with ``IDP_LAUNCH_SECRET``, shared with the LMS:
``iss`` = ``IDP_LAUNCH_ISSUER`` (default ``lms``), ``aud`` = ``IDP_ISSUER``, ``sub`` = the
person's subject id (``student:42``) or LMS username, ``iat``, ``exp`` (at most 60 s after
``iat``), ``jti`` (single use). docs/launch.md shows the LMS side. A link issued no later
than the person's last revocation (:func:`idp.revocation.revoked_at`) is void, even if the LMS
lists them as active again (:func:`issued_after_revocation`).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import NamedTuple

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from .. import clock, revocation
from ..config import Settings
from ..extensions import db
from ..models import UsedLaunchToken

MAX_LIFETIME = 60
CLOCK_SKEW = 5
MAX_TOKEN_CHARS = 4096


class LaunchRefused(Exception):
    """The token is not acceptable; ``reason`` is for logs and the audit trail, the browser
    only ever sees a generic message."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class LaunchClaims(NamedTuple):
    """What a verified launch token says: who (``sub``, a subject id or a username) and when."""

    sub: str
    issued_at: int


def sign_launch_token(settings: Settings, subject: str, *, lifetime: int = MAX_LIFETIME,
                      issued_at: int | None = None) -> str:
    """What the LMS does (also used by ``flask lms launch-link`` and tests)."""
    if settings.launch_secret is None:
        raise LaunchRefused("launch links are disabled: IDP_LAUNCH_SECRET is not set")
    iat = clock.timestamp() if issued_at is None else issued_at
    claims = {"iss": settings.launch_issuer, "aud": settings.issuer, "sub": subject,
              "iat": iat, "exp": iat + lifetime, "jti": secrets.token_urlsafe(18)}
    return jwt.encode({"alg": "HS256", "typ": "JWT"}, claims, OctKey.import_key(
        settings.launch_secret.encode()))


def verify_launch_token(settings: Settings, token: str) -> LaunchClaims:
    """Check signature, algorithm, issuer, audience, lifetime and single use; return ``sub``
    and ``iat``.
    Marks the ``jti`` used in the current transaction (the caller commits)."""
    if settings.launch_secret is None:
        raise LaunchRefused("launch links are disabled")
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise LaunchRefused("malformed token")
    try:
        decoded = jwt.decode(token, OctKey.import_key(settings.launch_secret.encode()),
                             algorithms=["HS256"])
    except (JoseError, ValueError, TypeError, UnicodeDecodeError):
        raise LaunchRefused("bad signature or malformed token") from None
    claims = decoded.claims
    now = clock.timestamp()
    iat, exp, jti, sub = (claims.get(k) for k in ("iat", "exp", "jti", "sub"))
    if claims.get("iss") != settings.launch_issuer:
        raise LaunchRefused("wrong issuer")
    audience = claims.get("aud")
    if audience != settings.issuer and not (isinstance(audience, list)
                                            and settings.issuer in audience):
        raise LaunchRefused("wrong audience")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
        raise LaunchRefused("iat and exp are required integers")
    if exp - iat > MAX_LIFETIME or exp <= iat:
        raise LaunchRefused("lifetime over 60 seconds")
    if iat > now + CLOCK_SKEW:
        raise LaunchRefused("issued in the future")
    if now >= exp + CLOCK_SKEW:
        raise LaunchRefused("expired")
    if not isinstance(jti, str) or not 8 <= len(jti) <= 128:
        raise LaunchRefused("jti missing")
    if not isinstance(sub, str) or not 0 < len(sub) <= 254:
        raise LaunchRefused("sub missing")
    inserted = db.session.execute(
        insert(UsedLaunchToken).values(jti=jti, expires_at=dt.datetime.fromtimestamp(
            exp + CLOCK_SKEW, dt.UTC)).on_conflict_do_nothing()
        .returning(UsedLaunchToken.jti)).scalar()
    if inserted is None:
        raise LaunchRefused("replayed token")
    return LaunchClaims(sub, iat)


def issued_after_revocation(claims: LaunchClaims, subject: str) -> bool:
    """Revocation ends launch links (issue #11 item 5): a link whose ``iat`` is not after the
    person's last revocation is void, however the LMS answers now (a reactivation race, a
    cached liveness answer). ``iat`` has whole seconds, so a link issued in the second of the
    revocation is void too."""
    revoked = revocation.revoked_at(db.session, subject)
    return revoked is None or claims.issued_at > revoked.timestamp()


def prune_used_tokens() -> int:
    result = db.session.execute(delete(UsedLaunchToken).where(
        UsedLaunchToken.expires_at < clock.now()))
    return result.rowcount or 0
