"""Operations: health, readiness, metrics, keys, security headers, demo data."""

from __future__ import annotations

import os
import stat

import psycopg2

from idp.keys import KeyStore
from idp.lms.demo import generate
from tests.helpers import client_login, create_databases


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"bridge_database": "ok", "lms_database": "ok"}


def test_metrics_count_logins_by_outcome(client):
    client_login(client, "student1")
    client_login(client, "student1", "wrong")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'idp_logins_total{method="password",outcome="success"}' in text
    assert 'idp_logins_total{method="password",outcome="failed"}' in text
    assert "idp_lms_query_seconds_bucket" in text
    assert "idp_login_throttled_total" in text


def test_security_headers(client):
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["Cache-Control"] == "no-store"


def test_unknown_path_and_method_are_clear(client):
    assert client.get("/nope").status_code == 404
    assert client.get("/api/v1/nope").get_json()["error"] == "not_found"
    assert client.put("/login").status_code == 405


def test_keys_created_private_and_rotated_in_two_steps(tmp_path):
    store = KeyStore(str(tmp_path / "keys"))
    first = store.ensure()
    assert stat.S_IMODE(os.stat(tmp_path / "keys" / f"{first.kid}.key").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    action, staged = store.rotate()
    assert action == "staged" and store.current().kid == first.kid
    assert {k.kid for k in store.published()} == {first.kid, staged.kid}
    other_process = KeyStore(str(tmp_path / "keys"))
    action, active = other_process.rotate()
    assert action == "activated" and active.kid == staged.kid
    assert store.current().kid == staged.kid  # the first store notices the change
    assert first.kid in {k["kid"] for k in store.jwks()["keys"]}  # retired, still published


def test_demo_generator_is_deterministic(pg):
    create_databases(pg, "demo_a", "demo_b")
    fingerprints = []
    for name in ("demo_a", "demo_b"):
        generate(pg.get_uri(name), students=30, attempts_per_student=5, seed=7,
                 hash_cost="fast", reader_role=None, progress=lambda _m: None)
        with psycopg2.connect(pg.get_uri(name)) as conn, conn.cursor() as cur:
            cur.execute("SELECT md5(string_agg(concat_ws(',', id, username, first_name, "
                        "batch_id, mentor_id, is_active), ';' ORDER BY id)) FROM students")
            students = cur.fetchone()[0]
            cur.execute("SELECT md5(string_agg(concat_ws(',', id, user_id, date, percentage), "
                        "';' ORDER BY id)) FROM attempts")
            attempts = cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM subject_stats")
            fingerprints.append((students, attempts, cur.fetchone()[0]))
    assert fingerprints[0] == fingerprints[1] and fingerprints[0][2] == 30 * 5 * 2


def test_demo_generator_refuses_to_overwrite_without_replace(lms):
    import pytest

    from idp.lms.demo import DemoExists

    with pytest.raises(DemoExists):
        generate(lms, students=10, hash_cost="fast", progress=lambda _m: None)


def test_requests_are_counted_by_endpoint_and_status_503_and_404_included(make_app, app):
    down = make_app(LMS_DATABASE_URL="postgresql://idp_reader@127.0.0.1:1/lms",
                    LMS_CONNECT_TIMEOUT="1")
    client = down.test_client()
    assert client.get("/readyz").status_code == 503
    assert client.get("/no-such-page").status_code == 404
    text = client.get("/metrics").get_data(as_text=True)
    assert 'idp_http_requests_total{endpoint="ops.readyz",status="503"}' in text
    assert 'idp_http_requests_total{endpoint="unmatched",status="404"}' in text
    assert 'idp_http_request_seconds_bucket{endpoint="ops.readyz"' in text
