"""SSO and Single Logout against the live bridge with a second SP library: pysaml2 (xmlsec1).

The SP is registered from its own metadata (``saml add-sp --metadata``), signs its requests,
wants signed responses, and takes Single Logout over HTTP-Redirect or HTTP-POST (issue #12
items 4 and 6): SP-initiated SSO over Redirect, IdP-initiated SSO, and SLO in both directions
over both bindings.

Every test runs over plain http against the in-process server and over https through nginx
and the shipped server (``bridge`` fixture, tests/deployed/fixtures.py), the browser verifying the
test CA. Over https the SPs are registered once per session (the serving workers cache SP
registrations for a few seconds, registry.CACHE_SECONDS), one entity id per SLO binding.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from lxml import etree
from saml2.request import IncorrectlySigned
from saml2.response import StatusRequestDenied

from idp.csrf import origin_of
from idp.extensions import db
from idp.saml.constants import BINDING_POST, BINDING_REDIRECT
from idp.saml.models import LogoutChain, SamlLogin, ServiceProvider
from tests.helpers import csrf_from

from .pysaml2_sp import (
    ACS_URL,
    BINDING_HTTP_POST,
    BINDING_HTTP_REDIRECT,
    ENTITY_ID,
    SLO_URL,
    pysaml2_sp,
    read_form,
    sp_metadata,
)
from .test_bad_input import _sp_keypair

WIKI_ENTITY_IDS = {BINDING_HTTP_REDIRECT: ENTITY_ID, BINDING_HTTP_POST: ENTITY_ID + "/slo-post"}
SP_ORIGIN = origin_of(ACS_URL)      # the SP's pages, where its forms are posted from
DS = "{http://www.w3.org/2000/09/xmldsig#}"
SAMLP = "{urn:oasis:names:tc:SAML:2.0:protocol}"


def _client(bridge, tmp_path, binding: str, keypair: tuple[str, str]):
    idp_metadata = bridge.browser().get(bridge.issuer + "/saml/metadata").text
    client = pysaml2_sp(idp_metadata, tmp_path, cert_pem=keypair[0], key_pem=keypair[1],
                        slo_binding=binding, entity_id=WIKI_ENTITY_IDS[binding])
    client.bridge_entity_id = bridge.app.extensions["saml"].entity_id
    return client


def _register(bridge, tmp_path, binding: str, keypair: tuple[str, str]) -> None:
    """The pysaml2 SP with Single Logout over ``binding``, registered with the bridge from its
    own metadata through the CLI."""
    app, entity_id = bridge.app, WIKI_ENTITY_IDS[binding]
    metadata_file = tmp_path / "sp-metadata.xml"
    metadata_file.write_text(sp_metadata(_client(bridge, tmp_path, binding, keypair)))
    result = app.test_cli_runner().invoke(args=["saml", "add-sp", "--metadata",
                                                str(metadata_file), "--profile", "basic"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        row = db.session.query(ServiceProvider).filter_by(entity_id=entity_id).one()
        assert row.slo_url == SLO_URL and row.slo_binding == binding
        assert row.acs_urls == [ACS_URL] and row.want_authn_requests_signed


@pytest.fixture(scope="session")
def deployed_wikis() -> dict:
    """binding -> key pair of the SP registered in the deployed bridge (once per session)."""
    return {}


def _wiki(request, bridge, tmp_path, binding: str):
    # Over http the tables are emptied after each test: the SP is registered anew each time.
    registered = {} if bridge.transport == "http" else \
        request.getfixturevalue("deployed_wikis")
    if binding not in registered:
        registered[binding] = _sp_keypair()
        _register(bridge, tmp_path, binding, registered[binding])
    return _client(bridge, tmp_path, binding, registered[binding])


@pytest.fixture(params=[BINDING_HTTP_REDIRECT, BINDING_HTTP_POST], ids=["redirect", "post"])
def wiki(request, bridge, tmp_path):
    return _wiki(request, bridge, tmp_path, request.param)


@pytest.fixture
def post_wiki(request, bridge, tmp_path):
    return _wiki(request, bridge, tmp_path, BINDING_HTTP_POST)


def _sp_initiated_login(wiki, session: requests.Session):
    """SP-initiated SSO over HTTP-Redirect (signed query) -> the bridge's POST form."""
    request_id, info = wiki.prepare_for_authenticate(
        entityid=wiki.bridge_entity_id, relay_state="/wiki/page",
        binding=BINDING_HTTP_REDIRECT)
    location = dict(info["headers"])["Location"]
    assert "Signature=" in location and "SigAlg=" in location
    answer = session.get(location, allow_redirects=False)
    assert answer.status_code == 200, answer.text[:600]
    form = read_form(answer.text)
    assert form.action == ACS_URL and form.relay_state == "/wiki/page"
    return wiki.parse_authn_request_response(form.message, BINDING_HTTP_POST,
                                             outstanding={request_id: "/wiki/page"})


def _identity_ok(response, email: str) -> None:
    assert response is not None
    assert response.name_id.text == email
    assert response.ava.get("email") == [email], response.ava
    assert response.session_info()["session_index"]


def _signed_in(session: requests.Session, base_url: str) -> bool:
    return session.get(base_url + "/", allow_redirects=False).status_code == 200


def _xml(b64: str, binding: str) -> etree._Element:
    raw = base64.b64decode(b64)
    if binding == BINDING_HTTP_REDIRECT:
        import zlib

        raw = zlib.decompress(raw, -15)
    return etree.fromstring(raw)


def test_sp_initiated_sso(bridge, wiki):
    session = bridge.signed_in("student1")
    response = _sp_initiated_login(wiki, session)
    _identity_ok(response, "student1@example.edu")
    assert response.in_response_to


def test_idp_initiated_sso(bridge, wiki):
    session = bridge.signed_in("mentor1")
    answer = session.get(bridge.issuer + "/saml/sso/init",
                         params={"sp": wiki.config.entityid, "subdomain": ""})
    form = read_form(answer.text)
    assert form.action == ACS_URL
    response = wiki.parse_authn_request_response(form.message, BINDING_HTTP_POST)
    _identity_ok(response, "mentor1@example.edu")
    assert response.in_response_to is None


def _send_to_bridge(session: requests.Session, binding: str, http_info: dict):
    """What the SP's page makes the browser do: follow a redirect or submit a form."""
    if binding == BINDING_HTTP_REDIRECT:
        return session.get(dict(http_info["headers"])["Location"], allow_redirects=False)
    form = read_form(http_info["data"])
    assert form.action.endswith("/saml/slo")
    return session.post(form.action, data=form.fields, allow_redirects=False,
                        headers={"Origin": SP_ORIGIN})


def _bridge_message(answer: requests.Response, binding: str) -> tuple[str, dict]:
    """The bridge's logout message to the SP, as the SP's endpoint receives it:
    ``(message, {"relay_state", "sigalg", "signature"})``."""
    if binding == BINDING_HTTP_POST:
        assert answer.status_code == 200, answer.text[:600]
        form = read_form(answer.text)
        assert form.action == SLO_URL
        csp = answer.headers["Content-Security-Policy"]
        assert "form-action https://wiki.example.edu" in csp
        assert "<h1>Signing you out…</h1>" in answer.text
        root = _xml(form.message, binding)
        assert root.find(DS + "Signature") is not None, "POST logout messages are signed"
        return form.message, {"relay_state": form.relay_state}
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(SLO_URL + "?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    message = query.get("SAMLRequest") or query["SAMLResponse"]
    return message, {"relay_state": query.get("RelayState"), "sigalg": query["SigAlg"],
                     "signature": query["Signature"]}


def test_sp_initiated_logout(bridge, wiki):
    """SP -> bridge LogoutRequest and bridge -> SP LogoutResponse, in the SP's binding."""
    binding = wiki.config.preferred_binding["single_logout_service"][0]
    session = bridge.signed_in("student2")
    response = _sp_initiated_login(wiki, session)
    _identity_ok(response, "student2@example.edu")
    [(used, http_info)] = wiki.global_logout(response.name_id).values()
    assert used == binding
    answer = _send_to_bridge(session, binding, http_info)
    message, extra = _bridge_message(answer, binding)
    assert not _signed_in(session, bridge.issuer)
    logout_response = wiki.parse_logout_request_response(message, binding)
    assert logout_response is not None
    assert logout_response.response.status.status_code.value.endswith(":Success")
    assert wiki.handle_logout_response(logout_response)[:2] == (0, "200 Ok")
    assert not wiki.is_logged_in(response.name_id)
    if binding == BINDING_HTTP_POST:
        root = _xml(message, binding)
        assert root.find(DS + "Signature") is not None


def _bridge_sign_out(session: requests.Session, base_url: str) -> requests.Response:
    page = session.get(base_url + "/logout")
    return session.post(base_url + "/logout", data={"csrf_token": csrf_from(page.text)},
                        allow_redirects=False)


def test_idp_initiated_logout(bridge, wiki):
    """Bridge /logout -> LogoutRequest to the SP -> the SP's LogoutResponse -> chain end."""
    binding = wiki.config.preferred_binding["single_logout_service"][0]
    session = bridge.signed_in("student3")
    response = _sp_initiated_login(wiki, session)
    message, extra = _bridge_message(_bridge_sign_out(session, bridge.issuer), binding)
    root = _xml(message, binding)
    assert root.tag == SAMLP + "LogoutRequest"
    assert root.findtext("{urn:oasis:names:tc:SAML:2.0:assertion}NameID") == \
        "student3@example.edu"
    # pysaml2 checks the XML signature of a POST-bound request (see the tampering test) and
    # answers in the same binding.
    http_info = wiki.handle_logout_request(message, response.name_id, binding, **extra)
    back = _send_to_bridge(session, binding, http_info)
    assert back.status_code == 302 and back.headers["Location"].endswith("/logout")
    assert not _signed_in(session, bridge.issuer)
    with bridge.app.app_context():     # this sign-in's rows (the https database is shared)
        login = db.session.query(SamlLogin).filter_by(
            session_index=response.session_info()["session_index"]).one()
        ours = {"login_session_id": login.login_session_id}
        assert db.session.query(LogoutChain).filter_by(**ours).count() == 0
        assert all(row.ended_at is not None
                   for row in db.session.query(SamlLogin).filter_by(**ours))


def test_tampered_post_logout_request_is_refused_by_the_sp(bridge, post_wiki):
    wiki, binding = post_wiki, BINDING_HTTP_POST
    session = bridge.signed_in("student3")
    response = _sp_initiated_login(wiki, session)
    message, extra = _bridge_message(_bridge_sign_out(session, bridge.issuer), binding)
    xml = base64.b64decode(message).replace(b"student3@example.edu", b"student4@example.edu")
    with pytest.raises(IncorrectlySigned):
        wiki.handle_logout_request(base64.b64encode(xml).decode(), response.name_id, binding,
                                   **extra)


def test_replayed_logout_request_from_the_sp(bridge, wiki):
    binding = wiki.config.preferred_binding["single_logout_service"][0]
    session = bridge.signed_in("student2")
    response = _sp_initiated_login(wiki, session)
    [(_, http_info)] = wiki.global_logout(response.name_id).values()
    _bridge_message(_send_to_bridge(session, binding, http_info), binding)
    message, _ = _bridge_message(_send_to_bridge(bridge.browser(), binding, http_info),
                                 binding)
    with pytest.raises(StatusRequestDenied):
        wiki.parse_logout_request_response(message, binding)


def test_unsigned_or_tampered_post_logout_request_is_refused(bridge, post_wiki):
    """The SP registered a certificate and signed requests: a POST-bound LogoutRequest
    without a valid XML signature ends nothing."""
    wiki = post_wiki
    session = bridge.signed_in("student2")
    response = _sp_initiated_login(wiki, session)
    slo, sp_page = bridge.issuer + "/saml/slo", bridge.browser()
    _, request = wiki.create_logout_request(slo, wiki.bridge_entity_id,
                                            name_id=response.name_id,
                                            session_indexes=[response.session_info()[
                                                "session_index"]], sign=False)
    unsigned = base64.b64encode(str(request).encode()).decode()
    refused = sp_page.post(slo, data={"SAMLRequest": unsigned}, headers={"Origin": SP_ORIGIN})
    assert refused.status_code == 400 and "must sign" in refused.text
    assert "This sign-out request cannot be used" in refused.text
    _, signed = wiki.create_logout_request(slo, wiki.bridge_entity_id,
                                           name_id=response.name_id,
                                           session_indexes=["_other-index"], sign=True)
    tampered = str(signed).replace("_other-index",
                                   response.session_info()["session_index"])
    refused = sp_page.post(slo, headers={"Origin": SP_ORIGIN}, data={
        "SAMLRequest": base64.b64encode(tampered.encode()).decode()})
    assert refused.status_code == 400 and "signature is not valid" in refused.text
    assert _signed_in(session, bridge.issuer)


def test_idp_metadata_advertises_logout_over_both_bindings(bridge):
    root = etree.fromstring(bridge.browser().get(bridge.issuer + "/saml/metadata").content)
    services = {(e.get("Binding"), e.get("Location")) for e in root.iter(
        "{urn:oasis:names:tc:SAML:2.0:metadata}SingleLogoutService")}
    assert services == {(BINDING_REDIRECT, bridge.issuer + "/saml/slo"),
                        (BINDING_POST, bridge.issuer + "/saml/slo")}
