"""A second, independent SAML service provider for the tests: pysaml2's ``Saml2Client`` (XML
signatures through Debian's ``xmlsec1`` binary), configured from the bridge's published
metadata and registered with the bridge from its own metadata through ``saml add-sp``.

It signs its AuthnRequests and logout messages, wants signed responses and assertions, and
takes Single Logout over the binding it is built with (HTTP-Redirect or HTTP-POST), as
node-saml or Shibboleth SPs that offer SLO over POST only.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from html import unescape
from pathlib import Path

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS

ENTITY_ID = "https://wiki.example.edu/shibboleth"
ACS_URL = "https://wiki.example.edu/saml/acs"
SLO_URL = "https://wiki.example.edu/saml/slo"
XMLSEC1 = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"

_FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.IGNORECASE)
_INPUT = re.compile(r'<input type="hidden" name="(SAMLRequest|SAMLResponse|RelayState)" '
                    r'value="([^"]*)"')


@dataclass(frozen=True)
class Form:
    """An auto-POST form (the bridge's or pysaml2's): where it posts and its SAML fields."""

    action: str
    fields: dict[str, str]

    @property
    def param(self) -> str:
        return "SAMLRequest" if "SAMLRequest" in self.fields else "SAMLResponse"

    @property
    def message(self) -> str:
        return self.fields[self.param]

    @property
    def relay_state(self) -> str | None:
        return self.fields.get("RelayState")


def read_form(html: str) -> Form:
    action = _FORM.search(html)
    assert action, "no form in the page:\n" + html[:800]
    return Form(unescape(action.group(1)),
                {name: unescape(value) for name, value in _INPUT.findall(html)})


def pysaml2_sp(idp_metadata: str, workdir: Path, *, cert_pem: str, key_pem: str,
               slo_binding: str, entity_id: str = ENTITY_ID,
               slo_response_url: str | None = None) -> Saml2Client:
    """The SP, its key pair written to ``workdir`` (pysaml2 and xmlsec1 read files).
    ``slo_response_url``: a second SLO endpoint, so that pysaml2 accepts LogoutResponses
    addressed there (its metadata names it as the first endpoint's ResponseLocation only
    when the test rewrites it: pysaml2 checks a Destination against its endpoints)."""
    extra_slo = [(slo_response_url, slo_binding)] if slo_response_url else []
    cert_file, key_file = workdir / "sp.crt", workdir / "sp.key"
    cert_file.write_text(cert_pem)
    key_file.write_text(key_pem)
    config = SPConfig()
    config.load({
        "entityid": entity_id,
        "xmlsec_binary": XMLSEC1,
        "key_file": str(key_file),
        "cert_file": str(cert_file),
        "metadata": {"inline": [idp_metadata]},
        "preferred_binding": {"single_logout_service": [slo_binding]},
        "accepted_time_diff": 30,
        "allow_unknown_attributes": True,  # the bridge's plain basic-format names
        "service": {"sp": {
            "endpoints": {
                "assertion_consumer_service": [(ACS_URL, BINDING_HTTP_POST)],
                "single_logout_service": [(SLO_URL, slo_binding), *extra_slo],
            },
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            # pysaml2 defaults to RSA-SHA1, which the bridge refuses.
            "signing_algorithm": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            "digest_algorithm": "http://www.w3.org/2001/04/xmlenc#sha256",
            "allow_unsolicited": True,
            "authn_requests_signed": True,
            "logout_requests_signed": True,
            "logout_responses_signed": True,
            "want_response_signed": True,
            "want_assertions_signed": True,
        }},
    })
    return Saml2Client(config)


def sp_metadata(client: Saml2Client) -> str:
    return str(entity_descriptor(client.config))


__all__ = ["ACS_URL", "BINDING_HTTP_POST", "BINDING_HTTP_REDIRECT", "ENTITY_ID", "SLO_URL",
           "Form", "pysaml2_sp", "read_form", "sp_metadata"]
