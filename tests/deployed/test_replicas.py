"""Two bridge replicas (each the shipped server with its unit's workers) on one bridge database:
a session opened on one is honoured on the other, a launch link works once across both, and
failed sign-ins count across both. Requests go straight to each replica as nginx would send
them (X-Forwarded-Proto https from the one trusted hop)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import requests

from idp.config import load_settings
from idp.login.launch import sign_launch_token
from tests.helpers import DEMO_PASSWORD, csrf_from

PROXIED = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.10"}


def _cookie(response: requests.Response) -> str:
    match = re.match(r"(idp_session=[^;]+)", response.headers.get("Set-Cookie", ""))
    assert match, response.headers
    return match.group(1)


def _sign_in(replica: str, issuer: str, login: str, password: str = DEMO_PASSWORD):
    page = requests.get(replica + "/login", headers=PROXIED, timeout=10)
    return requests.post(replica + "/login", timeout=10, allow_redirects=False,
                         headers={**PROXIED, "Origin": issuer, "Cookie": _cookie(page)},
                         data={"csrf_token": csrf_from(page.text), "login": login,
                               "password": password, "next": "/"})


def test_a_session_opened_on_one_replica_is_honoured_on_the_other(deployment):
    first, second = deployment.replicas
    signed_in = _sign_in(first, deployment.issuer, "student4")
    assert signed_in.status_code == 302
    start = requests.get(second + "/", timeout=10, allow_redirects=False,
                         headers={**PROXIED, "Cookie": _cookie(signed_in)})
    assert start.status_code == 200 and "student4@example.edu" in start.text


def test_a_launch_link_works_once_across_replicas(deployment):
    first, second = deployment.replicas
    query = "/launch?" + urlencode({"token": sign_launch_token(
        load_settings(deployment.env), "student:8"), "next": "/"})
    used = requests.get(first + query, headers=PROXIED, allow_redirects=False, timeout=10)
    assert used.status_code == 302
    replay = requests.get(second + query, headers=PROXIED, allow_redirects=False, timeout=10)
    assert replay.status_code == 400 and "This link did not work" in replay.text


def test_failed_sign_ins_count_across_replicas(deployment):
    answers = [_sign_in(deployment.replicas[n % 2], deployment.issuer, "student9", "wrong")
               .status_code for n in range(7)]
    assert answers[:5] == [401] * 5 and 429 in answers[5:]
