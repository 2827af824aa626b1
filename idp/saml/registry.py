"""The service-provider registry (bridge database table ``saml_service_providers``).

URLs are stored exactly as given and compared byte for byte: an ACS URL an SP did not
register is never used, whatever the AuthnRequest says (SAML profiles §4.1.4.1). Logout
messages go to the registered SLO URL (the SingleLogoutService Location), LogoutResponses to
its ResponseLocation when the SP named one (SAML metadata §2.2.2).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select

from .. import clock
from ..extensions import db
from .attributes import DEFAULT_PROFILE, PROFILES
from .constants import BINDING_POST, BINDING_REDIRECT
from .models import ServiceProvider
from .signing import SignatureError, load_certificate

SLO_BINDINGS = (BINDING_REDIRECT, BINDING_POST)
"""How the bridge sends an SP its logout messages (SAML bindings §3.4, §3.5)."""


class RegistryError(ValueError):
    """The SP definition is not acceptable; the text names the problem and the fix."""


@dataclass(frozen=True)
class SPDefinition:
    entity_id: str
    acs_urls: list[str]
    slo_url: str | None = None
    slo_binding: str = BINDING_REDIRECT
    slo_response_url: str | None = None  # the SLO service's ResponseLocation, if any
    certificate: str | None = None  # PEM or base64 DER
    want_authn_requests_signed: bool = False
    sign_assertion: bool = True
    sign_response: bool = True
    attribute_profile: str = DEFAULT_PROFILE


def _check_url(what: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment \
            or len(url) > 2048 or any(ch.isspace() for ch in url):
        raise RegistryError(f"{what} {url!r} is not an absolute http(s) URL without a fragment")
    return url


def _check_response_url(slo_url: str | None, response_url: str) -> str:
    """An SLO ResponseLocation (SAML metadata §2.2.2: where the SP takes LogoutResponses,
    instead of its Location): an absolute https URL, compared and used byte for byte."""
    if slo_url is None:
        raise RegistryError("an SLO ResponseLocation needs the SLO Location it belongs to "
                            "(--slo-url, or a SingleLogoutService Location in the metadata)")
    _check_url("SLO ResponseLocation", response_url)
    if urlsplit(response_url).scheme != "https":
        raise RegistryError(f"SLO ResponseLocation {response_url!r} is not an https URL: "
                            "signed logout responses go only over TLS; fix the SP's metadata "
                            "(or --slo-response-url)")
    return response_url


def _certificate_pem(certificate: str) -> str:
    try:
        from cryptography.hazmat.primitives.serialization import Encoding

        return load_certificate(certificate).public_bytes(Encoding.PEM).decode()
    except SignatureError:
        raise RegistryError("the certificate is not a valid X.509 certificate (PEM or "
                            "base64 DER)") from None


CACHE_SECONDS = 5.0
"""How long one process reuses an SP row it read (SSO hot path). Changes made by the CLI in
another process take effect within this time; changes in this process at once."""


@dataclass(frozen=True)
class SPView:
    """An immutable copy of a registry row, safe to keep between requests."""

    entity_id: str
    acs_urls: tuple[str, ...]
    slo_url: str | None
    slo_binding: str
    certificate: str | None
    want_authn_requests_signed: bool
    sign_assertion: bool
    sign_response: bool
    attribute_profile: str
    slo_response_url: str | None = None


_cache: dict[str, tuple[float, SPView | None]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def find_sp(entity_id: str) -> SPView | None:
    """The registered SP as an immutable view, cached for :data:`CACHE_SECONDS`."""
    hit = _cache.get(entity_id)
    now = time.monotonic()
    if hit is not None and hit[0] > now:
        return hit[1]
    row = get_sp(entity_id)
    view = None if row is None else SPView(
        entity_id=row.entity_id, acs_urls=tuple(row.acs_urls), slo_url=row.slo_url,
        slo_binding=row.slo_binding, certificate=row.certificate,
        want_authn_requests_signed=row.want_authn_requests_signed,
        sign_assertion=row.sign_assertion, sign_response=row.sign_response,
        attribute_profile=row.attribute_profile, slo_response_url=row.slo_response_url)
    if entity_id and len(entity_id) <= 1024:
        with _cache_lock:
            if len(_cache) > 1000:
                _cache.clear()
            _cache[entity_id] = (now + CACHE_SECONDS, view)
    return view


def get_sp(entity_id: str) -> ServiceProvider | None:
    if not entity_id or len(entity_id) > 1024:
        return None
    return db.session.execute(select(ServiceProvider).where(
        ServiceProvider.entity_id == entity_id)).scalar_one_or_none()


def list_sps() -> list[ServiceProvider]:
    return list(db.session.execute(select(ServiceProvider).order_by(ServiceProvider.id))
                .scalars())


def first_sp() -> ServiceProvider | None:
    return db.session.execute(select(ServiceProvider).order_by(ServiceProvider.id)
                              .limit(1)).scalar_one_or_none()


def save_sp(definition: SPDefinition, *, replace: bool = False) -> ServiceProvider:
    """Add (or with ``replace`` update) an SP; the caller commits."""
    entity_id = definition.entity_id.strip()
    if not entity_id or len(entity_id) > 1024 or any(ch.isspace() for ch in entity_id):
        raise RegistryError("the entity id must be a non-empty URI without spaces")
    if not definition.acs_urls:
        raise RegistryError("give at least one ACS URL (--acs-url)")
    acs_urls = [_check_url("ACS URL", u) for u in dict.fromkeys(definition.acs_urls)]
    slo_url = _check_url("SLO URL", definition.slo_url) if definition.slo_url else None
    slo_response_url = None if definition.slo_response_url is None else \
        _check_response_url(slo_url, definition.slo_response_url)
    if definition.slo_binding not in SLO_BINDINGS:
        raise RegistryError(f"unsupported Single Logout binding {definition.slo_binding!r}: "
                            "use HTTP-Redirect or HTTP-POST")
    if definition.attribute_profile not in PROFILES:
        raise RegistryError(f"unknown attribute profile {definition.attribute_profile!r}: "
                            f"use one of {', '.join(PROFILES)}")
    if not (definition.sign_assertion or definition.sign_response):
        raise RegistryError("sign the assertion, the response or both: an unsigned response "
                            "is always rejected")
    certificate = _certificate_pem(definition.certificate) if definition.certificate else None
    if definition.want_authn_requests_signed and certificate is None:
        raise RegistryError("signed AuthnRequests need the SP's certificate (--cert)")
    row = get_sp(entity_id)
    if row is not None and not replace:
        raise RegistryError(f"the SP {entity_id!r} is already registered: remove it first "
                            "or use --replace")
    if row is None:
        row = ServiceProvider(entity_id=entity_id, created_at=clock.now())
        db.session.add(row)
    row.acs_urls = acs_urls
    row.slo_url = slo_url
    row.slo_binding = definition.slo_binding
    row.slo_response_url = slo_response_url
    row.certificate = certificate
    row.want_authn_requests_signed = definition.want_authn_requests_signed
    row.sign_assertion = definition.sign_assertion
    row.sign_response = definition.sign_response
    row.attribute_profile = definition.attribute_profile
    db.session.flush()
    clear_cache()
    return row


def remove_sp(entity_id: str) -> bool:
    row = get_sp(entity_id)
    if row is None:
        return False
    db.session.delete(row)
    clear_cache()
    return True
