"""Bad input at /saml/sso and /saml/sso/init: each a clear error page (never a 500, never a
redirect to a URL from the request, nothing stored) or a SAML error status."""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from idp import clock
from idp.extensions import db
from idp.saml.models import PendingAuthnRequest, SamlLogin
from tests.helpers import http_login

from .conftest import register_sp
from .zulip_sp import ZULIP_ACS, ZULIP_ENTITY_ID, ZulipSP, posted_form

NOW = "2026-01-01T00:00:00Z"


def _deflate(xml: bytes) -> str:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()


def _authn_request(base_url: str, *, issuer: str = ZULIP_ENTITY_ID, acs: str = ZULIP_ACS,
                   request_id: str = "_req1", extra: str = "", instant: str | None = None,
                   destination: str | None = None, body: str = "") -> bytes:
    instant = instant or clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    destination = destination or base_url + "/saml/sso"
    return (f'<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{request_id}" '
            f'Version="2.0" IssueInstant="{instant}" Destination="{destination}" '
            f'AssertionConsumerServiceURL="{acs}" {extra}>'
            f'<saml:Issuer>{issuer}</saml:Issuer>{body}</samlp:AuthnRequest>').encode()


def _refused(response: requests.Response, text: str) -> None:
    assert response.status_code == 400, response.text[:300]
    assert "Location" not in response.headers
    assert text in response.text, response.text[:1500]
    assert 'name="SAMLResponse"' not in response.text


def _get(base_url: str, **params) -> requests.Response:
    return requests.get(base_url + "/saml/sso?" + urlencode(params), allow_redirects=False)


def _nothing_stored(app) -> None:
    with app.app_context():
        assert db.session.query(PendingAuthnRequest).count() == 0
        assert db.session.query(SamlLogin).count() == 0


def test_unknown_sp(app, live_server, zulip_registered):
    xml = _authn_request(live_server, issuer="https://evil.example.com")
    _refused(_get(live_server, SAMLRequest=_deflate(xml)), "not registered")
    _nothing_stored(app)


def test_unregistered_acs(app, live_server, zulip_registered):
    for acs in ("https://evil.example.com/complete/saml/",
                "https://zulip.example.edu/complete/saml/x",
                "https://zulip.example.edu/complete/saml"):
        xml = _authn_request(live_server, acs=acs)
        _refused(_get(live_server, SAMLRequest=_deflate(xml)), "did not register")
    _nothing_stored(app)


def test_unregistered_acs_index_and_binding(app, live_server, zulip_registered):
    xml = _authn_request(live_server).replace(
        b'AssertionConsumerServiceURL="https://zulip.example.edu/complete/saml/"',
        b'AssertionConsumerServiceIndex="3"')
    _refused(_get(live_server, SAMLRequest=_deflate(xml)), "ACS index")
    xml = _authn_request(live_server, extra='ProtocolBinding="urn:oasis:names:tc:SAML:2.0:'
                                            'bindings:HTTP-Artifact"')
    _refused(_get(live_server, SAMLRequest=_deflate(xml)), "HTTP-POST")


@pytest.mark.parametrize("message, text", [
    ("not base64 at all!", "not valid base64"),
    ("QUJ", "not valid base64"),
    (base64.b64encode(b"this is not deflate data").decode(), "not valid DEFLATE"),
    (base64.b64encode(zlib.compress(b"<x/>")[:-4]).decode(), "DEFLATE"),
    ("", "No SAMLRequest"),
    (_deflate(b"<samlp:AuthnRequest"), "not well-formed"),
    (_deflate(b"<hello/>"), "expected a samlp:AuthnRequest"),
])
def test_broken_base64_deflate_and_xml(app, live_server, zulip_registered, message, text):
    _refused(_get(live_server, SAMLRequest=message), text)
    _nothing_stored(app)


def test_deflate_bomb_stops_at_the_limit(app, live_server, zulip_registered):
    bomb = _deflate(b"<a>" + b"A" * 20_000_000 + b"</a>")
    assert len(bomb) < 32 * 1024
    _refused(_get(live_server, SAMLRequest=bomb), "inflates to more than")


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE samlp:AuthnRequest [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
 xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_x" Version="2.0"
 IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>&xxe;</saml:Issuer></samlp:AuthnRequest>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x"
 Version="2.0" IssueInstant="2026-01-01T00:00:00Z">&lol4;</samlp:AuthnRequest>"""
ENTITY_ONLY = b"""<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
 ID="_x" Version="2.0" IssueInstant="2026-01-01T00:00:00Z">&amp;&lol;</samlp:AuthnRequest>"""


@pytest.mark.parametrize("xml", [XXE, LAUGHS, XXE.replace(b"DOCTYPE", b"doctype")],
                         ids=["xxe", "billion-laughs", "lower-case-doctype"])
def test_dtd_and_entities_are_refused(app, live_server, zulip_registered, xml):
    _refused(_get(live_server, SAMLRequest=_deflate(xml)), "DTD")
    response = requests.post(live_server + "/saml/sso",
                             data={"SAMLRequest": base64.b64encode(xml).decode()})
    _refused(response, "DTD")
    assert "root:" not in response.text


def test_undeclared_entity_is_refused(app, live_server, zulip_registered):
    _refused(_get(live_server, SAMLRequest=_deflate(ENTITY_ONLY)), "not well-formed")


def test_request_over_100_kb(app, live_server, zulip_registered):
    padding = "<saml:Extra>" + "x" * 110_000 + "</saml:Extra>"
    xml = _authn_request(live_server, body=padding)
    assert len(xml) > 100_000
    response = requests.post(live_server + "/saml/sso",
                             data={"SAMLRequest": base64.b64encode(xml).decode()})
    _refused(response, "larger than")
    # Over the Redirect binding the same request deflates small but inflates too large.
    _refused(_get(live_server, SAMLRequest=_deflate(xml)), "inflates to more than")
    _nothing_stored(app)


def test_replayed_request_id(app, live_server, zulip):
    session = http_login(live_server, "student1")
    url = zulip.login_url()
    first = session.get(url, allow_redirects=False)
    assert first.status_code == 200 and posted_form(first.text)
    _refused(session.get(url, allow_redirects=False), "already used")
    with app.app_context():
        assert db.session.query(SamlLogin).count() == 1


def test_continuation_cannot_be_reused(app, live_server, zulip):
    first = requests.get(zulip.login_url(), allow_redirects=False)
    next_path = parse_qs(urlsplit(first.headers["Location"]).query)["next"][0]
    session = http_login(live_server, "student1")
    assert posted_form(session.get(live_server + next_path).text)
    _refused(session.get(live_server + next_path), "expired or was already answered")
    _refused(session.get(live_server + "/saml/sso/continue/not-a-real-token-123"),
             "expired or was already answered")


def test_wrong_destination_and_skewed_instant(app, live_server, zulip_registered):
    xml = _authn_request(live_server, destination="https://other-idp.example.com/sso")
    _refused(_get(live_server, SAMLRequest=_deflate(xml)), "Destination")
    old = (clock.now() - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _refused(_get(live_server, SAMLRequest=_deflate(_authn_request(live_server, instant=old))),
             "too old")
    future = (clock.now() + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _refused(_get(live_server, SAMLRequest=_deflate(
        _authn_request(live_server, instant=future, request_id="_req2"))), "too old")
    _refused(_get(live_server, SAMLRequest=_deflate(
        _authn_request(live_server, instant="yesterday"))), "IssueInstant")
    _nothing_stored(app)


def test_request_skew_with_the_clock_moved(app, live_server, zulip):
    url = zulip.login_url()
    clock.advance(3600)
    _refused(requests.get(url, allow_redirects=False), "too old")


def test_unsupported_name_id_policy_answers_a_saml_error(app, live_server, zulip):
    body = ('<samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:'
            'persistent" AllowCreate="true"/>')
    xml = _authn_request(live_server, body=body)
    answer = _get(live_server, SAMLRequest=_deflate(xml))
    assert answer.status_code == 200
    decoded = base64.b64decode(posted_form(answer.text).saml_response)
    assert b"InvalidNameIDPolicy" in decoded and b"Assertion" not in decoded


def test_bad_signature_on_a_signed_request(app, live_server, idp_entity_id):
    sp_cert, sp_key = _sp_keypair()
    register_sp(app, certificate=sp_cert, want_authn_requests_signed=True)
    cert = app.extensions["signing_keys"].current().certificate_b64
    signer = ZulipSP(idp_entity_id=idp_entity_id, idp_base_url=live_server, idp_cert_b64=cert,
                     sp_cert=sp_cert, sp_key=sp_key,
                     security={"authnRequestsSigned": True})
    session = http_login(live_server, "student1")
    good = session.get(signer.login_url(), allow_redirects=False)
    assert good.status_code == 200
    assert signer.process_response(posted_form(good.text).saml_response, None,
                                   signer.last_request_id).is_authenticated()

    url = signer.login_url()
    parts = parse_qs(urlsplit(url).query)
    signature = bytearray(base64.b64decode(parts["Signature"][0]))
    signature[10] ^= 0xFF
    tampered = url.split("&Signature=")[0] + "&" + urlencode(
        {"Signature": base64.b64encode(bytes(signature)).decode()})
    _refused(session.get(tampered, allow_redirects=False), "signature is not valid")
    # A different RelayState than the one signed is a bad signature too.
    swapped = url.replace("RelayState=", "RelayState=x", 1)
    _refused(session.get(swapped, allow_redirects=False), "signature is not valid")
    unsigned = url.split("&SigAlg=")[0]
    _refused(session.get(unsigned, allow_redirects=False), "must sign")


def test_signed_request_over_post_binding(app, live_server, idp_entity_id):
    from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    sp_cert, sp_key = _sp_keypair()
    register_sp(app, certificate=sp_cert, want_authn_requests_signed=True)
    cert = app.extensions["signing_keys"].current().certificate_b64
    signer = ZulipSP(idp_entity_id=idp_entity_id, idp_base_url=live_server, idp_cert_b64=cert,
                     sp_cert=sp_cert, sp_key=sp_key)
    settings = OneLogin_Saml2_Settings(signer.config(authnRequestsSigned=True))
    request = OneLogin_Saml2_Authn_Request(settings)
    signed = OneLogin_Saml2_Utils.add_sign(
        request.get_xml(), sp_key, sp_cert,
        sign_algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256")
    session = http_login(live_server, "student1")
    answer = session.post(live_server + "/saml/sso",
                          data={"SAMLRequest": base64.b64encode(signed).decode()})
    assert answer.status_code == 200
    auth = signer.process_response(posted_form(answer.text).saml_response, None,
                                   request.get_id())
    assert auth.is_authenticated(), auth.get_last_error_reason()

    other = OneLogin_Saml2_Authn_Request(settings)
    tampered = OneLogin_Saml2_Utils.add_sign(
        other.get_xml(), sp_key, sp_cert,
        sign_algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        digest_algorithm="http://www.w3.org/2001/04/xmlenc#sha256").replace(
        b'ForceAuthn', b'ForceAuthn', 1).replace(b'Version="2.0"', b'Version="2.0" '
                                                  b'IsPassive="true"', 1)
    _refused(session.post(live_server + "/saml/sso",
                          data={"SAMLRequest": base64.b64encode(tampered).decode()}),
             "signature is not valid")
    unsigned = OneLogin_Saml2_Authn_Request(settings).get_xml().encode()
    _refused(session.post(live_server + "/saml/sso",
                          data={"SAMLRequest": base64.b64encode(unsigned).decode()}),
             "must sign")


def test_idp_initiated_bad_input(app, live_server, zulip_registered):
    session = http_login(live_server, "student1")
    response = session.get(live_server + "/saml/sso/init?" + urlencode(
        {"sp": "https://evil.example.com", "subdomain": ""}), allow_redirects=False)
    _refused(response, "not registered")
    response = session.get(live_server + "/saml/sso/init?" + urlencode(
        {"sp": ZULIP_ENTITY_ID, "subdomain": "Bad Realm!"}), allow_redirects=False)
    _refused(response, "subdomain")
    _refused(session.get(live_server + "/saml/sso/init", allow_redirects=False),
             "not registered")


def test_slo_without_message(app, live_server):
    _refused(requests.get(live_server + "/saml/slo"), "No SAMLRequest")


def _sp_keypair() -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "zulip.example.edu")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM,
                              serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode())


def test_relay_state_too_long(app, live_server, zulip_registered):
    xml = _authn_request(live_server)
    _refused(_get(live_server, SAMLRequest=_deflate(xml), RelayState="r" * 1025),
             "RelayState is longer")
    _nothing_stored(app)


def test_person_without_email_gets_no_assertion(app, live_server, zulip_registered,
                                                lms_admin):
    session = http_login(live_server, "student4")
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET email = '' WHERE id = 4")
    response = session.get(live_server + "/saml/sso/init?" + urlencode(
        {"sp": ZULIP_ENTITY_ID, "subdomain": ""}), allow_redirects=False)
    _refused(response, "no email address")
    _nothing_stored(app)
