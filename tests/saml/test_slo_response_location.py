"""An SP's SingleLogoutService ResponseLocation (SAML metadata §2.2.2): LogoutResponses go
there, LogoutRequests still go to its Location, over HTTP-Redirect and HTTP-POST; ``saml
add-sp --metadata`` reads and stores it, and refuses one that is not an absolute https URL.

Two SP libraries: python3-saml (Zulip's, Redirect) and pysaml2 (Redirect and POST), each
registered from its own metadata with a ResponseLocation added to its SingleLogoutService.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth

from idp.extensions import db
from idp.saml.metadata import read_sp_metadata
from idp.saml.models import ServiceProvider
from tests.helpers import csrf_from, http_login

from .pysaml2_sp import (
    BINDING_HTTP_POST,
    BINDING_HTTP_REDIRECT,
    SLO_URL,
    pysaml2_sp,
    read_form,
    sp_metadata,
)
from .test_bad_input import _sp_keypair
from .test_pysaml2 import _bridge_sign_out, _send_to_bridge, _signed_in, _sp_initiated_login
from .test_slo import _login_at
from .zulip_sp import ZULIP_ACS, ZulipSP

MD = "{urn:oasis:names:tc:SAML:2.0:metadata}"
ZULIP_RESPONSES = "https://zulip.example.edu/complete/saml/logout-done"
WIKI_RESPONSES = "https://wiki-logout.example.edu/saml/slo-done"  # another host: form-action


def with_response_location(metadata: str, response_url: str, *, keep: int = 1) -> str:
    """The metadata with ``response_url`` as the first SingleLogoutService's
    ResponseLocation (and only its first ``keep`` SingleLogoutService elements)."""
    root = etree.fromstring(metadata.encode())
    services = list(root.iter(MD + "SingleLogoutService"))
    for extra in services[keep:]:
        extra.getparent().remove(extra)
    services[0].set("ResponseLocation", response_url)
    return etree.tostring(root, encoding="unicode")


def add_sp(app, tmp_path, metadata: str, *extra: str):
    path = tmp_path / "sp-metadata.xml"
    path.write_text(metadata)
    return app.test_cli_runner().invoke(args=["saml", "add-sp", "--metadata", str(path),
                                              *extra])


@pytest.fixture
def zulip_metadata(app) -> str:
    return ZulipSP(idp_entity_id="x", idp_base_url="https://idp.example.edu",
                   idp_cert_b64=app.extensions["signing_keys"].current().certificate_b64
                   ).metadata()


# -- reading and storing -------------------------------------------------------------------

def test_metadata_reader_keeps_the_response_location_per_binding(zulip_metadata):
    meta = read_sp_metadata(with_response_location(zulip_metadata, ZULIP_RESPONSES).encode())
    assert meta.slo_endpoint() == (ZULIP_ACS, BINDING_HTTP_REDIRECT)
    assert meta.slo_response_url(BINDING_HTTP_REDIRECT) == ZULIP_RESPONSES
    assert meta.slo_response_url(BINDING_HTTP_POST) is None
    plain = read_sp_metadata(zulip_metadata.encode())
    assert plain.slo_response_url(BINDING_HTTP_REDIRECT) is None


def test_add_sp_stores_and_lists_the_response_location(app, tmp_path, zulip_metadata):
    result = add_sp(app, tmp_path, with_response_location(zulip_metadata, ZULIP_RESPONSES))
    assert result.exit_code == 0, result.output
    assert f"responses to {ZULIP_RESPONSES}" in result.output
    with app.app_context():
        row = db.session.query(ServiceProvider).one()
        assert (row.slo_url, row.slo_response_url) == (ZULIP_ACS, ZULIP_RESPONSES)
    listed = app.test_cli_runner().invoke(args=["saml", "list-sps"]).output
    assert f"SLO: {ZULIP_ACS} (HTTP-Redirect), responses to {ZULIP_RESPONSES}" in listed


@pytest.mark.parametrize("hostile", [
    "javascript:alert(1)",
    "/complete/saml/logout-done",                    # relative
    "//zulip.example.edu/logout-done",               # scheme-relative
    "http://zulip.example.edu/complete/saml/",       # leaves TLS
    "https://zulip.example.edu/done#fragment",
    "https://zulip.example.edu/do ne",
    "",
    "https://zulip.example.edu/" + "x" * 2100,
    "data:text/html,<script>alert(1)</script>",
])
def test_add_sp_refuses_a_hostile_response_location(app, tmp_path, zulip_metadata, hostile):
    result = add_sp(app, tmp_path, with_response_location(zulip_metadata, hostile))
    assert result.exit_code == 1, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("Error: ") and "ResponseLocation" in line, result.output
    with app.app_context():
        assert db.session.query(ServiceProvider).count() == 0  # nothing half-written


def test_add_sp_by_hand_takes_a_response_url_with_its_slo_url(app):
    runner = app.test_cli_runner()
    base = ["saml", "add-sp", "--entity-id", "https://chat.example.edu", "--acs-url",
            "https://chat.example.edu/complete/saml/"]
    alone = runner.invoke(args=[*base, "--slo-response-url", "https://chat.example.edu/done"])
    assert alone.exit_code == 1 and "needs the SLO Location" in alone.output
    ok = runner.invoke(args=[*base, "--slo-url", "https://chat.example.edu/complete/saml/",
                             "--slo-response-url", "https://chat.example.edu/done"])
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        assert db.session.query(ServiceProvider).one().slo_response_url == \
            "https://chat.example.edu/done"


# -- python3-saml (Zulip), HTTP-Redirect ------------------------------------------------------

def _zulip_at(zulip: ZulipSP, url: str) -> OneLogin_Saml2_Auth:
    """python3-saml receiving a logout message at ``url`` (its path is the endpoint's)."""
    parts = urlsplit(url)
    data = {"https": "on", "http_host": parts.netloc, "script_name": parts.path,
            "get_data": dict(parse_qsl(parts.query, keep_blank_values=True)), "post_data": {}}
    return OneLogin_Saml2_Auth(data, zulip.config(wantMessagesSigned=True))


def test_zulip_gets_its_logout_response_at_the_response_location(app, live_server, zulip,
                                                                  tmp_path, zulip_metadata):
    result = add_sp(app, tmp_path, with_response_location(zulip_metadata, ZULIP_RESPONSES),
                    "--replace")
    assert result.exit_code == 0, result.output
    session = http_login(live_server, "student2")
    session_index = _login_at(zulip, session, "student2@example.edu")
    answer = session.get(zulip.logout_url("student2@example.edu", session_index),
                         allow_redirects=False)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(ZULIP_RESPONSES + "?SAMLResponse=")  # not the Location
    auth = _zulip_at(zulip, location)
    auth.process_slo(keep_local_session=True, request_id=zulip.last_request_id)
    assert auth.get_errors() == [], auth.get_last_error_reason()  # Destination matches too
    # a replay is answered (with an error status) at the same place
    again = requests.get(zulip.logout_url("student2@example.edu", session_index),
                         allow_redirects=False)
    assert again.headers["Location"].startswith(ZULIP_RESPONSES + "?SAMLResponse=")


def test_the_bridges_logout_request_still_goes_to_the_location(app, live_server, zulip,
                                                                tmp_path, zulip_metadata):
    add_sp(app, tmp_path, with_response_location(zulip_metadata, ZULIP_RESPONSES), "--replace")
    session = http_login(live_server, "student3")
    _login_at(zulip, session, "student3@example.edu")
    page = session.get(live_server + "/logout")
    answer = session.post(live_server + "/logout", data={"csrf_token": csrf_from(page.text)},
                          allow_redirects=False)
    assert answer.headers["Location"].startswith(ZULIP_ACS + "?SAMLRequest=")


# -- pysaml2, HTTP-Redirect and HTTP-POST ------------------------------------------------------

@pytest.fixture(params=[BINDING_HTTP_REDIRECT, BINDING_HTTP_POST], ids=["redirect", "post"])
def wiki(request, app, live_server, tmp_path):
    binding, keypair = request.param, _sp_keypair()
    idp_metadata = requests.get(live_server + "/saml/metadata").text
    client = pysaml2_sp(idp_metadata, tmp_path, cert_pem=keypair[0], key_pem=keypair[1],
                        slo_binding=binding, slo_response_url=WIKI_RESPONSES)
    client.bridge_entity_id = app.extensions["saml"].entity_id
    metadata = with_response_location(sp_metadata(client), WIKI_RESPONSES)
    result = add_sp(app, tmp_path, metadata, "--profile", "basic")
    assert result.exit_code == 0, result.output
    with app.app_context():
        row = db.session.query(ServiceProvider).one()
        assert (row.slo_url, row.slo_binding, row.slo_response_url) == (
            SLO_URL, binding, WIKI_RESPONSES)
    return client


@pytest.mark.parametrize("bridge", ["http"], indirect=True)
def test_pysaml2_gets_its_logout_response_at_the_response_location(bridge, wiki):
    binding = wiki.config.preferred_binding["single_logout_service"][0]
    session = bridge.signed_in("student2")
    response = _sp_initiated_login(wiki, session)
    [(_, http_info)] = wiki.global_logout(response.name_id).values()
    answer = _send_to_bridge(session, binding, http_info)
    if binding == BINDING_HTTP_POST:
        assert answer.status_code == 200, answer.text[:600]
        form = read_form(answer.text)
        assert form.action == WIKI_RESPONSES
        assert "form-action" in answer.headers["Content-Security-Policy"]
        assert "https://wiki-logout.example.edu" in answer.headers["Content-Security-Policy"]
        message = form.message
    else:
        assert answer.status_code == 302
        location = answer.headers["Location"]
        assert location.startswith(WIKI_RESPONSES + "?SAMLResponse=")
        message = dict(parse_qsl(urlsplit(location).query))["SAMLResponse"]
    assert not _signed_in(session, bridge.issuer)
    logout_response = wiki.parse_logout_request_response(message, binding)
    assert logout_response.response.destination == WIKI_RESPONSES
    assert logout_response.response.status.status_code.value.endswith(":Success")


@pytest.mark.parametrize("bridge", ["http"], indirect=True)
def test_pysaml2_gets_the_bridges_logout_request_at_the_location(bridge, wiki):
    binding = wiki.config.preferred_binding["single_logout_service"][0]
    session = bridge.signed_in("student3")
    _sp_initiated_login(wiki, session)
    answer = _bridge_sign_out(session, bridge.issuer)
    if binding == BINDING_HTTP_POST:
        assert read_form(answer.text).action == SLO_URL
    else:
        assert answer.headers["Location"].startswith(SLO_URL + "?SAMLRequest=")
