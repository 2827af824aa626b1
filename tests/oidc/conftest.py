"""Fixtures of the OIDC tests: registered clients and a signed-in browser over HTTP."""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.extensions import db
from idp.oidc.clients import create_client
from tests.helpers import http_login

ZULIP_REDIRECT = "https://zulip.example.edu/complete/oidc/"
APP_REDIRECT = "https://app.example.edu/callback"


@dataclass
class Client:
    client_id: str
    secret: str | None
    redirect_uri: str


@pytest.fixture
def make_client(app):
    """Register a client: ``make_client(name, trusted=True, ...)`` → Client."""

    def make(name: str = "rp", redirect_uri: str = APP_REDIRECT, **options) -> Client:
        options.setdefault("trusted", True)
        uris = options.pop("redirect_uris", [redirect_uri] if redirect_uri else [])
        with app.app_context():
            new = create_client(name=name, redirect_uris=uris, **options)
            db.session.commit()
            return Client(new.client.client_id, new.secret, redirect_uri)

    return make


@pytest.fixture
def rp(make_client) -> Client:
    """A trusted confidential relying party (code + refresh)."""
    return make_client("zulip", ZULIP_REDIRECT, post_logout_redirect_uris=[
        "https://zulip.example.edu/accounts/login/"])


@pytest.fixture
def service(make_client) -> Client:
    """A confidential service with client credentials and scope lms.context."""
    return make_client("agent", None, grant_types=["client_credentials"],
                       scopes=["lms.context"], trusted=False)


@pytest.fixture
def browser_session(live_server) -> requests.Session:
    """student1 signed in to the bridge over HTTP."""
    return http_login(live_server, "student1")


def authorize(session: requests.Session, base_url: str, client: Client, **params):
    """GET the authorization endpoint without following redirects."""
    query = {"response_type": "code", "client_id": client.client_id,
             "redirect_uri": client.redirect_uri, "scope": "openid profile email",
             "state": "st-" + secrets.token_hex(4), "nonce": "n-" + secrets.token_hex(8)}
    query.update({k: v for k, v in params.items() if v is not None})
    for key in [k for k, v in params.items() if v is None]:
        query.pop(key, None)
    return session.get(base_url + "/oauth/authorize", params=query, allow_redirects=False)


_REFRESH = re.compile(r'<meta http-equiv="refresh" content="0;url=([^"]+)">')


def redirect_params(response) -> dict[str, str]:
    """Parameters of the way back to the client: a 302, or (after a form submission) the
    page that continues there by meta refresh."""
    if response.status_code == 200 and _REFRESH.search(response.text):
        location = html.unescape(_REFRESH.search(response.text).group(1))
    else:
        assert response.status_code == 302, (response.status_code, response.text[:300])
        location = response.headers["Location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(session, base_url, client, **params) -> tuple[str, dict]:
    """Run the authorization request and return (code, sent params)."""
    response = authorize(session, base_url, client, **params)
    got = redirect_params(response)
    assert "code" in got, got
    return got["code"], got


def exchange(base_url, client, code, **extra) -> requests.Response:
    data = {"grant_type": "authorization_code", "code": code,
            "redirect_uri": client.redirect_uri, **extra}
    auth = (client.client_id, client.secret) if client.secret else None
    if auth is None:
        data["client_id"] = client.client_id
    return requests.post(base_url + "/oauth/token", data=data, auth=auth)


def delete_client_rows(app, client_id: str) -> None:
    """Remove a client and its tokens behind the app's back (its in-process client cache
    still holds it)."""
    from sqlalchemy import text

    with app.app_context():
        for table in ("oidc_tokens", "oidc_clients"):
            db.session.execute(text(f"DELETE FROM {table} WHERE client_id = :c"),
                               {"c": client_id})
        db.session.commit()
