"""Settings of the OIDC provider, read from environment variables at start.

``IDP_OIDC_ACCESS_TOKEN_LIFETIME`` (seconds, default 3600), ``IDP_OIDC_REFRESH_TOKEN_LIFETIME``
(default 30 days), ``IDP_OIDC_CODE_LIFETIME`` (default 60; RFC 6749 §4.1.2 recommends at most
600), ``IDP_OIDC_EXTRA_SCOPES`` (comma-separated scopes for other LMS-side services, added to
``openid profile email lms.context``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import ConfigError, env_int, env_list
from ..keys import RETIRED_GRACE

BUILTIN_SCOPES = ("openid", "profile", "email", "lms.context", "lms.context.email")
ID_TOKEN_LIFETIME = 3600
_SCOPE_TOKEN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True)
class OIDCSettings:
    access_token_lifetime: int
    refresh_token_lifetime: int
    code_lifetime: int
    scopes: tuple[str, ...]
    id_token_lifetime: int = ID_TOKEN_LIFETIME


def load_oidc_settings(env: Mapping[str, str]) -> OIDCSettings:
    extra = env_list(env, "IDP_OIDC_EXTRA_SCOPES")
    for scope in extra:
        if not _SCOPE_TOKEN.match(scope):
            raise ConfigError(f"IDP_OIDC_EXTRA_SCOPES has {scope!r}: use scope names made of "
                              f"letters, digits and . _ : - (e.g. lms.reports)")
    settings = OIDCSettings(
        access_token_lifetime=env_int(env, "IDP_OIDC_ACCESS_TOKEN_LIFETIME", 3600,
                                      minimum=60, maximum=86400),
        refresh_token_lifetime=env_int(env, "IDP_OIDC_REFRESH_TOKEN_LIFETIME", 30 * 86400,
                                       minimum=300, maximum=365 * 86400),
        code_lifetime=env_int(env, "IDP_OIDC_CODE_LIFETIME", 60, minimum=10, maximum=600),
        scopes=tuple(dict.fromkeys(BUILTIN_SCOPES + extra)),
    )
    if settings.id_token_lifetime >= RETIRED_GRACE:  # keys stay published longer than tokens
        raise ConfigError("ID token lifetime exceeds the key grace period: fix idp/keys.py")
    return settings
