"""The signed-cookie session with its signer built once per key set (idp.session_cookie)."""

from __future__ import annotations

from flask import Flask, session

from idp.session_cookie import SessionCookies


def _app(secret: str) -> Flask:
    app = Flask(__name__)
    app.secret_key = secret
    app.session_interface = SessionCookies()

    @app.get("/set")
    def set_value():
        session["who"] = "student:1"
        return "ok"

    @app.get("/get")
    def get_value():
        return session.get("who", "nobody")

    @app.get("/clear")
    def clear():
        session.clear()
        return "cleared"

    @app.get("/untouched")
    def untouched():
        return "no session here"

    return app


def test_one_signer_serves_every_request_and_sessions_round_trip():
    app = _app("a" * 40)
    client = app.test_client()
    client.get("/set")
    assert client.get("/get").text == "student:1"
    interface = app.session_interface
    assert interface.get_signing_serializer(app) is interface.get_signing_serializer(app)


def test_a_cookie_signed_with_another_key_is_an_empty_session():
    issuer, other = _app("a" * 40), _app("b" * 40)
    cookie = issuer.test_client()
    cookie.get("/set")
    value = cookie.get_cookie("session").value
    stranger = other.test_client()
    stranger.set_cookie("session", value)
    assert stranger.get("/get").text == "nobody"
    tampered = issuer.test_client()
    tampered.set_cookie("session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert tampered.get("/get").text == "nobody"


def test_changing_the_key_at_run_time_takes_effect():
    app = _app("a" * 40)
    client = app.test_client()
    client.get("/set")
    app.secret_key = "c" * 40
    assert client.get("/get").text == "nobody"
    app.config["SECRET_KEY_FALLBACKS"] = ["a" * 40]
    assert client.get("/get").text == "student:1"


def test_cookie_less_requests_behave_as_flask_did():
    """No Cookie header: nothing parsed or saved unless the view uses the session; a view
    that reads it still gets Vary: Cookie, one that writes it gets its cookie."""
    client = _app("a" * 40).test_client()
    plain = client.get("/untouched")
    assert "Set-Cookie" not in plain.headers and "Vary" not in plain.headers
    read = client.get("/get")
    assert read.text == "nobody" and read.headers["Vary"] == "Cookie"
    assert "Set-Cookie" not in read.headers
    written = client.get("/set")
    assert written.headers["Set-Cookie"].startswith("session=")


def test_a_cleared_session_still_deletes_its_cookie():
    client = _app("a" * 40).test_client()
    client.get("/set")
    cleared = client.get("/clear")
    assert "session=;" in cleared.headers["Set-Cookie"]   # expired at once
    assert client.get("/get").text == "nobody"


def test_tampered_cookie_on_machine_endpoints_is_ignored(app):
    """Token endpoint, API, probe: a garbage or tampered session cookie changes nothing (no
    500, no cookie set or deleted)."""
    client = app.test_client()
    for value in ("garbage", "eyJ4IjoxfQ.AAAA.BBBB", "x" * 3000, "%ff%fe", ".eJw"):
        client.set_cookie("idp_session", value)
        answers = [client.get("/healthz"),
                   client.post("/oauth/token", data={"grant_type": "client_credentials"}),
                   client.get("/api/v1/lms/students/1/profile")]
        assert [a.status_code for a in answers] == [200, 401, 401], value
        assert all("Set-Cookie" not in a.headers for a in answers), value


def test_pages_still_set_and_rotate_the_session_cookie(app):
    """The login page puts its CSRF token in the session (cookie set); signing in replaces
    the cookie (a new session), with or without a tampered cookie sent first."""
    from tests.helpers import DEMO_PASSWORD, csrf_from

    for sent in (None, "tampered.value.here"):
        client = app.test_client()
        if sent:
            client.set_cookie("idp_session", sent)
        page = client.get("/login")
        before = page.headers["Set-Cookie"]
        assert before.startswith("idp_session=") and "HttpOnly" in before
        assert "SameSite=Lax" in before
        signed_in = client.post("/login", data={
            "csrf_token": csrf_from(page.get_data(as_text=True)), "login": "student1",
            "password": DEMO_PASSWORD, "next": "/"})
        assert signed_in.status_code == 302
        after = signed_in.headers["Set-Cookie"]
        assert after.startswith("idp_session=") and after != before
