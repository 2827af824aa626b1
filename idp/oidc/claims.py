"""OIDC claims of a Person, by scope (OIDC Core §5.1, §5.4).

``openid`` → ``sub``; ``profile`` → ``name``, ``given_name``, ``family_name``,
``preferred_username`` and the LMS claims ``zulip_role``, ``zulip_groups``, ``lms_kind``;
``email`` → ``email``, ``email_verified`` (the LMS is the authority for its addresses).
The ID token and the userinfo response carry the same claims for the same scope.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core import UserInfo

from ..people import Person

PROFILE_CLAIMS = ("name", "given_name", "family_name", "preferred_username", "zulip_role",
                  "zulip_groups", "lms_kind")
EMAIL_CLAIMS = ("email", "email_verified")
CLAIMS_SUPPORTED = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash",
                    *PROFILE_CLAIMS, *EMAIL_CLAIMS)


def person_claims(person: Person, scope: str | None) -> UserInfo:
    """The claims ``scope`` allows about ``person``, built from the LMS data read just now."""
    scopes = set(scope_to_list(scope) or [])
    claims = UserInfo(sub=person.subject)
    if "profile" in scopes:
        claims.update(
            name=person.full_name,
            given_name=person.first_name or None,
            family_name=person.last_name or None,
            preferred_username=person.username or None,
            zulip_role=person.zulip_role,
            zulip_groups=list(person.groups),
            lms_kind=person.kind,
        )
    if "email" in scopes and person.email:
        claims.update(email=person.email, email_verified=True)
    return UserInfo({k: v for k, v in claims.items() if v is not None})
