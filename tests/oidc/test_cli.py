"""``flask oidc add-client|list-clients|remove-client`` and ``flask zulip oidc-settings``."""

from __future__ import annotations

import ast
import re

import requests

from idp.extensions import db
from idp.oidc.models import OIDCClient


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def test_add_client_prints_secret_once_and_stores_only_a_keyed_hash(app):
    result = run(app, "oidc", "add-client", "--name", "zulip", "--trusted",
                 "--redirect-uri", "https://chat.example.edu/complete/oidc/")
    assert result.exit_code == 0, result.output
    client_id = re.search(r"client_id:\s+(\S+)", result.output).group(1)
    secret = re.search(r"client_secret:\s+(\S+)", result.output).group(1)
    with app.app_context():
        row = db.session.get(OIDCClient, client_id)
        assert row.secret_hash != secret and len(row.secret_hash) == 64
        assert row.check_client_secret(secret) and not row.check_client_secret(secret + "x")
        assert row.trusted and row.grant_types == ["authorization_code", "refresh_token"]
        assert row.scopes == ["openid", "profile", "email"]
    listed = run(app, "oidc", "list-clients")
    assert client_id in listed.output and "trusted" in listed.output
    assert secret not in listed.output


def test_add_service_and_public_clients(app, live_server):
    service = run(app, "oidc", "add-client", "--name", "agent", "--grant",
                  "client_credentials", "--scope", "lms.context")
    assert service.exit_code == 0, service.output
    client_id = re.search(r"client_id:\s+(\S+)", service.output).group(1)
    secret = re.search(r"client_secret:\s+(\S+)", service.output).group(1)
    token = requests.post(live_server + "/oauth/token", auth=(client_id, secret),
                          data={"grant_type": "client_credentials"})
    assert token.status_code == 200 and token.json()["scope"] == "lms.context"
    public = run(app, "oidc", "add-client", "--name", "spa", "--public",
                 "--redirect-uri", "http://localhost:3000/cb")
    assert public.exit_code == 0 and "client_secret" not in public.output


def test_add_client_refuses_bad_input(app):
    cases = [
        ["--name", "x", "--redirect-uri", "http://chat.example.edu/cb"],        # http
        ["--name", "x", "--redirect-uri", "https://chat.example.edu/cb#frag"],  # fragment
        ["--name", "x", "--redirect-uri", "/relative"],
        ["--name", "x"],                                                         # no redirect
        ["--name", "x", "--public", "--grant", "client_credentials"],
        ["--name", "x", "--redirect-uri", "https://a.example/cb", "--scope", "root"],
        ["--name", "", "--redirect-uri", "https://a.example/cb"],
        ["--name", "x", "--grant", "password"],
    ]
    for args in cases:
        result = run(app, "oidc", "add-client", *args)
        assert result.exit_code != 0, args
        assert "Traceback" not in result.output
    run(app, "oidc", "add-client", "--name", "dup", "--redirect-uri", "https://a.example/cb")
    again = run(app, "oidc", "add-client", "--name", "dup", "--redirect-uri",
                "https://a.example/cb")
    assert again.exit_code != 0 and "exists already" in again.output


def test_remove_client_kills_its_tokens(app, live_server):
    out = run(app, "oidc", "add-client", "--name", "agent", "--grant", "client_credentials",
              "--scope", "lms.context").output
    client_id = re.search(r"client_id:\s+(\S+)", out).group(1)
    secret = re.search(r"client_secret:\s+(\S+)", out).group(1)
    token = requests.post(live_server + "/oauth/token", auth=(client_id, secret),
                          data={"grant_type": "client_credentials"}).json()["access_token"]
    result = run(app, "oidc", "remove-client", "agent")
    assert result.exit_code == 0 and client_id in result.output
    from idp.oidc.resource import BearerError, validate_bearer

    with app.test_request_context():
        try:
            validate_bearer(f"Bearer {token}", "lms.context")
            raise AssertionError("token of a removed client still valid")
        except BearerError as error:
            assert error.status == 401
    assert run(app, "oidc", "remove-client", "agent").exit_code != 0
    assert "no OIDC clients" in run(app, "oidc", "list-clients").output


def test_zulip_oidc_settings(app, base_url):
    missing = run(app, "zulip", "oidc-settings")
    assert missing.exit_code != 0 and "register Zulip first" in missing.output
    out = run(app, "oidc", "add-client", "--name", "zulip", "--trusted", "--redirect-uri",
              "https://chat.example.edu/complete/oidc/").output
    client_id = re.search(r"client_id:\s+(\S+)", out).group(1)
    result = run(app, "zulip", "oidc-settings")
    assert result.exit_code == 0, result.output
    block = result.output.split("SOCIAL_AUTH_OIDC_ENABLED_IDPS = ", 1)[1]
    settings = block.split("\nSOCIAL_AUTH_OIDC_FULL_NAME_VALIDATED", 1)[0]
    parsed = ast.literal_eval(settings.replace('get_secret("social_auth_oidc_secret")',
                                               '"<social_auth_oidc_secret>"'))
    assert parsed == {"lms": {"oidc_url": base_url, "display_name": "LMS",
                              "display_icon": None, "client_id": client_id,
                              "secret": "<social_auth_oidc_secret>", "auto_signup": True}}
    by_name = run(app, "zulip", "oidc-settings", "--client", "zulip", "--idp-name", "school")
    assert '"school": {' in by_name.output


def test_client_ids_never_read_as_command_line_options():
    """A client id is passed to CLI commands as an argument: it must never start with '-' (one
    in 64 URL-safe ids did, and `agents approve-client` then failed with "No such option")."""
    from idp.oidc.credentials import new_client_id

    ids = [new_client_id() for _ in range(2000)]
    assert all(len(i) == 24 and i.isalnum() and i.isascii() for i in ids)
    assert len(set(ids)) == len(ids)
