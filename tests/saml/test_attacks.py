"""Attack classes tried against the bridge's SAML endpoints (issue #12 item 7), beside those of
test_binding_pollution.py and test_bad_input.py: XML signature wrapping on POST-bound signed
messages, reference transforms that sign less than the message, comments in identifiers, a
Response sent to the IdP, and hostile logout messages over POST. Each is refused with a clear
error page (400) or an error status, and nothing is stored or ended."""

from __future__ import annotations

import base64
import copy

import pytest
import requests
import xmlsec
from lxml import etree
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp.extensions import db
from idp.saml.models import PendingAuthnRequest, SamlLogin
from tests.helpers import http_login

from .conftest import register_sp
from .test_bad_input import LAUGHS, XXE, _authn_request, _deflate, _refused, _sp_keypair
from .test_sso import _status
from .zulip_sp import ZULIP_ENTITY_ID, ZulipSP, posted_form

DS = "http://www.w3.org/2000/09/xmldsig#"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


@pytest.fixture
def signer(app, live_server, idp_entity_id):
    """Zulip registered with a certificate and signed requests required; returns the SP
    settings and key to sign POST-bound AuthnRequests with."""
    sp_cert, sp_key = _sp_keypair()
    register_sp(app, certificate=sp_cert, want_authn_requests_signed=True)
    cert = app.extensions["signing_keys"].current().certificate_b64
    sp = ZulipSP(idp_entity_id=idp_entity_id, idp_base_url=live_server, idp_cert_b64=cert,
                 sp_cert=sp_cert, sp_key=sp_key)
    return OneLogin_Saml2_Settings(sp.config(authnRequestsSigned=True)), sp_cert, sp_key


def _signed_request(signer) -> etree._Element:
    settings, cert, key = signer
    xml = OneLogin_Saml2_Authn_Request(settings).get_xml()
    signed = OneLogin_Saml2_Utils.add_sign(xml, key, cert, sign_algorithm=RSA_SHA256,
                                           digest_algorithm=SHA256)
    return etree.fromstring(signed)


def _post(base_url: str, root: etree._Element, session=None) -> requests.Response:
    body = {"SAMLRequest": base64.b64encode(etree.tostring(root)).decode()}
    return (session or requests).post(base_url + "/saml/sso", data=body, allow_redirects=False)


def _nothing_stored(app) -> None:
    with app.app_context():
        assert db.session.query(PendingAuthnRequest).count() == 0
        assert db.session.query(SamlLogin).count() == 0


def _forged_around(genuine: etree._Element, *, same_id: bool) -> etree._Element:
    """A forged AuthnRequest (other ID, ForceAuthn off) wrapping the genuine signed one in
    its Extensions."""
    forged = copy.deepcopy(genuine)
    forged.set("ID", genuine.get("ID") if same_id else "_forged")
    forged.remove(forged.find(f"{{{DS}}}Signature"))
    extensions = etree.SubElement(forged, f"{{{SAMLP}}}Extensions")
    forged.insert(1, extensions)
    extensions.append(copy.deepcopy(genuine))
    return forged


def test_the_genuine_signed_post_request_is_answered(app, live_server, signer):
    """The control for the wrapping tests below."""
    session = http_login(live_server, "student1")
    answer = _post(live_server, _signed_request(signer), session)
    assert answer.status_code == 200 and posted_form(answer.text)


def test_xsw_genuine_request_nested_without_a_root_signature(app, live_server, signer):
    forged = _forged_around(_signed_request(signer), same_id=False)
    _refused(_post(live_server, forged, http_login(live_server, "student1")), "must sign")
    _nothing_stored(app)


@pytest.mark.parametrize("same_id, text", [(False, "does not cover the message"),
                                           (True, "does not verify")],
                         ids=["reference-to-nested", "reused-id"])
def test_xsw_signature_moved_to_the_forged_root(app, live_server, signer, same_id, text):
    """The forged root carries the genuine Signature. Its Reference points at the nested
    genuine request (it does not cover the message acted on), or the forged root reuses the
    signed ID (only the root is an ID for the verifier, so the digest fails)."""
    genuine = _signed_request(signer)
    forged = _forged_around(genuine, same_id=same_id)
    forged.insert(1, copy.deepcopy(genuine.find(f"{{{DS}}}Signature")))
    _refused(_post(live_server, forged, http_login(live_server, "student1")), text)
    _nothing_stored(app)


def test_signed_request_with_an_attribute_changed(app, live_server, signer):
    genuine = _signed_request(signer)
    genuine.set("IsPassive", "true")
    _refused(_post(live_server, genuine, http_login(live_server, "student1")),
             "does not verify")


def test_signature_with_an_xpath_transform_is_refused(app, live_server, signer):
    """A Reference may only use the enveloped transform and canonicalisation: an XPath
    transform could leave parts of the message unsigned."""
    _, _, key_pem = signer
    settings = signer[0]
    root = etree.fromstring(OneLogin_Saml2_Authn_Request(settings).get_xml())
    signature = xmlsec.template.create(root, xmlsec.Transform.EXCL_C14N,
                                       xmlsec.Transform.RSA_SHA256, ns="ds")
    root.insert(1, signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.Transform.SHA256,
                                              uri="#" + root.get("ID"))
    xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
    xpath = xmlsec.template.add_transform(reference, xmlsec.Transform.XPATH)
    etree.SubElement(xpath, f"{{{DS}}}XPath").text = \
        "not(ancestor-or-self::*[local-name()='NameIDPolicy'])"
    context = xmlsec.SignatureContext()
    context.register_id(root, "ID")
    context.key = xmlsec.Key.from_memory(key_pem.encode(), xmlsec.KeyFormat.PEM, None)
    context.sign(signature)
    # What the transform leaves unsigned can be changed without breaking the signature;
    # allowing the transform would make this tampered request verify.
    root.find(f"{{{SAMLP}}}NameIDPolicy").set("AllowCreate", "false")
    _refused(_post(live_server, root, http_login(live_server, "student1")), "does not verify")
    _nothing_stored(app)


def test_comment_inside_a_requested_subject(app, live_server, zulip_registered):
    """The NameID comment trick: ``student1@example.edu<!---->.evil.example`` is read as the
    whole text (comments are dropped at parse time, text joined), never truncated to
    student1's address."""
    session = http_login(live_server, "student1")
    body = ('<saml:Subject><saml:NameID>student1@example.edu<!---->.evil.example'
            '</saml:NameID></saml:Subject>')
    answer = session.get(live_server + "/saml/sso", params={"SAMLRequest": _deflate(
        _authn_request(live_server, body=body))}, allow_redirects=False)
    assert _status(posted_form(answer.text)) == ["Responder", "AuthnFailed"]


def test_a_response_sent_to_the_idp_is_refused(app, live_server, zulip):
    """Unsolicited Response: the bridge is an IdP and consumes no Responses."""
    session = http_login(live_server, "student1")
    answer = session.get(live_server + "/saml/sso/init", params={"sp": zulip.entity_id,
                                                                 "subdomain": ""})
    response = posted_form(answer.text).saml_response
    _refused(requests.post(live_server + "/saml/sso", data={"SAMLResponse": response}),
             "does not accept")
    _refused(requests.get(live_server + "/saml/sso", params={"SAMLResponse": response}),
             "does not accept")


@pytest.mark.parametrize("xml, text", [(XXE, "DTD"), (LAUGHS, "DTD"),
                                        (b"<a>" + b"A" * 70_000 + b"</a>", "larger than")],
                         ids=["xxe", "billion-laughs", "oversized"])
def test_hostile_logout_messages_over_post(app, live_server, zulip_registered, xml, text):
    """(A LogoutResponse is matched to its logout chain by RelayState before it is decoded.)"""
    response = requests.post(live_server + "/saml/slo",
                             data={"SAMLRequest": base64.b64encode(xml).decode()})
    _refused(response, text)
    assert "This sign-out request cannot be used" in response.text


def test_deflate_bomb_at_slo(app, live_server, zulip_registered):
    bomb = _deflate(b"<a>" + b"A" * 20_000_000 + b"</a>")
    _refused(requests.get(live_server + "/saml/slo", params={"SAMLRequest": bomb}),
             "inflates to more than")


def _signed(xml: bytes, signer) -> etree._Element:
    _, cert, key = signer
    return etree.fromstring(OneLogin_Saml2_Utils.add_sign(
        xml, key, cert, sign_algorithm=RSA_SHA256, digest_algorithm=SHA256))


def test_signed_messages_must_name_their_destination(app, live_server, signer):
    """Bindings §3.4.5.2, §3.5.5.2: a signed message without Destination could be replayed
    to another endpoint; it is refused, at /saml/sso and at /saml/slo."""
    session = http_login(live_server, "student1")
    request = etree.fromstring(OneLogin_Saml2_Authn_Request(signer[0]).get_xml())
    del request.attrib["Destination"]
    _refused(_post(live_server, _signed(etree.tostring(request), signer), session),
             "must name its Destination")
    instant = request.get("IssueInstant")
    logout = (f'<samlp:LogoutRequest xmlns:samlp="{SAMLP}" xmlns:saml="urn:oasis:names:tc:'
              f'SAML:2.0:assertion" ID="_nodest" Version="2.0" IssueInstant="{instant}">'
              f'<saml:Issuer>{ZULIP_ENTITY_ID}</saml:Issuer><saml:NameID>'
              'student1@example.edu</saml:NameID></samlp:LogoutRequest>').encode()
    body = {"SAMLRequest": base64.b64encode(etree.tostring(_signed(logout, signer))).decode()}
    _refused(session.post(live_server + "/saml/slo", data=body), "must name its Destination")
    assert session.get(live_server + "/", allow_redirects=False).status_code == 200


def test_rsa_sha1_xml_signature_is_refused(app, live_server, signer):
    """Only RSA with SHA-2 signs a message, in XML as in the Redirect query."""
    settings, cert, key = signer
    sha1 = OneLogin_Saml2_Utils.add_sign(
        OneLogin_Saml2_Authn_Request(settings).get_xml(), key, cert,
        sign_algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1", digest_algorithm=SHA256)
    _refused(_post(live_server, etree.fromstring(sha1), http_login(live_server, "student1")),
             "unsupported signature algorithm")
    _nothing_stored(app)
