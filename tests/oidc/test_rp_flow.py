"""A real relying-party library runs the whole code flow against the live bridge: Authlib's
requests client (discovery, PKCE, state, nonce, token, refresh, revocation) and joserfc/Authlib
ID-token validation against the published JWKS."""

from __future__ import annotations

import os
import secrets
import time

import pytest
import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from idp.keys import get_keystore
from tests.oidc.conftest import APP_REDIRECT, ZULIP_REDIRECT

CLAIMS = {"sub", "email", "email_verified", "name", "given_name", "family_name",
          "preferred_username", "zulip_role", "zulip_groups", "lms_kind"}


def discover(base_url: str) -> dict:
    response = requests.get(base_url + "/.well-known/openid-configuration")
    assert response.status_code == 200
    return response.json()


def validate_id_token(id_token: str, config: dict, client_id: str, nonce: str,
                      access_token: str) -> dict:
    """What an RP does: signature with the JWKS (kid), then the OIDC Core §3.1.3.7 checks."""
    keys = KeySet.import_key_set(requests.get(config["jwks_uri"]).json())
    token = jwt.decode(id_token, keys, algorithms=["RS256"])
    assert token.header["alg"] == "RS256" and token.header["kid"] in \
        [k["kid"] for k in keys.as_dict()["keys"]]
    claims = CodeIDToken(token.claims, token.header,
                         options={"iss": {"value": config["issuer"]},
                                  "aud": {"value": client_id}},
                         params={"nonce": nonce, "access_token": access_token})
    claims.validate()
    return dict(claims)


def browser_follow(browser: requests.Session, url: str) -> str:
    """The signed-in browser visits the authorization URL; returns the redirect back to the RP."""
    response = browser.get(url, allow_redirects=False)
    assert response.status_code == 302, response.text[:300]
    return response.headers["Location"]


def test_code_flow_with_discovery_id_token_userinfo_refresh_and_revocation(
        live_server, rp, browser_session):
    config = discover(live_server)
    rp_session = OAuth2Session(rp.client_id, rp.secret, scope="openid profile email",
                               redirect_uri=ZULIP_REDIRECT, code_challenge_method="S256")
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    url, state = rp_session.create_authorization_url(
        config["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    callback = browser_follow(browser_session, url)
    assert callback.startswith(ZULIP_REDIRECT) and f"state={state}" in callback

    token = rp_session.fetch_token(config["token_endpoint"], authorization_response=callback,
                                   code_verifier=verifier)
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    claims = validate_id_token(token["id_token"], config, rp.client_id, nonce,
                               token["access_token"])
    assert CLAIMS <= set(claims)
    assert claims["sub"] == "student:1" and claims["email"] == "student1@example.edu"
    assert claims["email_verified"] is True and claims["zulip_role"] == "member"
    assert claims["lms_kind"] == "student" and "students" in claims["zulip_groups"]
    assert isinstance(claims["auth_time"], int)

    userinfo = rp_session.get(config["userinfo_endpoint"]).json()
    assert {k: userinfo[k] for k in CLAIMS} == {k: claims[k] for k in CLAIMS}
    posted = rp_session.post(config["userinfo_endpoint"])
    assert posted.status_code == 200 and posted.json() == userinfo

    first_refresh = token["refresh_token"]
    refreshed = rp_session.refresh_token(config["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    assert refreshed["refresh_token"] != first_refresh  # rotated
    assert rp_session.get(config["userinfo_endpoint"]).status_code == 200

    revoked = rp_session.revoke_token(config["revocation_endpoint"],
                                      refreshed["refresh_token"],
                                      token_type_hint="refresh_token")
    assert revoked.status_code == 200
    after = rp_session.get(config["userinfo_endpoint"])
    assert after.status_code == 401 and after.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in after.headers["WWW-Authenticate"]


def test_public_client_with_pkce_and_client_secret_post(live_server, make_client,
                                                        browser_session):
    config = discover(live_server)
    public = make_client("spa", APP_REDIRECT, public=True)
    rp_session = OAuth2Session(public.client_id, scope="openid email",
                               redirect_uri=APP_REDIRECT, code_challenge_method="S256",
                               token_endpoint_auth_method="none")
    verifier = secrets.token_urlsafe(48)
    url, _state = rp_session.create_authorization_url(config["authorization_endpoint"],
                                                      code_verifier=verifier, nonce="n-1")
    token = rp_session.fetch_token(config["token_endpoint"],
                                   authorization_response=browser_follow(browser_session, url),
                                   code_verifier=verifier)
    claims = validate_id_token(token["id_token"], config, public.client_id, "n-1",
                               token["access_token"])
    assert claims["email"] == "student1@example.edu" and "name" not in claims  # scope email

    confidential = make_client("post-app", "https://post.example.edu/cb")
    rp_post = OAuth2Session(confidential.client_id, confidential.secret, scope="openid",
                            redirect_uri="https://post.example.edu/cb",
                            token_endpoint_auth_method="client_secret_post")
    url, _state = rp_post.create_authorization_url(config["authorization_endpoint"])
    token = rp_post.fetch_token(config["token_endpoint"],
                                authorization_response=browser_follow(browser_session, url))
    assert set(jwt.decode(token["id_token"], KeySet.import_key_set(
        requests.get(config["jwks_uri"]).json())).claims) >= {"sub", "iss", "aud"}


def test_refresh_reuse_is_refused_by_the_library_and_revokes_the_family(
        live_server, rp, browser_session):
    config = discover(live_server)
    rp_session = OAuth2Session(rp.client_id, rp.secret, scope="openid profile",
                               redirect_uri=ZULIP_REDIRECT)
    url, _state = rp_session.create_authorization_url(config["authorization_endpoint"])
    token = rp_session.fetch_token(config["token_endpoint"],
                                   authorization_response=browser_follow(browser_session, url))
    old_refresh = token["refresh_token"]
    rp_session.refresh_token(config["token_endpoint"])
    with pytest.raises(OAuthError) as error:
        rp_session.refresh_token(config["token_endpoint"], refresh_token=old_refresh)
    assert error.value.error == "invalid_grant"
    # the whole family is gone, including the token issued by the legitimate refresh
    assert rp_session.get(config["userinfo_endpoint"]).status_code == 401


@pytest.fixture
def restore_keys(app):
    """Rotation changes the session-wide keys directory: put its state back afterwards so
    other features' tests keep the key they started with."""
    path = os.path.join(app.config["IDP"].keys_dir, "state.json")
    with open(path) as fh:
        saved = fh.read()
    yield
    with open(path, "w") as fh:
        fh.write(saved)
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime makes KeyStore re-read


def test_keys_rotation_old_id_tokens_still_verify(app, live_server, rp, browser_session,
                                                  restore_keys):
    config = discover(live_server)
    rp_session = OAuth2Session(rp.client_id, rp.secret, scope="openid",
                               redirect_uri=ZULIP_REDIRECT)
    url, _ = rp_session.create_authorization_url(config["authorization_endpoint"], nonce="a")
    old = rp_session.fetch_token(config["token_endpoint"],
                                 authorization_response=browser_follow(browser_session, url))
    with app.app_context():
        store = get_keystore()
        store.rotate()   # stage
        store.rotate()   # activate
        new_kid = store.current().kid
    url, _ = rp_session.create_authorization_url(config["authorization_endpoint"], nonce="b")
    new = rp_session.fetch_token(config["token_endpoint"],
                                 authorization_response=browser_follow(browser_session, url))
    assert jwt.decode(new["id_token"], KeySet.import_key_set(
        requests.get(config["jwks_uri"]).json())).header["kid"] == new_kid
    validate_id_token(old["id_token"], config, rp.client_id, "a", old["access_token"])
    validate_id_token(new["id_token"], config, rp.client_id, "b", new["access_token"])
