"""A Zulip-faithful SAML service provider for the tests.

python3-saml's ``OneLogin_Saml2_Auth`` configured the way social-core's ``SAMLAuth
.generate_saml_config`` builds it, with Zulip's defaults (strict, ``authnRequestsSigned:
False``, RSA-SHA256; ``wantMessagesSigned: True`` when Zulip processes an IdP's
LogoutRequest). The request dict is what Zulip sees behind its proxy: https, host
zulip.example.edu, path /complete/saml/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import parse_qsl, urlsplit

from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.settings import OneLogin_Saml2_Settings

ZULIP_HOST = "zulip.example.edu"
ZULIP_ENTITY_ID = f"https://{ZULIP_HOST}"
ZULIP_ACS = f"https://{ZULIP_HOST}/complete/saml/"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


@dataclass
class ZulipSP:
    idp_entity_id: str
    idp_base_url: str
    idp_cert_b64: str
    entity_id: str = ZULIP_ENTITY_ID
    acs_url: str = ZULIP_ACS
    host: str = ZULIP_HOST
    security: dict = field(default_factory=dict)
    sp_cert: str = ""
    sp_key: str = ""
    last_request_id: str | None = None

    def config(self, **security) -> dict:
        conf = {
            # Zulip fills these from its own settings (computed_settings.py).
            "contactPerson": {
                "technical": {"givenName": "Zulip admin", "emailAddress": "zulip@example.edu"},
                "support": {"givenName": "Zulip admin", "emailAddress": "zulip@example.edu"}},
            "debug": True,
            "idp": {
                "entityId": self.idp_entity_id,
                "singleSignOnService": {
                    "url": f"{self.idp_base_url}/saml/sso",
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
                "singleLogoutService": {
                    "url": f"{self.idp_base_url}/saml/slo",
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
                "x509cert": self.idp_cert_b64,
            },
            "organization": {"en-US": {"name": "example", "displayname": "Example Zulip",
                                       "url": f"https://{self.host}"}},
            "security": {"metadataValidUntil": "", "metadataCacheDuration": "P10D",
                         "authnRequestsSigned": False, "signatureAlgorithm": RSA_SHA256},
            "sp": {
                "assertionConsumerService": {
                    "url": self.acs_url,
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"},
                "singleLogoutService": {
                    "url": self.acs_url,
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"},
                "entityId": self.entity_id,
                "x509cert": self.sp_cert,
                "privateKey": self.sp_key,
            },
            "strict": True,
        }
        conf["security"].update(self.security)
        conf["security"].update(security)
        return conf

    def request_data(self, *, get: dict | None = None, post: dict | None = None) -> dict:
        return {"https": "on", "http_host": self.host,
                "script_name": urlsplit(self.acs_url).path,
                "get_data": get or {}, "post_data": post or {}}

    def auth(self, *, get=None, post=None, **security) -> OneLogin_Saml2_Auth:
        return OneLogin_Saml2_Auth(self.request_data(get=get, post=post), self.config(**security))

    def metadata(self) -> str:
        settings = OneLogin_Saml2_Settings(self.config(), sp_validation_only=True)
        return settings.get_sp_metadata().decode() if isinstance(
            settings.get_sp_metadata(), bytes) else settings.get_sp_metadata()

    # -- SSO ---------------------------------------------------------------------------------
    def login_url(self, next_url: str = "", **kwargs) -> str:
        """What social-core's auth_url() does: RelayState JSON with the IdP name."""
        auth = self.auth()
        url = auth.login(return_to=json.dumps({"idp": "lms", "next": next_url}), **kwargs)
        self.last_request_id = auth.get_last_request_id()
        return url

    def process_response(self, saml_response: str, relay_state: str | None,
                         request_id: str | None) -> OneLogin_Saml2_Auth:
        post = {"SAMLResponse": saml_response}
        if relay_state is not None:
            post["RelayState"] = relay_state
        auth = self.auth(post=post)
        auth.process_response(request_id=request_id)
        return auth

    # -- SLO ---------------------------------------------------------------------------------
    def logout_url(self, name_id: str, session_index: str) -> str:
        auth = self.auth()
        url = auth.logout(return_to="/", name_id=name_id, session_index=session_index)
        self.last_request_id = auth.get_last_request_id()
        return url

    def process_slo(self, url: str, request_id: str | None = None,
                    **security) -> tuple[OneLogin_Saml2_Auth, str | None]:
        """Zulip's /complete/saml/ receiving a LogoutRequest (it forces wantMessagesSigned)
        or a LogoutResponse."""
        get = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
        auth = self.auth(get=get, **security)
        result = auth.process_slo(keep_local_session=True, request_id=request_id)
        return auth, result


_FORM = re.compile(r'<form id="saml-post" method="post" action="([^"]+)"')
_FIELD = re.compile(r'<input type="hidden" name="(SAMLResponse|RelayState)" value="([^"]*)">')


@dataclass(frozen=True)
class PostedForm:
    action: str
    saml_response: str
    relay_state: str | None


def posted_form(html: str) -> PostedForm:
    """The auto-POST form of the bridge's answer page."""
    action = _FORM.search(html)
    assert action, "no SAML POST form in the page:\n" + html[:800]
    fields = {name: unescape(value) for name, value in _FIELD.findall(html)}
    return PostedForm(unescape(action.group(1)), fields["SAMLResponse"],
                      fields.get("RelayState"))
