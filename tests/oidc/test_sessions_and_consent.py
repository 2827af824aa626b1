"""The authorization endpoint and the bridge session: prompt=login, max_age, login_hint,
consent for untrusted clients (CSRF kept), and a person deactivated in the LMS."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests

from idp import clock, revocation
from idp.extensions import db
from idp.oidc.resource import BearerError, validate_bearer
from tests.helpers import DEMO_PASSWORD, csrf_from
from tests.oidc.conftest import authorize, exchange, get_code, redirect_params


def login_redirect(response) -> dict[str, str]:
    assert response.status_code == 302, response.text[:300]
    parts = urlsplit(response.headers["Location"])
    assert parts.path == "/login"
    return {k: v[0] for k, v in parse_qs(parts.query).items()}


def sign_in_at(session: requests.Session, base_url: str, login_query: dict,
               login: str = "student1"):
    """Fill the real login form the authorization endpoint sent us to; returns the response
    of the authorization endpoint we come back to."""
    page = session.get(base_url + "/login", params=login_query)
    assert page.status_code == 200
    response = session.post(base_url + "/login", data={
        "csrf_token": csrf_from(page.text), "login": login, "password": DEMO_PASSWORD,
        "next": login_query["next"]}, allow_redirects=False)
    assert response.status_code == 302
    return session.get(base_url + response.headers["Location"], allow_redirects=False)


def id_token_claims(token_response) -> dict:
    from joserfc import jwt
    from joserfc.jwk import KeySet

    base = token_response.url.rsplit("/oauth/", 1)[0]
    keys = KeySet.import_key_set(requests.get(base + "/.well-known/jwks.json").json())
    return jwt.decode(token_response.json()["id_token"], keys).claims


def test_no_session_goes_to_login_and_comes_back_with_a_code(live_server, rp):
    browser = requests.Session()
    query = login_redirect(authorize(browser, live_server, rp, state="s9"))
    assert "reauth" not in query and query["next"].startswith("/oauth/authorize?")
    got = redirect_params(sign_in_at(browser, live_server, query))
    assert got["state"] == "s9" and "code" in got


def test_prompt_login_asks_for_the_password_again(live_server, rp, browser_session):
    clock.advance(120)
    query = login_redirect(authorize(browser_session, live_server, rp, prompt="login"))
    assert query["reauth"] == "1"
    forged = browser_session.get(live_server + query["next"].replace("oidc_login=",
                                                                     "oidc_login=x"),
                                 allow_redirects=False)
    assert login_redirect(forged)["reauth"] == "1"   # a tampered mark proves nothing
    got = redirect_params(sign_in_at(browser_session, live_server, query))
    token = exchange(live_server, rp, got["code"])
    assert abs(id_token_claims(token)["auth_time"] - clock.timestamp()) <= 2


def test_max_age(live_server, rp, browser_session):
    code, _ = get_code(browser_session, live_server, rp, max_age="600")   # fresh enough
    assert exchange(live_server, rp, code).status_code == 200
    clock.advance(700)
    query = login_redirect(authorize(browser_session, live_server, rp, max_age="600"))
    assert query["reauth"] == "1"
    got = redirect_params(sign_in_at(browser_session, live_server, query))
    claims = id_token_claims(exchange(live_server, rp, got["code"]))
    assert clock.timestamp() - claims["auth_time"] <= 600
    got = redirect_params(authorize(browser_session, live_server, rp, max_age="600",
                                    prompt="none"))
    assert "code" in got
    clock.advance(700)
    got = redirect_params(authorize(browser_session, live_server, rp, max_age="600",
                                    prompt="none"))
    assert got["error"] == "login_required"


def test_login_hint_prefills_the_form_and_switches_person(live_server, rp, browser_session):
    same = redirect_params(authorize(browser_session, live_server, rp,
                                     login_hint="student1@example.edu"))
    assert "code" in same
    query = login_redirect(authorize(browser_session, live_server, rp, login_hint="mentor1"))
    assert query["reauth"] == "1" and query["login_hint"] == "mentor1"
    page = browser_session.get(live_server + "/login", params=query)
    assert 'value="mentor1"' in page.text
    got = redirect_params(sign_in_at(browser_session, live_server, query, login="mentor1"))
    claims = id_token_claims(exchange(live_server, rp, got["code"]))
    assert claims["sub"] == "mentor:1" and claims["zulip_role"] == "moderator"


def test_untrusted_client_shows_consent_with_csrf(live_server, make_client, browser_session):
    client = make_client("third-party", trusted=False)
    page = authorize(browser_session, live_server, client, state="c1")
    assert page.status_code == 200 and "Allow third-party?" in page.text
    assert "see your email address" in page.text
    form = dict(__import__("re").findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    no_csrf = {k: v for k, v in form.items() if k != "csrf_token"}
    refused = browser_session.post(live_server + "/oauth/authorize/consent",
                                   data={**no_csrf, "decision": "allow"},
                                   allow_redirects=False)
    assert refused.status_code == 400 and "Location" not in refused.headers
    denied = browser_session.post(live_server + "/oauth/authorize/consent",
                                  data={**form, "decision": "deny"}, allow_redirects=False)
    got = redirect_params(denied)
    assert got["error"] == "access_denied" and got["state"] == "c1"
    allowed = browser_session.post(live_server + "/oauth/authorize/consent",
                                   data={**form, "decision": "allow"}, allow_redirects=False)
    got = redirect_params(allowed)
    assert got["state"] == "c1" and exchange(live_server, client, got["code"]).status_code \
        == 200


def test_prompt_consent_shows_the_page_even_for_trusted(live_server, rp, browser_session):
    page = authorize(browser_session, live_server, rp, prompt="consent")
    assert page.status_code == 200 and "Allow zulip?" in page.text


def test_deactivated_person_gets_no_token_no_userinfo_no_bearer(app, live_server, rp,
                                                                browser_session, lms_admin):
    code, _ = get_code(browser_session, live_server, rp, scope="openid profile email")
    tokens = exchange(live_server, rp, code).json()
    second_code, _ = get_code(browser_session, live_server, rp)
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE username = 'student1'")
    response = exchange(live_server, rp, second_code)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    userinfo = requests.get(live_server + "/oauth/userinfo",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401 and userinfo.json()["error"] == "invalid_token"
    refresh = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"
    with app.test_request_context():
        try:
            validate_bearer(f"Bearer {tokens['access_token']}", "openid")
        except BearerError as error:
            assert (error.status, error.error) == (401, "invalid_token")
        else:
            raise AssertionError("validate_bearer accepted a deactivated person's token")
    # the browser session is gone too, so a new authorization request goes to login
    assert login_redirect(authorize(browser_session, live_server, rp))


def test_revocation_revokes_tokens_and_codes(app, live_server, rp, browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    tokens = exchange(live_server, rp, code).json()
    pending, _ = get_code(browser_session, live_server, rp)
    with app.app_context():
        revocation.revoke_person(db.session, "student:1", "deprovisioned")
        db.session.commit()
    userinfo = requests.get(live_server + "/oauth/userinfo",
                            headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert userinfo.status_code == 401
    refresh = requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret), data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert refresh.json()["error"] == "invalid_grant"
    assert exchange(live_server, rp, pending).json()["error"] == "invalid_grant"


def test_authorization_request_by_post(live_server, rp, browser_session):
    """OIDC Core §3.1.2.1: the authorization endpoint accepts POST (form-encoded) too."""
    response = browser_session.post(live_server + "/oauth/authorize", data={
        "response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uri,
        "scope": "openid email", "state": "p1", "nonce": "n-post"}, allow_redirects=False)
    got = redirect_params(response)
    assert got["state"] == "p1"
    assert id_token_claims(exchange(live_server, rp, got["code"]))["nonce"] == "n-post"
