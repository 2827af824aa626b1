"""Remembered consent (issue 12 item 10): asked once per set of scopes, prompt=none then
succeeds, the person revokes on "connected apps", staff with the CLI, all gone at
deprovisioning; revoking ends the client's tokens for the person."""

from __future__ import annotations

import re

import requests

from idp import revocation
from idp.extensions import db
from idp.oidc.models import OIDCConsent
from tests.helpers import csrf_from, http_login
from tests.oidc.conftest import authorize, exchange, redirect_params

_FIELDS = re.compile(r'name="([^"]+)" value="([^"]*)"')


def allow(session, live_server, page) -> dict:
    form = dict(_FIELDS.findall(page.text))
    return redirect_params(session.post(live_server + "/oauth/authorize/consent",
                                        data={**form, "decision": "allow"},
                                        allow_redirects=False))


def test_prompt_none_for_an_untrusted_client_succeeds_after_consent(live_server, make_client,
                                                                     browser_session):
    """The request that showed it: prompt=none always answered consent_required."""
    app_client = make_client("third-party", trusted=False)
    first = authorize(browser_session, live_server, app_client, scope="openid email")
    assert first.status_code == 200 and "Allow third-party?" in first.text
    assert "If you allow, this is remembered" in first.text and 'href="/account/apps"' in first.text
    assert "code" in allow(browser_session, live_server, first)
    again = redirect_params(authorize(browser_session, live_server, app_client,
                                      scope="openid email", prompt="none"))
    assert "code" in again
    fewer = redirect_params(authorize(browser_session, live_server, app_client,
                                      scope="openid"))
    assert "code" in fewer
    more = authorize(browser_session, live_server, app_client, scope="openid email profile")
    assert more.status_code == 200 and "Allow third-party?" in more.text
    more_none = redirect_params(authorize(browser_session, live_server, app_client,
                                          scope="openid email profile", prompt="none"))
    assert more_none["error"] == "consent_required"
    forced = authorize(browser_session, live_server, app_client, scope="openid",
                       prompt="consent")
    assert forced.status_code == 200 and "Allow third-party?" in forced.text


def test_consent_is_per_person_and_denial_is_not_remembered(live_server, make_client,
                                                            browser_session):
    app_client = make_client("third-party", trusted=False)
    page = authorize(browser_session, live_server, app_client)
    form = dict(_FIELDS.findall(page.text))
    denied = browser_session.post(live_server + "/oauth/authorize/consent",
                                  data={**form, "decision": "deny"}, allow_redirects=False)
    assert redirect_params(denied)["error"] == "access_denied"
    none = redirect_params(authorize(browser_session, live_server, app_client, prompt="none"))
    assert none["error"] == "consent_required"
    allow(browser_session, live_server, authorize(browser_session, live_server, app_client))
    other = http_login(live_server, "student2")
    got = redirect_params(authorize(other, live_server, app_client, prompt="none"))
    assert got["error"] == "consent_required"


def test_connected_apps_page_lists_and_revokes_with_csrf(app, live_server, make_client,
                                                         browser_session):
    app_client = make_client("third-party", trusted=False)
    got = allow(browser_session, live_server,
                authorize(browser_session, live_server, app_client))
    access = exchange(live_server, app_client, got["code"]).json()["access_token"]
    start = browser_session.get(live_server + "/")
    assert 'href="/account/apps"' in start.text
    page = browser_session.get(live_server + "/account/apps")
    assert page.status_code == 200 and "third-party" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    forged = browser_session.post(live_server + "/account/apps/revoke",
                                  data={"client_id": app_client.client_id},
                                  allow_redirects=False)
    assert forged.status_code == 400
    assert _userinfo(live_server, access) == 200
    done = browser_session.post(live_server + "/account/apps/revoke", data={
        "client_id": app_client.client_id, "csrf_token": csrf_from(page.text)},
        allow_redirects=False)
    assert done.status_code == 303 and done.headers["Location"].endswith("/account/apps")
    assert _userinfo(live_server, access) == 401
    assert "third-party" not in browser_session.get(live_server + "/account/apps").text
    none = redirect_params(authorize(browser_session, live_server, app_client, prompt="none"))
    assert none["error"] == "consent_required"


def test_connected_apps_hostile_input(live_server, make_client, browser_session):
    token = csrf_from(browser_session.get(live_server + "/").text)  # the sign-out form's
    for client_id in ("", "x" * 5000, "é", "' OR 1=1 --"):
        response = browser_session.post(live_server + "/account/apps/revoke", data={
            "client_id": client_id, "csrf_token": token}, allow_redirects=False)
        assert response.status_code in (303, 400), (client_id, response.status_code)
    anonymous = requests.get(live_server + "/account/apps", allow_redirects=False)
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_cli_lists_and_revokes_and_deprovisioning_forgets(app, live_server, make_client,
                                                          browser_session):
    app_client = make_client("third-party", trusted=False)
    got = allow(browser_session, live_server,
                authorize(browser_session, live_server, app_client, scope="openid email"))
    access = exchange(live_server, app_client, got["code"]).json()["access_token"]
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["oidc", "consents", "list", "--subject", "student:1"])
    assert listed.exit_code == 0 and "third-party" in listed.output
    assert "scopes=email openid" in listed.output
    revoked = runner.invoke(args=["oidc", "consents", "revoke", "student:1", "--client",
                                  "third-party"])
    assert revoked.exit_code == 0 and "1 tokens" in revoked.output, revoked.output
    assert _userinfo(live_server, access) == 401
    again = runner.invoke(args=["oidc", "consents", "revoke", "student:1"])
    assert again.exit_code != 0 and "no remembered consent" in again.output
    ghost = runner.invoke(args=["oidc", "consents", "list", "--client", "nobody"])
    assert ghost.exit_code != 0 and "no OIDC client" in ghost.output

    allow(browser_session, live_server, authorize(browser_session, live_server, app_client))
    with app.app_context():
        assert db.session.query(OIDCConsent).count() == 1
        revocation.revoke_person(db.session, "student:1", "left the school")
        db.session.commit()
        assert db.session.query(OIDCConsent).count() == 0


def _userinfo(live_server, access) -> int:
    return requests.get(live_server + "/oauth/userinfo",
                        headers={"Authorization": f"Bearer {access}"}).status_code


def test_removing_a_client_removes_its_consents(app, live_server, make_client,
                                                browser_session):
    app_client = make_client("third-party", trusted=False)
    allow(browser_session, live_server, authorize(browser_session, live_server, app_client))
    removed = app.test_cli_runner().invoke(args=["oidc", "remove-client", "third-party"])
    assert removed.exit_code == 0, removed.output
    with app.app_context():
        assert db.session.query(OIDCConsent).count() == 0


def test_concurrent_allows_merge_into_one_consent(app, live_server, make_client):
    """Two tabs allow different scopes at once: one row, holding both (one upsert each)."""
    from tests.oidc.test_config_and_races import _race

    app_client = make_client("third-party", trusted=False)
    browsers = [http_login(live_server, "student1") for _ in range(2)]
    pages = [authorize(b, live_server, app_client, scope=s)
             for b, s in zip(browsers, ("openid email", "openid profile"), strict=True)]
    results = _race([lambda b=b, p=p: allow(b, live_server, p)
                     for b, p in zip(browsers, pages, strict=True)])
    assert all("code" in r for r in results)
    with app.app_context():
        rows = db.session.query(OIDCConsent).all()
        assert len(rows) == 1 and sorted(rows[0].scopes) == ["email", "openid", "profile"]
