"""Single Logout both ways (HTTP-Redirect), with the Zulip-faithful SP: Zulip processes the
bridge's signed LogoutRequest with wantMessagesSigned forced on, and the bridge answers
Zulip's LogoutRequest with a signed LogoutResponse."""

from __future__ import annotations

import base64
import re
import zlib
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from lxml import etree
from onelogin.saml2.logout_request import OneLogin_Saml2_Logout_Request

from idp.extensions import db
from idp.models import LoginSession
from idp.saml.models import LogoutChain, SamlLogin
from tests.helpers import csrf_from, http_login

from .conftest import register_sp
from .zulip_sp import ZULIP_ACS, ZulipSP, posted_form

OTHER_ENTITY = "https://wiki.example.edu/sp"
OTHER_ACS = "https://wiki.example.edu/acs"
OTHER_SLO = OTHER_ACS  # like Zulip, SLO and ACS share one URL


def _login_at(zulip: ZulipSP, session: requests.Session, email: str) -> str:
    """SP-initiated login for a signed-in session; returns the SessionIndex."""
    answer = session.get(zulip.login_url(), allow_redirects=False)
    auth = zulip.process_response(posted_form(answer.text).saml_response, None,
                                  zulip.last_request_id)
    assert auth.is_authenticated() and auth.get_nameid() == email
    return auth.get_session_index()


def _bridge_logout(session: requests.Session, base_url: str) -> requests.Response:
    page = session.get(base_url + "/logout")
    return session.post(base_url + "/logout", data={"csrf_token": csrf_from(page.text)},
                        allow_redirects=False)


def _signed_in(session: requests.Session, base_url: str) -> bool:
    return session.get(base_url + "/", allow_redirects=False).status_code == 200


def _inflate(value: str) -> bytes:
    return zlib.decompress(base64.b64decode(value), -15)


def test_idp_initiated_logout_through_zulip(app, live_server, zulip):
    session = http_login(live_server, "student1")
    session_index = _login_at(zulip, session, "student1@example.edu")
    response = _bridge_logout(session, live_server)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(ZULIP_ACS + "?SAMLRequest=")
    escapes = re.findall(r"%[0-9A-Fa-f]{2}", location)
    assert escapes and all(e == e.upper() for e in escapes), "upper-case percent-encoding"
    request_xml = _inflate(parse_qs(urlsplit(location).query)["SAMLRequest"][0])
    assert OneLogin_Saml2_Logout_Request.get_nameid(request_xml) == "student1@example.edu"
    assert OneLogin_Saml2_Logout_Request.get_session_indexes(request_xml) == [session_index]

    auth, back = zulip.process_slo(location, wantMessagesSigned=True)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert back.startswith(live_server + "/saml/slo?SAMLResponse=")
    assert not _signed_in(session, live_server)
    final = session.get(back, allow_redirects=False)
    assert final.status_code == 302 and final.headers["Location"].endswith("/logout")
    assert "signed out" in session.get(live_server + "/logout").text.lower()
    with app.app_context():
        assert db.session.query(LogoutChain).count() == 0
        assert all(row.ended_at is not None for row in db.session.query(SamlLogin))


def test_zulip_refuses_an_unsigned_or_tampered_logout_request(app, live_server, zulip):
    session = http_login(live_server, "student1")
    _login_at(zulip, session, "student1@example.edu")
    location = _bridge_logout(session, live_server).headers["Location"]
    unsigned = location.split("&SigAlg=")[0]
    auth, _ = zulip.process_slo(unsigned, wantMessagesSigned=True)
    assert auth.get_errors()
    relay = parse_qs(urlsplit(location).query)["RelayState"][0]
    tampered = location.replace("RelayState=" + relay, "RelayState=" + relay[::-1])
    auth, _ = zulip.process_slo(tampered, wantMessagesSigned=True)
    assert auth.get_errors()


def test_logout_without_saml_logins_ends_at_the_bridge(app, live_server, zulip):
    session = http_login(live_server, "student1")
    response = _bridge_logout(session, live_server)
    assert response.status_code == 200
    assert not _signed_in(session, live_server)


def test_sp_initiated_logout_from_zulip(app, live_server, zulip):
    session = http_login(live_server, "student2")
    session_index = _login_at(zulip, session, "student2@example.edu")
    url = zulip.logout_url("student2@example.edu", session_index)
    response = session.get(url, allow_redirects=False)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(ZULIP_ACS + "?SAMLResponse=")
    assert "Signature=" in location and "RelayState=%2F" in location
    auth, _ = zulip.process_slo(location, request_id=zulip.last_request_id,
                                wantMessagesSigned=True)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert not _signed_in(session, live_server)
    with app.app_context():
        assert db.session.query(LoginSession).filter(
            LoginSession.revoked_at.is_(None)).count() == 0


def test_sp_initiated_logout_by_session_index_from_another_browser(app, live_server, zulip):
    """Zulip's LogoutRequest names the SessionIndex: the bridge ends that session even when
    the browser that carries the request lost its cookie."""
    session = http_login(live_server, "student3")
    session_index = _login_at(zulip, session, "student3@example.edu")
    response = requests.get(zulip.logout_url("student3@example.edu", session_index),
                            allow_redirects=False)
    assert response.headers["Location"].startswith(ZULIP_ACS + "?SAMLResponse=")
    assert not _signed_in(session, live_server)


def test_sp_initiated_logout_with_wrong_name_id_ends_nothing(app, live_server, zulip):
    session = http_login(live_server, "student1")
    session_index = _login_at(zulip, session, "student1@example.edu")
    response = requests.get(zulip.logout_url("student9@example.edu", session_index),
                            allow_redirects=False)
    assert response.headers["Location"].startswith(ZULIP_ACS + "?SAMLResponse=")
    assert _signed_in(session, live_server)


def test_sp_initiated_logout_chains_through_the_other_sp(app, live_server, zulip):
    register_sp(app, entity_id=OTHER_ENTITY, acs_urls=[OTHER_ACS], slo_url=OTHER_SLO)
    other = ZulipSP(idp_entity_id=zulip.idp_entity_id, idp_base_url=live_server,
                    idp_cert_b64=zulip.idp_cert_b64, entity_id=OTHER_ENTITY,
                    acs_url=OTHER_ACS, host="wiki.example.edu")
    session = http_login(live_server, "mentor1")
    zulip_index = _login_at(zulip, session, "mentor1@example.edu")
    _login_at(other, session, "mentor1@example.edu")

    first = session.get(zulip.logout_url("mentor1@example.edu", zulip_index),
                        allow_redirects=False)
    to_other = first.headers["Location"]
    assert to_other.startswith(OTHER_SLO + "?SAMLRequest=")
    auth, back = other.process_slo(to_other, wantMessagesSigned=True)
    assert auth.get_errors() == [], auth.get_last_error_reason()
    final = session.get(back, allow_redirects=False)
    to_zulip = final.headers["Location"]
    assert to_zulip.startswith(ZULIP_ACS + "?SAMLResponse=")
    auth, _ = zulip.process_slo(to_zulip, request_id=zulip.last_request_id,
                                wantMessagesSigned=True)
    assert auth.get_errors() == []
    assert not _signed_in(session, live_server)


def test_slo_bad_input(app, live_server, zulip):
    session = http_login(live_server, "student1")
    session_index = _login_at(zulip, session, "student1@example.edu")
    url = zulip.logout_url("student1@example.edu", session_index)
    query = parse_qs(urlsplit(url).query)
    xml = _inflate(query["SAMLRequest"][0])

    def send(message_xml: bytes, param: str = "SAMLRequest", **extra) -> requests.Response:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        encoded = base64.b64encode(compressor.compress(message_xml) + compressor.flush())
        return requests.get(live_server + "/saml/slo?" + urlencode(
            {param: encoded.decode(), **extra}), allow_redirects=False)

    def refused(response: requests.Response, text: str) -> None:
        assert response.status_code == 400 and "Location" not in response.headers
        assert text in response.text, response.text[-900:]

    refused(send(xml.replace(b"https://zulip.example.edu</saml:Issuer>",
                             b"https://evil.example.com</saml:Issuer>")), "not registered")
    refused(send(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'), "DTD")
    refused(requests.get(live_server + "/saml/slo?SAMLRequest=%%%"), "not valid")
    refused(send(xml.replace(b'Destination="', b'Destination="https://x.example.com/')),
            "another identity provider")
    # A LogoutResponse with an unknown RelayState, or none.
    response_xml = (b'<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"'
                    b' xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r" '
                    b'Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>'
                    b'https://zulip.example.edu</saml:Issuer><samlp:Status><samlp:StatusCode '
                    b'Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
                    b'</samlp:LogoutResponse>')
    refused(send(response_xml, "SAMLResponse", RelayState="unknown-relay-state-123"),
            "expired or is unknown")
    refused(send(response_xml, "SAMLResponse"), "expired or is unknown")
    assert _signed_in(session, live_server)


def test_slo_bad_signature_from_an_sp_with_a_certificate(app, live_server, zulip):
    from .test_bad_input import _sp_keypair

    sp_cert, sp_key = _sp_keypair()
    register_sp(app, certificate=sp_cert)
    signer = ZulipSP(idp_entity_id=zulip.idp_entity_id, idp_base_url=live_server,
                     idp_cert_b64=zulip.idp_cert_b64, sp_cert=sp_cert, sp_key=sp_key,
                     security={"logoutRequestSigned": True})
    session = http_login(live_server, "student1")
    session_index = _login_at(signer, session, "student1@example.edu")
    url = signer.logout_url("student1@example.edu", session_index)
    signature = parse_qs(urlsplit(url).query)["Signature"][0]
    broken = base64.b64encode(b"\x00" + base64.b64decode(signature)[1:]).decode()
    bad = url.split("&Signature=")[0] + "&" + urlencode({"Signature": broken})
    response = session.get(bad, allow_redirects=False)
    assert response.status_code == 400 and "signature is not valid" in response.text
    assert _signed_in(session, live_server)
    good = session.get(url, allow_redirects=False)
    assert good.headers["Location"].startswith(ZULIP_ACS + "?SAMLResponse=")
    assert not _signed_in(session, live_server)


def test_logout_response_for_another_request_is_refused(app, live_server, zulip):
    session = http_login(live_server, "student1")
    _login_at(zulip, session, "student1@example.edu")
    location = _bridge_logout(session, live_server).headers["Location"]
    _, back = zulip.process_slo(location, wantMessagesSigned=True)
    query = parse_qs(urlsplit(back).query)
    xml = _inflate(query["SAMLResponse"][0])
    forged = re.sub(rb'InResponseTo="[^"]+"', b'InResponseTo="_other"', xml)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(compressor.compress(forged) + compressor.flush()).decode()
    response = requests.get(live_server + "/saml/slo?" + urlencode(
        {"SAMLResponse": encoded, "RelayState": query["RelayState"][0]}),
        allow_redirects=False)
    assert response.status_code == 400 and "does not answer" in response.text


def test_sp_answering_logout_with_an_error_still_ends_the_chain(app, live_server, zulip):
    from idp import clock
    from idp.saml.codec import encode_redirect
    from idp.saml.messages import build_logout_response

    session = http_login(live_server, "student1")
    _login_at(zulip, session, "student1@example.edu")
    location = _bridge_logout(session, live_server).headers["Location"]
    query = parse_qs(urlsplit(location).query)
    request_id = re.search(rb'ID="([^"]+)"', _inflate(query["SAMLRequest"][0])).group(1)
    xml = etree.tostring(build_logout_response(
        issuer=zulip.entity_id, destination=live_server + "/saml/slo",
        in_response_to=request_id.decode(), code="urn:oasis:names:tc:SAML:2.0:status:Responder",
        now=clock.now()))
    response = session.get(live_server + "/saml/slo?" + urlencode(
        {"SAMLResponse": encode_redirect(xml), "RelayState": query["RelayState"][0]}),
        allow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"].endswith("/logout")
    assert not _signed_in(session, live_server)
    with app.app_context():
        assert db.session.query(LogoutChain).count() == 0


def _status_codes(url: str) -> list[str]:
    xml = _inflate(parse_qs(urlsplit(url).query)["SAMLResponse"][0])
    return re.findall(rb'StatusCode Value="([^"]+)"', xml)


def test_replayed_logout_request_gets_an_error_status(app, live_server, zulip):
    """Issue #12 item 2: the same LogoutRequest twice is answered Success once, then with
    Requester/RequestDenied (SAML core §3.2.2.2), and ends nothing the second time."""
    session = http_login(live_server, "student2")
    session_index = _login_at(zulip, session, "student2@example.edu")
    url = zulip.logout_url("student2@example.edu", session_index)
    first = requests.get(url, allow_redirects=False)
    assert _status_codes(first.headers["Location"]) == [
        b"urn:oasis:names:tc:SAML:2.0:status:Success"]
    assert not _signed_in(session, live_server)

    again = http_login(live_server, "student2")
    _login_at(zulip, again, "student2@example.edu")
    replay = again.get(url, allow_redirects=False)
    assert replay.status_code == 302
    assert _status_codes(replay.headers["Location"]) == [
        b"urn:oasis:names:tc:SAML:2.0:status:Requester",
        b"urn:oasis:names:tc:SAML:2.0:status:RequestDenied"]
    auth, _ = zulip.process_slo(replay.headers["Location"], request_id=zulip.last_request_id,
                                wantMessagesSigned=True)
    assert auth.get_errors(), "Zulip must not take a replay answer for a success"
    assert _signed_in(again, live_server)


def test_seen_logout_request_ids_are_kept_until_the_window_has_passed(app, live_server, zulip):
    from idp import clock
    from idp.saml.housekeeping import prune
    from idp.saml.models import SeenLogoutRequest

    session = http_login(live_server, "student1")
    url = zulip.logout_url("student1@example.edu", _login_at(zulip, session,
                                                              "student1@example.edu"))
    requests.get(url, allow_redirects=False)
    with app.app_context():
        assert prune(3600)["seen logout requests"] == 0
        assert db.session.query(SeenLogoutRequest).count() == 1
        skew = app.extensions["saml"].clock_skew
        clock.advance(skew + 61)
        assert prune(3600)["seen logout requests"] == 1
        db.session.commit()
    # Past the window the same request is too old, so forgetting its ID opens no replay.
    response = requests.get(url, allow_redirects=False)
    assert response.status_code == 400 and "too old" in response.text


def test_expired_logout_request_is_refused(app, live_server, zulip):
    from idp import clock

    session = http_login(live_server, "student1")
    session_index = _login_at(zulip, session, "student1@example.edu")
    now = clock.now()
    xml = (f'<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
           f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_expired" Version="2.0" '
           f'IssueInstant="{now.strftime("%Y-%m-%dT%H:%M:%SZ")}" NotOnOrAfter="2020-01-01T'
           f'00:00:00Z"><saml:Issuer>{zulip.entity_id}</saml:Issuer><saml:NameID>student1'
           f'@example.edu</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex>'
           '</samlp:LogoutRequest>').encode()
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    encoded = base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()
    response = requests.get(live_server + "/saml/slo?" + urlencode({"SAMLRequest": encoded}),
                            allow_redirects=False)
    assert response.status_code == 400 and "expired (NotOnOrAfter)" in response.text
    assert "This sign-out request cannot be used" in response.text
    assert _signed_in(session, live_server)
