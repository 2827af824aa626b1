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
