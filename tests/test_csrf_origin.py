"""Forms over https: the CSRF check accepts exactly the issuer's origin (Origin, else a
same-origin Referer), also behind a trusted proxy, and refuses every other origin, whatever
Host or X-Forwarded-Host the request carries."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from idp.csrf import origin_of
from tests.helpers import DEMO_PASSWORD, csrf_from

APP_REDIRECT = "https://app.example.edu/callback"

ISSUER = "https://sso.example.edu"


@pytest.fixture
def https_app(app, make_app):
    """The bridge as deployed: an https issuer behind one trusted proxy."""
    return make_app(IDP_ISSUER=ISSUER, IDP_TRUSTED_PROXY_COUNT="1")


def _client(https_app):
    """A test client speaking to the bridge as nginx would (https, proxy headers)."""
    client = https_app.test_client()
    client.environ_base.update({"HTTP_X_FORWARDED_PROTO": "https",
                                "HTTP_X_FORWARDED_FOR": "203.0.113.7"})
    return client


def _login_form(client) -> dict:
    page = client.get("/login", base_url=ISSUER)
    return {"csrf_token": csrf_from(page.get_data(as_text=True)), "login": "student1",
            "password": DEMO_PASSWORD, "next": "/"}


def _post_login(client, headers: dict):
    return client.post("/login", base_url=ISSUER, data=_login_form(client), headers=headers)


@pytest.mark.parametrize("url, origin", [
    ("https://sso.example.edu", "https://sso.example.edu"),
    ("https://SSO.example.edu:443/login?x=1", "https://sso.example.edu"),
    ("http://sso.example.edu:80/", "http://sso.example.edu"),
    ("https://sso.example.edu:8443/", "https://sso.example.edu:8443"),
    ("null", None), ("", None), ("/login", None), ("javascript:alert(1)", None),
    ("https://sso.example.edu:99999/", None), ("ftp://sso.example.edu/", None),
])
def test_origin_of(url, origin):
    assert origin_of(url) == origin


@pytest.mark.parametrize("headers", [
    {"Origin": ISSUER},
    {"Origin": ISSUER + ":443"},
    {"Referer": ISSUER + "/login?next=%2F"},   # a browser that sends no Origin
])
def test_https_login_from_the_issuers_own_page_is_accepted(https_app, headers):
    client = _client(https_app)
    response = _post_login(client, headers)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/", base_url=ISSUER).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "null", "Referer": ISSUER + "/login"},   # a page that hides its referrer
    {"Origin": "null"},
    {"Origin": "http://sso.example.edu"},               # downgraded scheme
    {"Origin": "https://sso.example.edu:8443"},          # another port is another origin
    {"Origin": "https://sso.example.edu.evil.example"},
    {"Origin": "https://evil.example", "Referer": ISSUER + "/login"},
    {"Referer": "https://evil.example/sso.example.edu/login"},
    {"Referer": "not a url"},
    {},                                                  # neither header, over https
    # Host and X-Forwarded-Host name the attacker's site: still not the issuer.
    {"Origin": "https://evil.example", "Host": "evil.example"},
    {"Origin": "https://evil.example", "X-Forwarded-Host": "evil.example"},
])
def test_https_login_from_anywhere_else_is_refused(https_app, headers):
    client = _client(https_app)
    response = _post_login(client, headers)
    assert response.status_code == 400
    assert "another site" in response.get_data(as_text=True)
    assert client.get("/", base_url=ISSUER).status_code == 302   # not signed in


def test_hostile_origin_cannot_sign_out(https_app):
    client = _client(https_app)
    assert _post_login(client, {"Origin": ISSUER}).status_code == 302
    page = client.get("/logout", base_url=ISSUER).get_data(as_text=True)
    refused = client.post("/logout", base_url=ISSUER, data={"csrf_token": csrf_from(page)},
                          headers={"Origin": "https://evil.example"})
    assert refused.status_code == 400
    assert client.get("/", base_url=ISSUER).status_code == 200   # still signed in
    done = client.post("/logout", base_url=ISSUER, data={"csrf_token": csrf_from(page)},
                       headers={"Origin": ISSUER})
    assert done.status_code == 200 and client.get("/", base_url=ISSUER).status_code == 302


def test_hostile_origin_cannot_give_consent(app, https_app):
    from urllib.parse import urlencode

    from idp.extensions import db
    from idp.oidc.clients import create_client

    with app.app_context():
        third = create_client(name="third-party", redirect_uris=[APP_REDIRECT], trusted=False)
        db.session.commit()
        third = SimpleNamespace(client_id=third.client.client_id, redirect_uri=APP_REDIRECT)
    client = _client(https_app)
    assert _post_login(client, {"Origin": ISSUER}).status_code == 302
    query = urlencode({"response_type": "code", "client_id": third.client_id,
                       "redirect_uri": third.redirect_uri, "scope": "openid",
                       "state": "s1"})
    page = client.get("/oauth/authorize?" + query, base_url=ISSUER,
                      headers={"Accept": "text/html"})
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    form = {"csrf_token": token, "response_type": "code",
            "client_id": third.client_id, "redirect_uri": third.redirect_uri,
            "scope": "openid", "state": "s1", "decision": "allow"}
    refused = client.post("/oauth/authorize/consent", base_url=ISSUER, data=form,
                          headers={"Origin": "https://app.example.edu"})
    assert refused.status_code == 400 and "Location" not in refused.headers
    allowed = client.post("/oauth/authorize/consent", base_url=ISSUER, data=form,
                          headers={"Origin": ISSUER})
    assert allowed.status_code in (200, 302) and "code=" in allowed.get_data(as_text=True) + \
        allowed.headers.get("Location", "")


def test_http_development_bridge_refuses_a_foreign_origin_but_not_a_missing_one(client):
    page = client.get("/login").get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "login": "student1", "password": DEMO_PASSWORD,
            "next": "/"}
    assert client.post("/login", data=form,
                       headers={"Origin": "https://evil.example"}).status_code == 400
    assert client.post("/login", data=form).status_code == 302   # token alone, plain http
