"""SP-initiated and IdP-initiated SSO against the live bridge, checked by the Zulip-faithful SP
(python3-saml strict, as social-core configures it)."""

from __future__ import annotations

import base64
import json
import re
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from lxml import etree
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

from idp.extensions import db
from idp.login.launch import sign_launch_token
from idp.saml.models import SamlLogin
from tests.helpers import DEMO_PASSWORD, csrf_from, http_login

from .conftest import register_sp
from .zulip_sp import ZULIP_ACS, posted_form

DS = "{http://www.w3.org/2000/09/xmldsig#}"


def _sign_in_through_form(session: requests.Session, base_url: str, start_url: str,
                          login: str) -> requests.Response:
    """Follow the bridge from ``start_url`` to its login form, submit it, and return the
    page that carries the SAML POST form."""
    first = session.get(start_url, allow_redirects=False)
    assert first.status_code == 302, first.text[:400]
    assert first.headers["Location"].startswith("/login?")
    form_page = session.get(base_url + first.headers["Location"])
    assert form_page.status_code == 200
    next_path = parse_qs(urlsplit(first.headers["Location"]).query)["next"][0]
    posted = session.post(base_url + "/login", data={
        "csrf_token": csrf_from(form_page.text), "login": login, "password": DEMO_PASSWORD,
        "next": next_path}, allow_redirects=False)
    assert posted.status_code == 302
    answer = session.get(base_url + posted.headers["Location"])
    assert answer.status_code == 200
    return answer


def _attributes_ok(auth, email: str) -> dict:
    assert auth.get_errors() == [], auth.get_last_error_reason()
    assert auth.is_authenticated()
    assert auth.get_nameid() == email
    assert auth.get_nameid_format() == "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    assert auth.get_session_index()
    return auth.get_attributes()


def test_metadata_is_schema_valid_and_complete(app, live_server, idp_entity_id):
    response = requests.get(live_server + "/saml/metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/samlmetadata+xml"
    validated = OneLogin_Saml2_XML.validate_xml(response.content, "saml-schema-metadata-2.0.xsd")
    assert not isinstance(validated, str), validated
    root = etree.fromstring(response.content)
    assert root.get("entityID") == idp_entity_id == live_server + "/saml/metadata"
    ns = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": DS[1:-1]}
    sso = {(e.get("Binding").rsplit(":", 1)[1], e.get("Location"))
           for e in root.iterfind(".//md:SingleSignOnService", ns)}
    assert sso == {("HTTP-Redirect", live_server + "/saml/sso"),
                   ("HTTP-POST", live_server + "/saml/sso")}
    slo = root.find(".//md:SingleLogoutService", ns)
    assert slo.get("Binding").endswith("HTTP-Redirect")
    assert slo.get("Location") == live_server + "/saml/slo"
    assert root.findtext(".//md:NameIDFormat", namespaces=ns) == \
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    certs = [e.text for e in root.iterfind(".//ds:X509Certificate", ns)]
    assert certs == [app.extensions["signing_keys"].current().certificate_b64]


def test_sp_initiated_login_through_the_real_form(app, live_server, zulip):
    session = requests.Session()
    answer = _sign_in_through_form(session, live_server, zulip.login_url(), "student1")
    csp = answer.headers["Content-Security-Policy"]
    assert "form-action https://zulip.example.edu" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script src=\"/static/saml/autosubmit.js\"" in answer.text
    assert "<script>" not in answer.text and '<button type="submit">' in answer.text
    assert answer.headers["Cache-Control"] == "no-store"
    form = posted_form(answer.text)
    assert form.action == ZULIP_ACS
    assert json.loads(form.relay_state) == {"idp": "lms", "next": ""}

    auth = zulip.process_response(form.saml_response, form.relay_state, zulip.last_request_id)
    attributes = _attributes_ok(auth, "student1@example.edu")
    assert attributes["email"] == ["student1@example.edu"]
    assert attributes["zulip_role"] == ["member"]
    assert attributes["lms_kind"] == ["student"] and attributes["lms_id"] == ["1"]
    assert auth.get_last_response_in_response_to() == zulip.last_request_id

    xml = etree.fromstring(base64.b64decode(form.saml_response))
    assert xml.get("Destination") == ZULIP_ACS
    # Signature right after Issuer, on the Response and on the Assertion.
    for element in (xml, xml.find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion")):
        assert element[0].tag.endswith("Issuer") and element[1].tag == DS + "Signature"
        method = element[1].find(f"{DS}SignedInfo/{DS}SignatureMethod").get("Algorithm")
        assert method == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        reference = element[1].find(f"{DS}SignedInfo/{DS}Reference")
        assert reference.get("URI") == "#" + element.get("ID")
    names = [a.get("Name") for a in xml.iter("{urn:oasis:names:tc:SAML:2.0:assertion}Attribute")]
    assert len(names) == len(set(names))

    # Signed in already: a second request is answered at once, with a new SessionIndex.
    again = session.get(zulip.login_url(), allow_redirects=False)
    assert again.status_code == 200
    second = zulip.process_response(posted_form(again.text).saml_response, None,
                                    zulip.last_request_id)
    assert second.is_authenticated()
    assert second.get_session_index() != auth.get_session_index()
    with app.app_context():
        assert db.session.query(SamlLogin).count() == 2


def test_roles_and_groups_for_student_mentor_and_staff(app, live_server, zulip):
    from idp.lms.directory import get_directory

    expected = {"student1": ("member", "students"), "mentor1": ("moderator", "mentors"),
                "staff1": ("administrator", "mentors")}
    for login, (role, kind_group) in expected.items():
        with app.app_context():
            person = get_directory().find(login)
        session = http_login(live_server, login)
        answer = session.get(live_server + "/saml/sso/init?" + urlencode(
            {"sp": zulip.entity_id, "subdomain": ""}))
        form = posted_form(answer.text)
        auth = zulip.process_response(form.saml_response, form.relay_state, None)
        attributes = _attributes_ok(auth, f"{login}@example.edu")
        assert attributes["zulip_role"] == [role]
        assert attributes["zulip_groups"] == list(person.groups)
        assert attributes["zulip_groups"][0] == kind_group
        assert ("staff" in attributes["zulip_groups"]) == (login == "staff1")
        if login == "student1":
            assert any(g.startswith("course-") for g in attributes["zulip_groups"])
        assert attributes["lms_kind"] == [person.kind]
        assert attributes["lms_id"] == [str(person.lms_id)]
        assert attributes["first_name"] == [person.first_name]
        assert attributes["last_name"] == [person.last_name]


def test_idp_initiated_with_relay_state_json(app, live_server, zulip):
    session = http_login(live_server, "student2")
    answer = session.get(live_server + "/saml/sso/init?" + urlencode(
        {"sp": zulip.entity_id, "subdomain": "physics"}))
    form = posted_form(answer.text)
    assert json.loads(form.relay_state) == {"subdomain": "physics"}
    xml = etree.fromstring(base64.b64decode(form.saml_response))
    assert xml.get("InResponseTo") is None
    assert b"InResponseTo" not in base64.b64decode(form.saml_response)
    auth = zulip.process_response(form.saml_response, form.relay_state, None)
    _attributes_ok(auth, "student2@example.edu")


def test_idp_initiated_asks_for_login_first(app, live_server, zulip):
    session = requests.Session()
    start = live_server + "/saml/sso/init?" + urlencode({"sp": zulip.entity_id,
                                                          "subdomain": ""})
    answer = _sign_in_through_form(session, live_server, start, "mentor1")
    form = posted_form(answer.text)
    assert json.loads(form.relay_state) == {"subdomain": ""}
    _attributes_ok(zulip.process_response(form.saml_response, form.relay_state, None),
                   "mentor1@example.edu")


def test_launch_link_lands_in_zulip(app, live_server, zulip):
    with app.app_context():
        token = sign_launch_token(app.config["IDP"], "student:3")
    next_path = "/saml/sso/init?" + urlencode({"sp": zulip.entity_id, "subdomain": ""})
    session = requests.Session()
    answer = session.get(live_server + "/launch?" + urlencode({"token": token,
                                                               "next": next_path}))
    assert answer.status_code == 200
    form = posted_form(answer.text)
    _attributes_ok(zulip.process_response(form.saml_response, form.relay_state, None),
                   "student3@example.edu")


def test_open_zulip_link_on_the_start_page(app, live_server, zulip):
    session = http_login(live_server, "student1")
    page = session.get(live_server + "/")
    assert "Open Zulip" in page.text
    href = re.search(r'href="(/saml/sso/init\?[^"]+)"', page.text).group(1)
    answer = session.get(live_server + unescape(href))
    form = posted_form(answer.text)
    assert json.loads(form.relay_state) == {"subdomain": ""}
    _attributes_ok(zulip.process_response(form.saml_response, form.relay_state, None),
                   "student1@example.edu")


def test_no_open_zulip_link_without_a_registered_sp(app, live_server):
    session = http_login(live_server, "student1")
    assert "Open Zulip" not in session.get(live_server + "/").text


def test_force_authn_asks_for_the_password_again(app, live_server, zulip):
    session = http_login(live_server, "student1")
    first = session.get(zulip.login_url(force_authn=True), allow_redirects=False)
    assert first.status_code == 302
    assert "reauth=1" in first.headers["Location"]
    answer = _sign_in_through_form(session, live_server, zulip.login_url(force_authn=True),
                                   "student1")
    auth = zulip.process_response(posted_form(answer.text).saml_response, None,
                                  zulip.last_request_id)
    _attributes_ok(auth, "student1@example.edu")


def test_is_passive_without_session_answers_no_passive(app, live_server, zulip):
    answer = requests.get(zulip.login_url(is_passive=True), allow_redirects=False)
    assert answer.status_code == 200
    form = posted_form(answer.text)
    xml = etree.fromstring(base64.b64decode(form.saml_response))
    codes = [e.get("Value") for e in xml.iter("{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode")]
    assert codes == ["urn:oasis:names:tc:SAML:2.0:status:Responder",
                     "urn:oasis:names:tc:SAML:2.0:status:NoPassive"]
    assert xml.find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion") is None
    auth = zulip.process_response(form.saml_response, form.relay_state, zulip.last_request_id)
    assert not auth.is_authenticated()
    assert auth.get_errors()


def test_is_passive_with_session_answers_at_once(app, live_server, zulip):
    session = http_login(live_server, "student1")
    answer = session.get(zulip.login_url(is_passive=True), allow_redirects=False)
    auth = zulip.process_response(posted_form(answer.text).saml_response, None,
                                  zulip.last_request_id)
    _attributes_ok(auth, "student1@example.edu")


def test_signing_only_the_assertion_or_only_the_response(app, live_server, zulip):
    session = http_login(live_server, "student1")
    for assertion, response in ((True, False), (False, True)):
        register_sp(app, sign_assertion=assertion, sign_response=response)
        answer = session.get(zulip.login_url(), allow_redirects=False)
        form = posted_form(answer.text)
        xml = etree.fromstring(base64.b64decode(form.saml_response))
        assert (xml.find(DS + "Signature") is not None) is response
        auth = zulip.process_response(form.saml_response, None, zulip.last_request_id)
        _attributes_ok(auth, "student1@example.edu")


def test_deactivated_person_with_a_live_session_gets_no_assertion(app, live_server, zulip,
                                                                   lms_admin):
    session = http_login(live_server, "student2")
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE id = 2")
    for url in (zulip.login_url(), live_server + "/saml/sso/init?" + urlencode(
            {"sp": zulip.entity_id, "subdomain": ""})):
        answer = session.get(url, allow_redirects=False)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/login?")
        assert "SAMLResponse" not in answer.text
    with app.app_context():
        assert db.session.query(SamlLogin).count() == 0


def _status(form) -> list[str]:
    xml = etree.fromstring(base64.b64decode(form.saml_response))
    assert xml.find("{urn:oasis:names:tc:SAML:2.0:assertion}Assertion") is None
    return [e.get("Value").rsplit(":", 1)[1]
            for e in xml.iter("{urn:oasis:names:tc:SAML:2.0:protocol}StatusCode")]


def test_requested_subject_naming_another_person_is_refused(app, live_server, zulip):
    """Issue #12 item 3, SAML core §3.4.1.4: an AuthnRequest whose Subject names student2,
    sent while student1 is signed in, gets Responder/AuthnFailed, never student1's assertion."""
    session = http_login(live_server, "student1")
    answer = session.get(zulip.login_url(name_id_value_req="student2@example.edu"),
                         allow_redirects=False)
    form = posted_form(answer.text)
    assert _status(form) == ["Responder", "AuthnFailed"]
    auth = zulip.process_response(form.saml_response, form.relay_state, zulip.last_request_id)
    assert not auth.is_authenticated() and auth.get_errors()
    with app.app_context():
        assert db.session.query(SamlLogin).count() == 0


def test_requested_subject_naming_the_signed_in_person_is_answered(app, live_server, zulip):
    session = http_login(live_server, "student1")
    answer = session.get(zulip.login_url(name_id_value_req="Student1@Example.edu"),
                         allow_redirects=False)
    auth = zulip.process_response(posted_form(answer.text).saml_response, None,
                                  zulip.last_request_id)
    _attributes_ok(auth, "student1@example.edu")


def test_requested_subject_is_checked_after_signing_in(app, live_server, zulip):
    """Not signed in yet: the person signs in first, then the Subject is compared."""
    answer = _sign_in_through_form(requests.Session(), live_server, zulip.login_url(
        name_id_value_req="mentor1@example.edu"), "mentor1")
    _attributes_ok(zulip.process_response(posted_form(answer.text).saml_response, None,
                                          zulip.last_request_id), "mentor1@example.edu")
    answer = _sign_in_through_form(requests.Session(), live_server, zulip.login_url(
        name_id_value_req="mentor1@example.edu"), "student3")
    assert _status(posted_form(answer.text)) == ["Responder", "AuthnFailed"]


def test_requested_subject_the_bridge_cannot_identify(app, live_server, zulip_registered):
    from .test_bad_input import _authn_request, _deflate

    session = http_login(live_server, "student1")
    for index, body in enumerate((
            '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:'
            'persistent">student1@example.edu</saml:NameID></saml:Subject>',
            '<saml:Subject><saml:EncryptedID/></saml:Subject>',
            '<saml:Subject><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:'
            'bearer"/></saml:Subject>')):
        xml = _authn_request(live_server, request_id=f"_subject{index}", body=body)
        answer = session.get(live_server + "/saml/sso?" + urlencode(
            {"SAMLRequest": _deflate(xml)}), allow_redirects=False)
        assert _status(posted_form(answer.text)) == ["Requester", "UnknownPrincipal"]
    with app.app_context():
        assert db.session.query(SamlLogin).count() == 0
