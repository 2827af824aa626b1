"""OIDC settings validation, and single use under concurrent redemption."""

from __future__ import annotations

import threading

import pytest

from idp.config import ConfigError
from tests.oidc.conftest import exchange, get_code


@pytest.mark.parametrize("variable,value,words", [
    ("IDP_OIDC_CODE_LIFETIME", "soon", "IDP_OIDC_CODE_LIFETIME"),
    ("IDP_OIDC_CODE_LIFETIME", "3600", "at most 600"),
    ("IDP_OIDC_ACCESS_TOKEN_LIFETIME", "5", "at least 60"),
    ("IDP_OIDC_REFRESH_TOKEN_LIFETIME", "-1", "IDP_OIDC_REFRESH_TOKEN_LIFETIME"),
    ("IDP_OIDC_EXTRA_SCOPES", "lms.reports,bad scope!", "IDP_OIDC_EXTRA_SCOPES"),
])
def test_bad_settings_stop_start_up_with_a_clear_message(make_app, variable, value, words):
    with pytest.raises(ConfigError) as error:
        make_app(**{variable: value})
    assert words in str(error.value) and "\n" not in str(error.value)


def test_extra_scopes_are_advertised_and_grantable(make_app):
    app = make_app(IDP_OIDC_EXTRA_SCOPES="lms.reports")
    document = app.test_client().get("/.well-known/openid-configuration").get_json()
    assert document["scopes_supported"] == ["openid", "profile", "email", "lms.context",
                                            "lms.context.email", "lms.reports"]


def _race(calls) -> list:
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        results[i] = call()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_redemptions_of_one_code_give_one_token(live_server, rp, browser_session):
    code, _ = get_code(browser_session, live_server, rp)
    results = _race([lambda: exchange(live_server, rp, code) for _ in range(4)])
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 400, 400, 400]
    # the losers were code reuse: the winner's tokens are revoked as well
    winner = next(r for r in results if r.status_code == 200).json()
    import requests

    userinfo = requests.get(live_server + "/oauth/userinfo",
                            headers={"Authorization": f"Bearer {winner['access_token']}"})
    assert userinfo.status_code == 401


def test_concurrent_refreshes_of_one_token_give_exactly_one(live_server, rp, browser_session):
    import requests

    code, _ = get_code(browser_session, live_server, rp)
    refresh = exchange(live_server, rp, code).json()["refresh_token"]

    def use():
        return requests.post(live_server + "/oauth/token", auth=(rp.client_id, rp.secret),
                             data={"grant_type": "refresh_token", "refresh_token": refresh})

    results = _race([use for _ in range(4)])
    assert sum(r.status_code == 200 for r in results) == 1
    assert all(r.status_code in (200, 400) for r in results)
    assert all(r.json()["error"] == "invalid_grant" for r in results if r.status_code == 400)
