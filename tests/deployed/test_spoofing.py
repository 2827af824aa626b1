"""Host and X-Forwarded-* headers: sent straight to a replica (bypassing nginx) they change no
URL the bridge emits; sent through nginx they are overwritten by nginx before the bridge sees
them. Also: the plain-http server only redirects to the issuer."""

from __future__ import annotations

import requests

SPOOFED = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http",
           "X-Forwarded-For": "198.51.100.66", "X-Forwarded-Port": "8443",
           "X-Forwarded-Prefix": "/evil", "Forwarded": "host=evil.example;proto=http"}
EMITTING = ("/saml/metadata", "/.well-known/openid-configuration")


def _assert_issuer_only(body: str, issuer: str) -> None:
    assert issuer + "/" in body
    assert "evil" not in body and "8443" not in body and "http://localhost" not in body


def test_spoofed_headers_straight_to_a_replica_change_no_url(deployment):
    for replica in deployment.replicas:
        for path in EMITTING:
            body = requests.get(replica + path, timeout=10,
                                headers={**SPOOFED, "Host": "evil.example"}).text
            _assert_issuer_only(body, deployment.issuer)
        login = requests.get(replica + "/", headers={**SPOOFED, "Host": "evil.example"},
                             allow_redirects=False, timeout=10)
        assert login.headers["Location"] == "/login"


def test_spoofed_headers_through_nginx_are_overwritten(deployment):
    for path in EMITTING:
        body = deployment.get(path, headers=SPOOFED).text
        _assert_issuer_only(body, deployment.issuer)
    response = deployment.get("/login", headers=SPOOFED)
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_plain_http_redirects_to_the_issuer(deployment):
    response = requests.get(deployment.http_url + "/login?x=1", allow_redirects=False,
                            headers={"Host": "evil.example"}, timeout=10)
    assert response.status_code == 301
    assert response.headers["Location"] == deployment.issuer + "/login?x=1"


def test_static_files_are_served_by_nginx(deployment):
    response = deployment.get("/static/bridge.css")
    assert response.status_code == 200 and "text/css" in response.headers["Content-Type"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_bodies_over_the_limit_stop_at_nginx(deployment):
    response = requests.post(deployment.issuer + "/login", data=b"x" * (3 * 1024 * 1024),
                             verify=str(deployment.pki.ca_pem), timeout=20)
    assert response.status_code == 413


def test_the_client_address_is_the_one_nginx_saw(deployment):
    """A spoofed X-Forwarded-For sent to nginx is replaced by nginx: the audit log and the
    throttle see the real client (here loopback), not the address the client claimed."""
    import psycopg2

    from tests.helpers import csrf_from

    session, ca = requests.Session(), str(deployment.pki.ca_pem)
    page = session.get(deployment.issuer + "/login", headers=SPOOFED, timeout=10, verify=ca)
    answer = session.post(deployment.issuer + "/login", timeout=10, verify=ca, headers={
        **SPOOFED, "Origin": deployment.issuer}, data={
        "csrf_token": csrf_from(page.text), "login": "spoof-probe", "password": "x",
        "next": "/"})
    assert answer.status_code == 401
    with psycopg2.connect(deployment.env["IDP_DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT client_ip FROM audit_events WHERE detail->>'login' = "
                    "'spoof-probe'")
        assert cur.fetchall() == [("127.0.0.1",)]
