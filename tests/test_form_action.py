"""The login page's CSP form-action admits the origin of the OIDC client its form will return
to, only when that client registered that redirect_uri exactly; otherwise 'self' only."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from idp.extensions import db
from idp.oidc.clients import create_client

REDIRECT = "https://app.example.edu/callback"


@pytest.fixture
def client_id(app):
    with app.app_context():
        made = create_client(name="app", redirect_uris=[REDIRECT], trusted=True)
        db.session.commit()
        return made.client.client_id


def _form_action(client, next_path: str) -> str:
    csp = client.get("/login?" + urlencode({"next": next_path})).headers[
        "Content-Security-Policy"]
    return next(part.strip() for part in csp.split(";") if "form-action" in part)


def _authorize(client_id: str, redirect_uri: str) -> str:
    return "/oauth/authorize?" + urlencode({"response_type": "code", "client_id": client_id,
                                            "redirect_uri": redirect_uri, "scope": "openid"})


def test_login_page_admits_the_registered_client_origin(client, client_id):
    assert _form_action(client, _authorize(client_id, REDIRECT)) == \
        "form-action 'self' https://app.example.edu"


@pytest.mark.parametrize("redirect_uri", [
    "https://evil.example/callback", "https://app.example.edu/callback/../x",
    "https://app.example.edu.evil.example/callback", "javascript:alert(1)", ""])
def test_login_page_admits_nothing_else(client, client_id, redirect_uri):
    assert _form_action(client, _authorize(client_id, redirect_uri)) == "form-action 'self'"
    assert _form_action(client, _authorize("no-such-client", REDIRECT)) == "form-action 'self'"
    assert _form_action(client, "/") == "form-action 'self'"
