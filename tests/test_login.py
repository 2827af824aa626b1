"""Login form, sessions, throttling, enumeration resistance, CSRF, redirects, bad input."""

from __future__ import annotations

import pytest

from idp import clock
from idp.extensions import db
from idp.models import AuditEvent, LoginSession
from tests.helpers import DEMO_PASSWORD, client_login, csrf_from


def test_login_page_has_csrf_token_and_accessible_labels(client):
    page = client.get("/login").get_data(as_text=True)
    assert 'name="csrf_token"' in page
    assert '<label for="login">' in page and '<label for="password">' in page


@pytest.mark.parametrize("login", ["student1", "STUDENT1@example.edu", "mentor1", "staff1"])
def test_login_success_opens_session_and_redirects(client, login):
    response = client_login(client, login, next_url="/")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    home = client.get("/").get_data(as_text=True)
    assert "Hello," in home


def test_session_cookie_flags(client):
    response = client_login(client, "student1")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # issuer is http:// in tests


def test_cookie_keeps_the_expiry_of_sign_in(client):
    """The cookie is set at sign-in, with the session's lifetime; later requests do not re-sign
    it (the server-side session does not slide either)."""
    login = client_login(client, "student1")
    assert "Expires=" in login.headers["Set-Cookie"]
    client.get("/")  # the first page with a form stores its CSRF token in the cookie
    home = client.get("/")
    assert home.status_code == 200 and "Hello," in home.get_data(as_text=True)
    assert "Set-Cookie" not in home.headers


def test_secure_cookie_when_issuer_is_https(make_app):
    https_app = make_app(IDP_ISSUER="https://sso.example.edu")
    assert https_app.config["SESSION_COOKIE_SECURE"] is True


def test_new_session_id_at_login_no_fixation(app, client):
    client_login(client, "student1")
    with app.app_context():
        first = {s.id for s in db.session.query(LoginSession).all()}
    client_login(client, "student1")
    with app.app_context():
        rows = db.session.query(LoginSession).all()
        live = {s.id for s in rows if s.revoked_at is None}
    assert len(live) == 1 and not live & first


@pytest.mark.parametrize("login,password", [
    ("student1", "wrong-password"),    # wrong password
    ("nobody-here", DEMO_PASSWORD),    # unknown user
    ("student5", DEMO_PASSWORD),       # inactive student, right password
])
def test_same_answer_for_unknown_inactive_and_wrong(client, login, password):
    response = client_login(client, login, password)
    assert response.status_code == 401
    body = response.get_data(as_text=True)
    assert "That username or password is not right, or the account is not active." in body
    assert client.get("/").status_code == 302  # not signed in


def test_unknown_user_verifies_a_dummy_hash(app, monkeypatch):
    from idp.lms import directory as directory_module

    calls = []
    real = directory_module.verify_password
    monkeypatch.setattr(directory_module, "verify_password",
                        lambda pw, h: calls.append(h) or real(pw, h))
    with app.app_context():
        assert app.extensions["lms_directory"].authenticate("nobody", "x") is None
    assert len(calls) == 1 and calls[0].startswith("pbkdf2_sha256$")


def test_csrf_missing_or_wrong_is_refused(client):
    client.get("/login")
    response = client.post("/login", data={"login": "student1", "password": DEMO_PASSWORD})
    assert response.status_code == 400
    response = client.post("/login", data={"csrf_token": "forged", "login": "student1",
                                            "password": DEMO_PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
    "http:/evil", "\\\\evil", "/ok\r\nSet-Cookie: x=1"])
def test_open_redirect_refused(client, target):
    response = client_login(client, "student1", next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_local_next_is_honoured(client):
    response = client_login(client, "student1", next_url="/saml/sso?x=1")
    assert response.headers["Location"] == "/saml/sso?x=1"


def test_throttle_after_five_failures_with_retry_after(client, app, monkeypatch):
    for _ in range(5):
        assert client_login(client, "student1", "bad").status_code == 401
    # from now on no password hash may be computed while throttled
    from idp.lms import passwords

    monkeypatch.setattr(passwords._context, "verify",
                        lambda *a, **k: pytest.fail("hash computed while throttled"))
    response = client_login(client, "student1", DEMO_PASSWORD)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    monkeypatch.undo()
    clock.advance(2)
    assert client_login(client, "student1", DEMO_PASSWORD).status_code == 302


def test_throttle_delay_grows_and_is_capped_no_permanent_lockout(client):
    for _ in range(20):
        client_login(client, "student1", "bad")
        clock.advance(400)  # beyond any delay, inside nothing: window resets after 900 s
    response = client_login(client, "student1", "bad")
    assert response.status_code == 401  # never locked for good
    clock.reset()
    for _ in range(12):
        response = client_login(client, "mentor1", "bad")
        clock.advance(1)
    retry = client_login(client, "mentor1", "bad")
    assert retry.status_code == 429
    assert 1 <= int(retry.headers["Retry-After"]) <= 300


def test_throttle_per_client_ip(make_app, app):
    throttled_app = make_app(IDP_THROTTLE_IP_FAILURES="3")
    client = throttled_app.test_client()
    for name in ("nobody1", "nobody2", "nobody3"):
        assert client_login(client, name, "bad").status_code == 401
    assert client_login(client, "student1", DEMO_PASSWORD).status_code == 429


def test_audit_log_records_login_without_password(app, client):
    client_login(client, "student1")
    client_login(client, "student1", "secret-typo-123")
    with app.app_context():
        events = db.session.query(AuditEvent).order_by(AuditEvent.id).all()
        text = repr([(e.event, e.outcome, e.subject, e.detail) for e in events])
    assert ("login", "success") in [(e.event, e.outcome) for e in events]
    assert "secret-typo-123" not in text and DEMO_PASSWORD not in text


def test_logout_ends_session_and_is_csrf_protected(client):
    client_login(client, "student1")
    assert client.post("/logout").status_code == 400  # no CSRF token: refused
    assert client.get("/").status_code == 200
    page = client.get("/logout").get_data(as_text=True)
    response = client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert "You are signed out" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("password", ["x" * (1024 * 1024), "\x00" * 10, "é" * 5000])
def test_oversized_and_odd_passwords_get_a_clear_answer(client, password):
    response = client_login(client, "student1", password)
    assert response.status_code == 401


def test_non_utf8_form_body(client):
    page = client.get("/login").get_data(as_text=True)
    token = csrf_from(page)
    body = b"csrf_token=" + token.encode() + b"&login=%FF%FE%FD&password=%C3%28"
    response = client.post("/login", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 401


def test_request_over_two_megabytes_is_a_clear_413(client):
    response = client.post("/login", data={"password": "x" * (3 * 1024 * 1024)})
    assert response.status_code == 413
    assert "Request Entity Too Large" in response.get_data(as_text=True)


def test_lms_down_gives_503_page(make_app):
    down = make_app(LMS_DATABASE_URL="postgresql://nobody@127.0.0.1:9/lms",
                    LMS_CONNECT_TIMEOUT="1")
    client = down.test_client()
    response = client_login(client, "student1")
    assert response.status_code == 503
    assert "Temporarily unavailable" in response.get_data(as_text=True)
    assert down.test_client().get("/readyz").status_code == 503


def test_deactivated_person_loses_live_session(client, lms_admin):
    client_login(client, "student1")
    assert client.get("/").status_code == 200
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE username = 'student1'")
    assert client.get("/").status_code == 302


def test_bridge_database_down_gives_503_not_500(make_app):
    down = make_app(IDP_DATABASE_URL="postgresql://nobody@127.0.0.1:9/bridge")
    client = down.test_client()
    response = client_login(client, "student1")
    assert response.status_code == 503
    assert "cannot reach its database" in response.get_data(as_text=True)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.get_json()["checks"]["bridge_database"] == "unavailable"


def test_73_byte_password_against_bcrypt_account_is_a_clear_answer(client):
    response = client_login(client, "student2", "p" * 73)  # student2's hash is bcrypt $2y$
    assert response.status_code == 401


def test_megabyte_login_name_is_a_clear_answer(client):
    response = client_login(client, "u" * (1024 * 1024), DEMO_PASSWORD)
    assert response.status_code == 401


def test_inactive_sign_in_is_reported_after_the_response(client):
    from flask import has_app_context

    from idp.events import inactive_login_attempt

    seen = []

    def listener(sender, subject, **_):
        seen.append((subject, has_app_context()))

    inactive_login_attempt.connect(listener)
    try:
        response = client_login(client, "student5", DEMO_PASSWORD)
        assert response.status_code == 401
        response.close()
        assert seen == [("student:5", True)]
    finally:
        inactive_login_attempt.disconnect(listener)


def test_session_is_seen_again_and_expires(app, client):
    client_login(client, "student1")
    with app.app_context():
        first_seen = db.session.query(LoginSession).one().last_seen_at
    clock.advance(400)  # past the five-minute touch interval
    assert client.get("/").status_code == 200
    with app.app_context():
        assert db.session.query(LoginSession).one().last_seen_at > first_seen
    clock.advance(8 * 3600)  # past IDP_SESSION_LIFETIME
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("seconds, words", [
    (1, "1 second"), (2, "2 seconds"), (59, "59 seconds"), (60, "1 minute"),
    (61, "2 minutes"), (300, "5 minutes")])
def test_throttle_delay_in_words(seconds, words):
    from idp.login.throttle import describe_delay

    assert describe_delay(seconds) == words
