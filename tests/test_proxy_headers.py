"""Behind the proxy: cookies (Secure, HttpOnly, SameSite), HSTS, and every absolute URL the
bridge emits built from IDP_ISSUER, whatever Host or X-Forwarded-* a client sends (these are
app-level checks; tests/deployed/ repeats them through nginx and straight at a replica)."""

from __future__ import annotations

import pytest

from tests.helpers import DEMO_PASSWORD, csrf_from

ISSUER = "https://sso.example.edu"
SPOOFED = [
    {},
    {"Host": "evil.example"},
    {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
    {"Host": "evil.example", "X-Forwarded-Host": "evil.example:8443",
     "X-Forwarded-Proto": "http", "X-Forwarded-Port": "8443", "X-Forwarded-Prefix": "/evil",
     "X-Forwarded-For": "198.51.100.9, 203.0.113.7", "Forwarded": "host=evil.example"},
]
EMITTING = ["/saml/metadata", "/.well-known/openid-configuration", "/oauth/jwks"]


@pytest.fixture(params=["0", "1"], ids=["direct", "behind-proxy"])
def https_app(app, make_app, request):
    return make_app(IDP_ISSUER=ISSUER, IDP_TRUSTED_PROXY_COUNT=request.param)


def _signed_in(https_app):
    client = https_app.test_client()
    page = client.get("/login", base_url=ISSUER)
    response = client.post("/login", base_url=ISSUER, headers={"Origin": ISSUER}, data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "login": "student1",
        "password": DEMO_PASSWORD, "next": "/"})
    assert response.status_code == 302
    return client, response


def test_session_cookie_is_secure_httponly_lax_and_hsts_is_sent(https_app):
    client, response = _signed_in(https_app)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("idp_session=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "expires", "path"} <= attributes
    assert "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    # Only one cookie exists: the CSRF token lives in the same signed session.
    assert len(response.headers.getlist("Set-Cookie")) == 1


@pytest.mark.parametrize("headers", SPOOFED)
def test_emitted_urls_come_from_the_issuer_only(https_app, headers):
    client = https_app.test_client()
    for path in EMITTING:
        body = client.get(path, base_url=ISSUER, headers=headers).get_data(as_text=True)
        assert "evil" not in body and "8443" not in body, path
        if path != "/oauth/jwks":
            assert ISSUER + "/" in body and "http://sso.example.edu" not in body, path
    login = client.get("/", base_url=ISSUER, headers=headers)
    assert login.status_code == 302 and login.headers["Location"] == "/login"


def test_launch_link_command_prints_an_issuer_url(https_app):
    result = https_app.test_cli_runner().invoke(args=["lms", "launch-link", "student1"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(ISSUER + "/launch?token=")
