"""Key rotation as Zulip sees it, and the admin commands (saml add-sp/list-sps/remove-sp,
zulip saml-settings)."""

from __future__ import annotations

import re
import threading
from urllib.parse import urlencode

import pytest
import requests
from lxml import etree
from werkzeug.serving import make_server

from idp.extensions import db
from idp.saml.models import ServiceProvider
from tests.helpers import http_login

from .conftest import register_sp
from .zulip_sp import ZULIP_ACS, ZULIP_ENTITY_ID, ZulipSP, posted_form

DS_CERT = "{http://www.w3.org/2000/09/xmldsig#}X509Certificate"


@pytest.fixture
def own_server(app, make_app, tmp_path):
    """A second bridge on the same databases with its own keys directory, so rotating keys
    here leaves the shared test server's keys alone."""
    server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    bridge = make_app(IDP_ISSUER=url, IDP_KEYS_DIR=str(tmp_path / "keys"))
    server.app = bridge
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield bridge, url
    server.shutdown()
    server.server_close()


def _metadata_certs(url: str) -> list[str]:
    root = etree.fromstring(requests.get(url + "/saml/metadata").content)
    return [e.text for e in root.iter(DS_CERT)]


def _assert_login(sp: ZulipSP, session: requests.Session, url: str) -> bool:
    answer = session.get(url + "/saml/sso/init?" + urlencode({"sp": ZULIP_ENTITY_ID}))
    form = posted_form(answer.text)
    auth = sp.process_response(form.saml_response, form.relay_state, None)
    return auth.is_authenticated() and not auth.get_errors()


def test_key_rotation_publishes_then_signs(own_server):
    bridge, url = own_server
    register_sp(bridge)
    store = bridge.extensions["signing_keys"]
    old = store.current()
    entity = bridge.extensions["saml"].entity_id
    old_sp = ZulipSP(idp_entity_id=entity, idp_base_url=url, idp_cert_b64=old.certificate_b64)
    session = http_login(url, "student1")
    assert _assert_login(old_sp, session, url)

    runner = bridge.test_cli_runner()
    staged = runner.invoke(args=["keys", "rotate"])
    assert staged.exit_code == 0 and "staged" in staged.output
    new = store.staged()
    assert _metadata_certs(url) == [old.certificate_b64, new.certificate_b64]
    # Staged, not signing: Zulip with the old certificate still logs in.
    assert _assert_login(old_sp, session, url)
    new_sp = ZulipSP(idp_entity_id=entity, idp_base_url=url, idp_cert_b64=new.certificate_b64)
    assert not _assert_login(new_sp, session, url)

    activated = runner.invoke(args=["keys", "rotate"])
    assert activated.exit_code == 0 and "activated" in activated.output
    assert _metadata_certs(url) == [new.certificate_b64]
    assert _assert_login(new_sp, session, url)
    assert not _assert_login(old_sp, session, url)


def test_add_sp_from_zulip_metadata_list_and_remove(app, tmp_path, zulip_sp_metadata):
    runner = app.test_cli_runner()
    path = tmp_path / "zulip-metadata.xml"
    path.write_text(zulip_sp_metadata)
    result = runner.invoke(args=["saml", "add-sp", "--metadata", str(path)])
    assert result.exit_code == 0, result.output
    assert "registered SP https://zulip.example.edu" in result.output
    with app.app_context():
        row = db.session.query(ServiceProvider).one()
        assert row.acs_urls == [ZULIP_ACS] and row.slo_url == ZULIP_ACS
        assert row.attribute_profile == "zulip" and row.sign_assertion and row.sign_response
        assert row.want_authn_requests_signed is False

    again = runner.invoke(args=["saml", "add-sp", "--metadata", str(path)])
    assert again.exit_code != 0 and "already registered" in again.output
    listed = runner.invoke(args=["saml", "list-sps"])
    assert "https://zulip.example.edu" in listed.output and ZULIP_ACS in listed.output
    removed = runner.invoke(args=["saml", "remove-sp", ZULIP_ENTITY_ID])
    assert removed.exit_code == 0
    assert "no service providers" in runner.invoke(args=["saml", "list-sps"]).output
    missing = runner.invoke(args=["saml", "remove-sp", ZULIP_ENTITY_ID])
    assert missing.exit_code != 0 and "no SP" in missing.output


@pytest.fixture
def zulip_sp_metadata(app) -> str:
    sp = ZulipSP(idp_entity_id="x", idp_base_url="https://idp.example.edu",
                 idp_cert_b64=app.extensions["signing_keys"].current().certificate_b64)
    return sp.metadata()


def test_add_sp_by_hand_and_bad_definitions(app, tmp_path):
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["saml", "add-sp", "--entity-id", "https://chat.example.edu",
                             "--acs-url", "https://chat.example.edu/complete/saml/",
                             "--sign", "assertion", "--profile", "basic"])
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        row = db.session.query(ServiceProvider).one()
        assert (row.sign_assertion, row.sign_response, row.slo_url) == (True, False, None)
    bad = [
        (["--entity-id", "x"], "give --metadata"),
        (["--entity-id", "https://a", "--acs-url", "ftp://a/acs"], "not an absolute"),
        (["--entity-id", "https://a", "--acs-url", "https://a/acs", "--cert", "nope"],
         "not a valid X.509"),
        (["--entity-id", "https://a", "--acs-url", "https://a/acs",
          "--want-signed-requests"], "need the SP's certificate"),
        (["--metadata", str(tmp_path / "missing.xml")], "cannot read"),
    ]
    for args, text in bad:
        result = runner.invoke(args=["saml", "add-sp", *args])
        assert result.exit_code != 0 and text in result.output, (args, result.output)
    evil = tmp_path / "evil.xml"
    evil.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    result = runner.invoke(args=["saml", "add-sp", "--metadata", str(evil)])
    assert result.exit_code != 0 and "DTD" in result.output


def test_add_sp_metadata_from_a_url(app, live_server):
    result = app.test_cli_runner().invoke(
        args=["saml", "add-sp", "--metadata", live_server + "/saml/metadata"])
    assert result.exit_code != 0 and "no SPSSODescriptor" in result.output


def test_zulip_saml_settings(app, tmp_path, zulip_registered):
    cert_out = tmp_path / "lms.crt"
    result = app.test_cli_runner().invoke(args=[
        "zulip", "saml-settings", "--cert-out", str(cert_out), "--subdomain", "physics"])
    assert result.exit_code == 0, result.output
    block = result.stdout  # the certificate note goes to stderr
    assert "wrote the current certificate" in result.stderr
    namespace: dict = {}
    exec(block, {}, namespace)  # noqa: S102 - the block must be valid Python for settings.py
    idp = namespace["SOCIAL_AUTH_SAML_ENABLED_IDPS"]["lms"]
    saml = app.extensions["saml"]
    assert idp["entity_id"] == saml.entity_id and idp["url"] == saml.sso_url
    assert idp["slo_url"] == saml.slo_url
    assert idp["extra_attrs"] == ["zulip_role"]
    assert idp["attr_email"] == idp["attr_user_permanent_id"] == "email"
    assert idp["x509cert_path"] == "/etc/zulip/saml/idps/lms.crt"
    assert namespace["SOCIAL_AUTH_SAML_SP_ENTITY_ID"] == ZULIP_ENTITY_ID
    assert namespace["SOCIAL_AUTH_SYNC_ATTRS_DICT"] == {
        "physics": {"saml": {"role": "zulip_role", "groups": ["students", "mentors", "staff"]}}}
    assert cert_out.read_text() == app.extensions["signing_keys"].current().certificate_pem

    refused = app.test_cli_runner().invoke(args=["zulip", "saml-settings", "--cert-out",
                                                 str(cert_out), "--groups", "zulip_groups"])
    assert refused.exit_code != 0
    staged = app.test_cli_runner().invoke(args=["zulip", "saml-settings", "--staged",
                                                "--cert-out", str(cert_out)])
    assert staged.exit_code != 0 and "no staged key" in staged.output


def test_zulip_saml_settings_needs_a_registered_sp(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["zulip", "saml-settings", "--cert-out",
                                                str(tmp_path / "x.crt")])
    assert result.exit_code != 0 and "register Zulip first" in result.output



def test_prune_and_deprovisioning(app, live_server, zulip):
    import datetime as dt

    from idp import clock, revocation
    from idp.saml.models import PendingAuthnRequest, SamlLogin

    session = http_login(live_server, "student1")
    answer = session.get(live_server + "/saml/sso/init?" + urlencode({"sp": ZULIP_ENTITY_ID}))
    assert posted_form(answer.text)
    requests.get(zulip.login_url(), allow_redirects=False)  # pending, never answered
    with app.app_context():
        revocation.revoke_person(db.session, "student:1", "deprovisioned")
        db.session.commit()
        assert db.session.query(SamlLogin).filter(SamlLogin.ended_at.is_(None)).count() == 0
    runner = app.test_cli_runner()
    result = runner.invoke(args=["saml", "prune"])
    assert result.exit_code == 0 and "0 pending requests" in result.output
    clock.advance(dt.timedelta(days=8).total_seconds())
    result = runner.invoke(args=["saml", "prune"])
    assert "1 pending requests" in result.output and "1 SAML logins" in result.output
    with app.app_context():
        assert db.session.query(PendingAuthnRequest).count() == 0
        assert db.session.query(SamlLogin).count() == 0


def test_add_sp_picks_the_single_logout_binding_from_metadata(app, tmp_path,
                                                              zulip_sp_metadata):
    """Issue #12 item 4: HTTP-Redirect when the SP offers it (Zulip), else HTTP-POST;
    ``--slo-binding`` chooses among what the metadata offers."""
    redirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
    post = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    slo = re.search(r"<md:SingleLogoutService [^>]*/>", zulip_sp_metadata).group(0)
    assert redirect in slo and ZULIP_ACS in slo
    post_slo = f'<md:SingleLogoutService Binding="{post}" Location="{ZULIP_ACS}post"/>'
    runner = app.test_cli_runner()

    def register(metadata: str, *extra: str):
        path = tmp_path / "metadata.xml"
        path.write_text(metadata)
        result = runner.invoke(args=["saml", "add-sp", "--metadata", str(path), "--replace",
                                     *extra])
        with app.app_context():
            row = db.session.query(ServiceProvider).one_or_none()
            return result, row and (row.slo_url, row.slo_binding)

    result, registered = register(zulip_sp_metadata)
    assert registered == (ZULIP_ACS, redirect) and "(HTTP-Redirect)" in result.output
    assert register(zulip_sp_metadata.replace(slo, post_slo))[1] == (ZULIP_ACS + "post", post)
    both = zulip_sp_metadata.replace(slo, post_slo + slo)
    assert register(both)[1] == (ZULIP_ACS, redirect)
    result, registered = register(both, "--slo-binding", "post")
    assert registered == (ZULIP_ACS + "post", post) and "(HTTP-POST)" in result.output
    refused, _ = register(zulip_sp_metadata, "--slo-binding", "post")
    assert refused.exit_code != 0 and "no SingleLogoutService with the post" in refused.output
    listed = runner.invoke(args=["saml", "list-sps"]).output
    assert f"SLO: {ZULIP_ACS}post (HTTP-POST)" in listed


def test_saml_settings_writes_no_file_unless_asked(app, zulip_registered, tmp_path,
                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = app.test_cli_runner().invoke(args=["zulip", "saml-settings"])
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []
    assert "SOCIAL_AUTH_SAML_ENABLED_IDPS" in result.stdout
    assert "-----BEGIN CERTIFICATE-----" in result.stderr and "--cert-out" in result.stderr
