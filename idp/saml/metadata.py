"""SAML metadata (SAML metadata §2.3–2.4): the bridge's IdP EntityDescriptor, and reading a
service provider's EntityDescriptor for the registry.

The IdP metadata lists every key that may sign now or soon: the current key and, during a
rotation, the staged one (keys.py), so SPs can learn a certificate before it is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from ..keys import SigningKey
from .codec import SamlDecodeError, parse_xml
from .constants import BINDING_POST, BINDING_REDIRECT, NAMEID_EMAIL, NS_DS, NS_MD, NS_SAMLP

_M = f"{{{NS_MD}}}"
_D = f"{{{NS_DS}}}"


def build_idp_metadata(*, entity_id: str, sso_url: str, slo_url: str,
                       keys: list[SigningKey]) -> bytes:
    """The IdP EntityDescriptor, valid against saml-schema-metadata-2.0.xsd."""
    root = etree.Element(_M + "EntityDescriptor", {"entityID": entity_id},
                         nsmap={"md": NS_MD, "ds": NS_DS})
    idp = etree.SubElement(root, _M + "IDPSSODescriptor", {
        "WantAuthnRequestsSigned": "false", "protocolSupportEnumeration": NS_SAMLP})
    for key in keys:
        descriptor = etree.SubElement(idp, _M + "KeyDescriptor", {"use": "signing"})
        key_info = etree.SubElement(descriptor, _D + "KeyInfo")
        etree.SubElement(key_info, _D + "KeyName").text = key.kid
        data = etree.SubElement(key_info, _D + "X509Data")
        etree.SubElement(data, _D + "X509Certificate").text = key.certificate_b64
    for binding in (BINDING_REDIRECT, BINDING_POST):
        etree.SubElement(idp, _M + "SingleLogoutService",
                         {"Binding": binding, "Location": slo_url})
    etree.SubElement(idp, _M + "NameIDFormat").text = NAMEID_EMAIL
    for binding in (BINDING_REDIRECT, BINDING_POST):
        etree.SubElement(idp, _M + "SingleSignOnService",
                         {"Binding": binding, "Location": sso_url})
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


class MetadataError(ValueError):
    """The SP metadata cannot be used; the text says why."""


@dataclass(frozen=True)
class SPMetadata:
    entity_id: str
    acs_urls: list[str]
    slo_urls: dict[str, str]  # binding -> Location, as the SP offers them
    certificate_b64: str | None
    want_authn_requests_signed: bool
    want_assertions_signed: bool
    slo_response_urls: dict[str, str] = field(default_factory=dict)  # binding -> ResponseLocation

    def slo_response_url(self, binding: str) -> str | None:
        """The ResponseLocation of the SP's SingleLogoutService with ``binding``, if it names
        one: where LogoutResponses go instead of its Location (metadata §2.2.2)."""
        return self.slo_response_urls.get(binding)

    def slo_endpoint(self, binding: str | None = None) -> tuple[str | None, str]:
        """The SLO URL and binding to register: ``binding`` if given, else HTTP-Redirect when
        offered (what Zulip uses), else HTTP-POST; ``(None, Redirect)`` without SLO."""
        if binding is None:
            binding = next((b for b in (BINDING_REDIRECT, BINDING_POST) if b in self.slo_urls),
                           BINDING_REDIRECT)
        return self.slo_urls.get(binding), binding


def read_sp_metadata(data: bytes) -> SPMetadata:
    """The parts of an SP's EntityDescriptor the registry needs: HTTP-POST ACS URLs (default
    first, then by index), the SLO URL (HTTP-Redirect when offered, else HTTP-POST) and the
    signing certificate."""
    try:
        root = parse_xml(data)
    except SamlDecodeError as exc:
        raise MetadataError(str(exc)) from None
    if root.tag == _M + "EntitiesDescriptor":
        entities = root.findall(_M + "EntityDescriptor")
        if len(entities) != 1:
            raise MetadataError("the metadata must describe exactly one entity")
        root = entities[0]
    if root.tag != _M + "EntityDescriptor" or not root.get("entityID"):
        raise MetadataError("not an md:EntityDescriptor with an entityID")
    sp = root.find(_M + "SPSSODescriptor")
    if sp is None:
        raise MetadataError("the entity has no SPSSODescriptor")
    services = [s for s in sp.findall(_M + "AssertionConsumerService")
                if s.get("Binding") == BINDING_POST and s.get("Location")]
    if not services:
        raise MetadataError("the SP has no AssertionConsumerService with the HTTP-POST binding")

    def order(service: etree._Element) -> tuple[int, int]:
        index = service.get("index", "")
        return (0 if service.get("isDefault") == "true" else 1,
                int(index) if index.isdigit() else 0)

    slo_urls: dict[str, str] = {}
    slo_response_urls: dict[str, str] = {}
    for service in sp.findall(_M + "SingleLogoutService"):
        binding = service.get("Binding")
        if service.get("Location") and binding not in slo_urls:
            slo_urls[binding] = service.get("Location")
            if service.get("ResponseLocation") is not None:
                slo_response_urls[binding] = service.get("ResponseLocation")
    certificate = None
    for descriptor in sp.findall(_M + "KeyDescriptor"):
        if descriptor.get("use") in (None, "signing"):
            element = descriptor.find(f"{_D}KeyInfo/{_D}X509Data/{_D}X509Certificate")
            if element is not None and (element.text or "").strip():
                certificate = "".join(element.text.split())
                break
    return SPMetadata(
        entity_id=root.get("entityID"),
        acs_urls=[s.get("Location") for s in sorted(services, key=order)],
        slo_urls=slo_urls, slo_response_urls=slo_response_urls, certificate_b64=certificate,
        want_authn_requests_signed=sp.get("AuthnRequestsSigned") == "true",
        want_assertions_signed=sp.get("WantAssertionsSigned") == "true")
