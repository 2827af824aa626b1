"""Issue #12 item 1: parameter pollution around signed SAML messages.

The exact requests that showed the bypass: a forged message under a percent-encoded name
(``SAML%52equest``) beside a genuinely signed one, sent for an SP that requires signed requests.
The bridge used to verify the signature over the raw query's first literal ``SAMLRequest`` and
act on Werkzeug's decoded first ``SAMLRequest`` (the forged one). Now the query is read once and
any repeated SAML parameter is refused with a 400 error page, nothing stored or ended.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import requests

from idp import clock
from idp.extensions import db
from idp.saml.models import PendingAuthnRequest, SamlLogin
from tests.helpers import http_login

from .conftest import register_sp
from .test_bad_input import _authn_request, _deflate, _refused, _sp_keypair
from .zulip_sp import ZULIP_ACS, ZULIP_ENTITY_ID, ZulipSP, posted_form


@pytest.fixture
def signing_sp(app, live_server, idp_entity_id) -> ZulipSP:
    """Zulip registered with a certificate and ``want_authn_requests_signed``; its
    AuthnRequests and LogoutRequests are signed (Redirect binding)."""
    sp_cert, sp_key = _sp_keypair()
    register_sp(app, certificate=sp_cert, want_authn_requests_signed=True)
    cert = app.extensions["signing_keys"].current().certificate_b64
    return ZulipSP(idp_entity_id=idp_entity_id, idp_base_url=live_server, idp_cert_b64=cert,
                   sp_cert=sp_cert, sp_key=sp_key,
                   security={"authnRequestsSigned": True, "logoutRequestSigned": True})


def _query(url: str) -> str:
    return urlsplit(url).query


def _forged_authn(base_url: str) -> str:
    return _deflate(_authn_request(base_url, request_id="_forged",
                                   extra='ForceAuthn="false"'))


def _no_answer_to_the_forgery(app, response: requests.Response) -> None:
    _refused(response, "appears more than once")
    assert "_forged" not in response.text
    with app.app_context():
        assert db.session.query(PendingAuthnRequest).count() == 0
        assert db.session.query(SamlLogin).count() == 0


def test_forged_request_under_an_encoded_name_before_the_signed_one(app, live_server,
                                                                    signing_sp):
    """The issue's request: ``SAML%52equest=<forged>&SAMLRequest=<signed>&…``."""
    session = http_login(live_server, "student1")
    signed = _query(signing_sp.login_url())
    url = (live_server + "/saml/sso?SAML%52equest=" + quote(_forged_authn(live_server), safe="")
           + "&" + signed)
    _no_answer_to_the_forgery(app, session.get(url, allow_redirects=False))


@pytest.mark.parametrize("forged_name", ["SAMLRequest", "SAML%52equest", "%53%41%4D%4CRequest",
                                         "SAML%52eq%75est"])
def test_forged_request_after_the_signed_one(app, live_server, signing_sp, forged_name):
    session = http_login(live_server, "student1")
    signed = _query(signing_sp.login_url())
    url = (live_server + "/saml/sso?" + signed + f"&{forged_name}="
           + quote(_forged_authn(live_server), safe=""))
    _no_answer_to_the_forgery(app, session.get(url, allow_redirects=False))


@pytest.mark.parametrize("name", ["RelayState", "Relay%53tate", "SigAlg", "Sig%41lg",
                                  "Signature", "%53ignature"])
def test_any_repeated_saml_parameter_is_refused(app, live_server, signing_sp, name):
    session = http_login(live_server, "student1")
    signed = _query(signing_sp.login_url())
    value = parse_qs(signed)[name.replace("%53", "S").replace("%41", "A")][0]
    response = session.get(live_server + "/saml/sso?" + signed + f"&{name}=" + quote(
        value, safe=""), allow_redirects=False)
    _refused(response, "appears more than once")


def test_the_signed_request_alone_is_answered(app, live_server, signing_sp):
    """The control: the same signed query without the pollution signs the person in."""
    session = http_login(live_server, "student1")
    answer = session.get(signing_sp.login_url(), allow_redirects=False)
    auth = signing_sp.process_response(posted_form(answer.text).saml_response, None,
                                       signing_sp.last_request_id)
    assert auth.is_authenticated(), auth.get_last_error_reason()


def test_a_signed_request_under_an_encoded_name_is_verified_over_its_own_value(
        app, live_server, signing_sp):
    """One SAMLRequest, its name percent-encoded: read and verified as that one value; a
    forged value under the encoded name alone fails the signature."""
    session = http_login(live_server, "student1")
    signed = _query(signing_sp.login_url())
    encoded_name = signed.replace("SAMLRequest=", "SAML%52equest=", 1)
    answer = session.get(live_server + "/saml/sso?" + encoded_name, allow_redirects=False)
    assert answer.status_code == 200 and posted_form(answer.text)
    genuine = parse_qs(signed)["SAMLRequest"][0]
    forged = signed.replace(quote(genuine, safe=""), quote(_forged_authn(live_server), safe=""))
    assert forged != signed
    _refused(session.get(live_server + "/saml/sso?" + forged.replace(
        "SAMLRequest=", "SAML%52equest=", 1), allow_redirects=False), "signature is not valid")


def test_post_body_with_a_repeated_saml_request(app, live_server, zulip_registered):
    xml = _authn_request(live_server)
    body = [("SAMLRequest", base64.b64encode(xml).decode()),
            ("SAMLRequest", base64.b64encode(xml.replace(b"_req1", b"_forged")).decode())]
    _refused(requests.post(live_server + "/saml/sso", data=urlencode(body), headers={
        "Content-Type": "application/x-www-form-urlencoded"}), "appears more than once")
    encoded = urlencode(body[:1]) + "&SAML%52equest=" + quote(body[1][1], safe="")
    _refused(requests.post(live_server + "/saml/sso", data=encoded, headers={
        "Content-Type": "application/x-www-form-urlencoded"}), "appears more than once")
    _refused(requests.post(live_server + "/saml/sso?" + urlencode(body[1:]),
                           data=dict(body[:1])), "belong in the body")
    _refused(requests.post(live_server + "/saml/sso", data={
        "SAMLRequest": body[0][1], "Signature": "AAAA", "SigAlg": "x"}), "SimpleSign")
    with app.app_context():
        assert db.session.query(PendingAuthnRequest).count() == 0


@pytest.mark.parametrize("query, text", [
    ("SAMLRequest=a&SAMLResponse=b", "Both SAMLRequest and SAMLResponse"),
    ("SAMLRequest=%FF%FE", "not UTF-8"),
])
def test_malformed_queries(app, live_server, zulip_registered, query, text):
    for endpoint in ("/saml/sso", "/saml/slo"):
        _refused(requests.get(live_server + endpoint + "?" + query), text)


@pytest.mark.parametrize("raw, text", [
    ("SAMLRequest=\xe9", "percent-encoded ASCII"),
    ("SAMLRequest=a b", "spaces or control characters"),
    ("SAMLRequest=a\tb", "spaces or control characters"),
    ("SAMLRequest=" + "A" * 70_000, "longer than"),
])
def test_raw_queries_no_client_would_send(client, zulip_registered, raw, text):
    """Sent as raw WSGI query strings (HTTP clients refuse to send them)."""
    for endpoint in ("/saml/sso", "/saml/slo"):
        response = client.get(endpoint, environ_overrides={"QUERY_STRING": raw})
        assert response.status_code == 400
        assert text in response.get_data(as_text=True)


def test_sso_refuses_a_saml_response(app, live_server, zulip_registered):
    _refused(requests.get(live_server + "/saml/sso?SAMLResponse=abc"), "does not accept")


def _login_at(sp: ZulipSP, session: requests.Session) -> str:
    answer = session.get(sp.login_url(), allow_redirects=False)
    auth = sp.process_response(posted_form(answer.text).saml_response, None,
                               sp.last_request_id)
    assert auth.is_authenticated(), auth.get_last_error_reason()
    return auth.get_session_index()


def _signed_in(session: requests.Session, base_url: str) -> bool:
    return session.get(base_url + "/", allow_redirects=False).status_code == 200


def test_forged_logout_request_beside_a_signed_one(app, live_server, signing_sp):
    """Same on /saml/slo: a forged LogoutRequest naming the victim's session, beside the
    attacker's own genuinely signed one, ends nobody's session."""
    victim = http_login(live_server, "student2")
    victim_index = _login_at(signing_sp, victim)
    attacker = http_login(live_server, "student1")
    attacker_index = _login_at(signing_sp, attacker)
    forged_xml = (
        '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
        'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_forged" Version="2.0" '
        f'IssueInstant="{clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")}" '
        f'Destination="{live_server}/saml/slo"><saml:Issuer>{ZULIP_ENTITY_ID}</saml:Issuer>'
        '<saml:NameID>student2@example.edu</saml:NameID>'
        f'<samlp:SessionIndex>{victim_index}</samlp:SessionIndex></samlp:LogoutRequest>')
    signed = _query(signing_sp.logout_url("student1@example.edu", attacker_index))
    forged = quote(_deflate(forged_xml.encode()), safe="")
    for url in (f"{live_server}/saml/slo?SAML%52equest={forged}&{signed}",
                f"{live_server}/saml/slo?{signed}&SAML%52equest={forged}",
                f"{live_server}/saml/slo?{signed}&SAMLRequest={forged}"):
        response = attacker.get(url, allow_redirects=False)
        _refused(response, "appears more than once")
        assert "sign-in" not in response.text.split("<h1")[1][:120]
    assert _signed_in(victim, live_server) and _signed_in(attacker, live_server)
    with app.app_context():
        assert db.session.query(SamlLogin).filter(SamlLogin.ended_at.isnot(None)).count() == 0
    # The control: the attacker's own signed request alone ends only the attacker's session.
    own = attacker.get(f"{live_server}/saml/slo?{signed}", allow_redirects=False)
    assert own.headers["Location"].startswith(ZULIP_ACS + "?SAMLResponse=")
    assert _signed_in(victim, live_server) and not _signed_in(attacker, live_server)
