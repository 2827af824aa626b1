"""LMS launch links: expiry, replay, bad signature, wrong audience, inactive person, next."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from idp import clock
from idp.login.launch import sign_launch_token
from tests.conftest import LAUNCH_SECRET


def _token(app, subject="student:1", **changes):
    settings = app.config["IDP"]
    now = clock.timestamp()
    claims = {"iss": "lms", "aud": settings.issuer, "sub": subject, "iat": now,
              "exp": now + 60, "jti": secrets.token_urlsafe(12)}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    key = OctKey.import_key(LAUNCH_SECRET.encode())
    return jwt.encode({"alg": "HS256"}, claims, key)


def test_launch_opens_session_and_goes_to_next(app, client):
    token = sign_launch_token(app.config["IDP"], "student:1")
    response = client.get("/launch", query_string={"token": token, "next": "/?from=lms"})
    assert response.status_code == 302 and response.headers["Location"] == "/?from=lms"
    assert "Hello," in client.get("/").get_data(as_text=True)


def test_launch_by_username_and_registered_service_url(app, client):
    token = _token(app, subject="mentor1")
    target = "https://zulip.example.edu/#narrow/stream/1"
    response = client.get("/launch", query_string={"token": token, "next": target})
    assert response.headers["Location"] == target


@pytest.mark.parametrize("target", ["https://evil.example/", "https://zulip.example.edu.evil/",
                                    "//zulip.example.edu/", "https://user@zulip.example.edu/"])
def test_launch_refuses_unregistered_next(app, client, target):
    response = client.get("/launch", query_string={"token": _token(app), "next": target})
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_launch_token_is_single_use(app, client):
    token = _token(app)
    assert client.get("/launch", query_string={"token": token}).status_code == 302
    other = app.test_client()
    replay = other.get("/launch", query_string={"token": token})
    assert replay.status_code == 400
    assert other.get("/").status_code == 302


def test_launch_token_expires(app, client):
    token = _token(app)
    clock.advance(70)
    assert client.get("/launch", query_string={"token": token}).status_code == 400


@pytest.mark.parametrize("changes", [
    {"aud": "https://other-bridge.example"},
    {"iss": "someone-else"},
    {"exp": None},
    {"jti": None},
    {"jti": "short"},
    {"sub": None},
])
def test_launch_refuses_bad_claims(app, client, changes):
    assert client.get("/launch", query_string={"token": _token(app, **changes)}).status_code \
        == 400


def test_launch_refuses_lifetime_over_60_seconds(app, client):
    now = clock.timestamp()
    token = _token(app, iat=now, exp=now + 3600)
    assert client.get("/launch", query_string={"token": token}).status_code == 400


def test_launch_refuses_bad_signature_and_alg_none(app, client):
    settings = app.config["IDP"]
    forged = jwt.encode({"alg": "HS256"}, {"iss": "lms", "aud": settings.issuer,
                                           "sub": "student:1", "iat": clock.timestamp(),
                                           "exp": clock.timestamp() + 30, "jti": "x" * 16},
                        OctKey.import_key(b"not-the-shared-secret-not-the-shared"))
    assert client.get("/launch", query_string={"token": forged}).status_code == 400
    header, payload, _sig = _token(app).split(".")
    none_header = "eyJhbGciOiJub25lIn0"  # {"alg":"none"}
    assert client.get("/launch", query_string={"token": f"{none_header}.{payload}."}) \
        .status_code == 400


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "x" * 5000, "\xff\xfe.\x00.\x01",
                                   "e30.e30.e30"])
def test_launch_malformed_tokens(client, token):
    response = client.get("/launch", query_string={"token": token})
    assert response.status_code == 400
    assert "invalid, expired or already used" in response.get_data(as_text=True)


def test_launch_refuses_inactive_and_missing_people(app, client):
    assert client.get("/launch", query_string={"token": _token(app, subject="student:5")}) \
        .status_code == 403
    assert client.get("/launch", query_string={"token": _token(app, subject="student:9999")}) \
        .status_code == 403
    assert client.get("/").status_code == 302


def test_launch_disabled_without_secret(make_app):
    app = make_app(IDP_LAUNCH_SECRET="")
    response = app.test_client().get("/launch", query_string={"token": "a.b.c"})
    assert response.status_code == 400


def test_cli_prints_a_working_launch_link(app):
    result = app.test_cli_runner().invoke(args=["lms", "launch-link", "student2"])
    assert result.exit_code == 0, result.output
    url = urlsplit(result.output.strip())
    query = parse_qs(url.query)
    response = app.test_client().get(url.path, query_string={"token": query["token"][0],
                                                              "next": query["next"][0]})
    assert response.status_code == 302
    missing = app.test_cli_runner().invoke(args=["lms", "launch-link", "nobody"])
    assert missing.exit_code != 0 and "no LMS person" in missing.output




def test_revocation_ends_launch_links_issued_before_it(app, client):
    """Issue #11 item 5: a link minted before revoke_person is refused like any failed link,
    although the LMS still lists the person as active; one minted afterwards works."""
    from idp import revocation
    from idp.extensions import db

    before = sign_launch_token(app.config["IDP"], "student:1")
    by_username = _token(app, subject="student1")
    with app.app_context():
        revocation.revoke_person(db.session, "student:1", "removed, then reactivated")
        db.session.commit()
    for token in (before, by_username):
        refused = client.get("/launch", query_string={"token": token})
        assert refused.status_code == 400
        assert "invalid, expired or already used" in refused.get_data(as_text=True)
        assert client.get("/").status_code == 302
    clock.advance(1)
    after = sign_launch_token(app.config["IDP"], "student:1")
    assert client.get("/launch", query_string={"token": after}).status_code == 302
    assert "Hello," in client.get("/").get_data(as_text=True)
