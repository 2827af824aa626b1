"""OIDC claims of a Person, by scope (OIDC Core §5.1, §5.4) and by the ``claims`` request
parameter (§5.5); ``acr`` and ``amr`` of the sign-in (§2, RFC 8176).

``openid`` → ``sub``; ``profile`` → ``name``, ``given_name``, ``family_name``,
``preferred_username`` and the LMS claims ``zulip_role``, ``zulip_groups``, ``lms_kind``;
``email`` → ``email``, ``email_verified`` (the LMS is the authority for its addresses).
The ID token and the userinfo response carry the same claims for the same scope; a ``claims``
request adds individual claims to one of them (only claims of a scope the client may hold, and
shown on the consent page as that scope).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from authlib.oauth2.rfc6749 import scope_to_list
from authlib.oidc.core import UserInfo

from ..people import Person

PROFILE_CLAIMS = ("name", "given_name", "family_name", "preferred_username", "zulip_role",
                  "zulip_groups", "lms_kind")
EMAIL_CLAIMS = ("email", "email_verified")
SCOPE_OF_CLAIM = {**{c: "profile" for c in PROFILE_CLAIMS}, **{c: "email" for c in EMAIL_CLAIMS}}
CLAIMS_SUPPORTED = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "acr",
                    "amr", *PROFILE_CLAIMS, *EMAIL_CLAIMS)

# How the person signed in (login_sessions.auth_method) → acr (OIDC Core §2) and amr (RFC 8176
# §2). A password typed into the bridge's form is "pwd". A launch link is a single-use token the
# LMS signed for a person it had authenticated itself: no RFC 8176 method describes it, so it
# gets its own value (RFC 8176 §2 allows values agreed between the parties; documented in
# docs/zulip.md).
ACR_PASSWORD = "urn:lms-bridge:acr:password"
ACR_LAUNCH = "urn:lms-bridge:acr:lms-launch"
ACR_OF_METHOD = {"password": ACR_PASSWORD, "launch": ACR_LAUNCH}
AMR_OF_METHOD = {"password": ("pwd",), "launch": ("lms_launch",)}
ACR_VALUES_SUPPORTED = (ACR_PASSWORD, ACR_LAUNCH)
CLAIMS_MEMBERS = ("userinfo", "id_token")


class ClaimsRequestError(ValueError):
    """A ``claims`` parameter that is not the JSON object of §5.5."""


def acr_for(auth_method: str | None) -> str | None:
    return ACR_OF_METHOD.get(auth_method or "")


def amr_for(auth_method: str | None) -> list[str] | None:
    methods = AMR_OF_METHOD.get(auth_method or "")
    return list(methods) if methods else None


def parse_claims_request(raw: str | None, allowed_scopes: Iterable[str]) -> dict | None:
    """OIDC Core §5.5: ``{"userinfo": {...}, "id_token": {...}}``, each mapping a claim name to
    null or ``{"essential": bool, "value": ..., "values": [...]}``. Returns the request reduced
    to the claims the bridge supports and the client may hold (others are ignored, §5.5: "Claims
    not understood ... SHOULD be ignored"), plus ``acr`` constraints; raises
    :class:`ClaimsRequestError` for anything not of that shape."""
    if raw is None:
        return None
    try:
        request = json.loads(raw)
    except (ValueError, RecursionError):  # deep nesting ("[[[[...") is a RecursionError
        raise ClaimsRequestError("The claims parameter is not JSON.") from None
    if not isinstance(request, dict):
        raise ClaimsRequestError("The claims parameter must be a JSON object.")
    allowed = set(allowed_scopes)
    reduced: dict[str, dict] = {}
    for member in CLAIMS_MEMBERS:
        wanted = request.get(member, {})
        if not isinstance(wanted, dict):
            raise ClaimsRequestError(f"claims.{member} must be a JSON object.")
        kept = {}
        for name, spec in wanted.items():
            if spec is not None and not isinstance(spec, dict):
                raise ClaimsRequestError(f"claims.{member}.{name} must be null or an object.")
            spec = spec or {}
            if not isinstance(spec.get("essential", False), bool) or \
                    not isinstance(spec.get("values", []), list):
                raise ClaimsRequestError(f"claims.{member}.{name} is malformed.")
            if name in ("acr", "sub") or SCOPE_OF_CLAIM.get(name) in allowed:
                kept[name] = spec
        if kept:
            reduced[member] = kept
    return reduced


def implied_scopes(claims_request: dict | None) -> set[str]:
    """The scopes whose claims a claims request asks for (what the consent page must show)."""
    return {SCOPE_OF_CLAIM[name] for member in (claims_request or {}).values()
            for name in member if name in SCOPE_OF_CLAIM}


def requested_names(claims_json: str | None, member: str) -> tuple[str, ...]:
    """The claim names one member (``id_token`` or ``userinfo``) of a stored request names."""
    if not claims_json:
        return ()
    return tuple(json.loads(claims_json).get(member, {}))


def requested_subject(claims_request: dict | None) -> str | None:
    """§5.5.1: ``sub`` requested with a value names the only person a positive answer may be
    about (like ``id_token_hint``)."""
    for member in CLAIMS_MEMBERS:
        value = ((claims_request or {}).get(member, {}).get("sub") or {}).get("value")
        if value is not None:
            return str(value)
    return None


def essential_acr_values(claims_request: dict | None) -> set[str] | None:
    """§5.5.1.1: the acr values required as essential in the ID token, or None."""
    spec = (claims_request or {}).get("id_token", {}).get("acr") or {}
    if not spec.get("essential"):
        return None
    values = spec.get("values") or ([spec["value"]] if "value" in spec else [])
    return {v for v in values if isinstance(v, str)} or None


def person_claims(person: Person, scope: str | None, requested: Iterable[str] = ()) -> UserInfo:
    """The claims ``scope`` (and the individually ``requested`` names) allow about ``person``,
    built from the LMS data read just now."""
    wanted = set(requested)
    scopes = set(scope_to_list(scope) or [])
    claims = UserInfo(sub=person.subject)
    profile = dict(
        name=person.full_name,
        given_name=person.first_name or None,
        family_name=person.last_name or None,
        preferred_username=person.username or None,
        zulip_role=person.zulip_role,
        zulip_groups=list(person.groups),
        lms_kind=person.kind,
    )
    email = dict(email=person.email, email_verified=True) if person.email else {}
    for name, value in {**profile, **email}.items():
        if SCOPE_OF_CLAIM[name] in scopes or name in wanted:
            claims[name] = value
    return UserInfo({k: v for k, v in claims.items() if v is not None})
