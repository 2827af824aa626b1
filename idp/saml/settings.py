"""SAML settings from environment variables (README, "Configuration"), read in init_app."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask import current_app

from ..config import ConfigError, Settings, env_int, env_str

_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$|^$")


@dataclass(frozen=True)
class SamlSettings:
    entity_id: str
    sso_url: str
    slo_url: str
    metadata_url: str
    zulip_subdomain: str
    clock_skew: int


def valid_subdomain(value: str) -> bool:
    """A Zulip realm subdomain ("" is the root realm)."""
    return bool(_SUBDOMAIN.match(value))


def load_saml_settings(env: Mapping[str, str], settings: Settings) -> SamlSettings:
    base = settings.issuer
    entity_id = env_str(env, "IDP_SAML_ENTITY_ID", f"{base}/saml/metadata", fix="")
    if len(entity_id) > 1024 or any(ch.isspace() for ch in entity_id):
        raise ConfigError("IDP_SAML_ENTITY_ID is malformed: use a URI without spaces, "
                          "e.g. https://sso.example.edu/saml/metadata")
    subdomain = env.get("IDP_SAML_ZULIP_SUBDOMAIN", "").strip().lower()
    if not valid_subdomain(subdomain):
        raise ConfigError(f"IDP_SAML_ZULIP_SUBDOMAIN={subdomain!r} is not a realm subdomain: "
                          "use lower-case letters, digits and dashes ('' for the root realm)")
    return SamlSettings(
        entity_id=entity_id, sso_url=f"{base}/saml/sso", slo_url=f"{base}/saml/slo",
        metadata_url=f"{base}/saml/metadata", zulip_subdomain=subdomain,
        clock_skew=env_int(env, "IDP_SAML_CLOCK_SKEW", 180, minimum=0, maximum=600))


def get_saml_settings() -> SamlSettings:
    return current_app.extensions["saml"]
