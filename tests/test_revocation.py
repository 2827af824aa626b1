"""Revocation: one call ends sessions, OIDC tokens and codes, SAML logins and cached answers in
the caller's transaction (all or nothing), and every web process drops the person from its
caches within a second (LISTEN/NOTIFY), proven with several gunicorn workers."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from idp import clock, revocation
from idp.extensions import db
from idp.models import LoginSession
from idp.oidc.models import OIDCToken
from idp.saml.models import SamlLogin
from tests.helpers import client_login, free_port, stored_bearer

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "/api/v1/lms/students/{}/profile"


def _token(app, subject: str) -> str:
    return stored_bearer(app, "lms.context", subject)["Authorization"].split()[1]


def _saml_login(app, subject: str) -> None:
    """A SAML login record of ``subject``'s browser session (as SSO writes it)."""
    with app.app_context():
        session_id = db.session.scalars(select(LoginSession.id).where(
            LoginSession.subject == subject)).first()
        db.session.add(SamlLogin(login_session_id=session_id, subject=subject,
                                 sp_entity_id="https://zulip.example.edu",
                                 name_id="mentor1@example.edu",
                                 session_index=secrets.token_hex(16), created_at=clock.now()))
        db.session.commit()


def test_revoke_person_ends_everything_in_the_callers_transaction(app, client):
    client_login(client, "mentor1")
    token = _token(app, "mentor:1")
    _saml_login(app, "mentor:1")
    with app.app_context():
        ended = revocation.revoke_person(db.session, "mentor:1", "test")
        db.session.rollback()  # the caller's transaction failed: nothing ended
        assert db.session.scalars(select(LoginSession).where(
            LoginSession.revoked_at.is_(None))).all()
        ended = revocation.revoke_person(db.session, "mentor:1", "left the school")
        db.session.commit()
        assert ended == {"login sessions": 1, "oidc tokens": 1, "oidc consents": 0,
                         "saml logins": 1}
        assert not db.session.scalars(select(LoginSession).where(
            LoginSession.revoked_at.is_(None))).all()
        assert all(t.revoked_at for t in db.session.scalars(select(OIDCToken)))
        assert all(s.ended_at for s in db.session.scalars(select(SamlLogin)))
        assert revocation.revoked_at(db.session, "mentor:1") is not None
    assert client.get(PROFILE.format(1)).status_code == 401
    assert client.get(PROFILE.format(1),
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.fixture
def three_workers(env, tmp_path):
    """gunicorn, three sync workers, a 300 s liveness cache, listeners on; access log with
    the worker pid of each request."""
    port = free_port()
    log = tmp_path / "access.log"
    worker_env = {**os.environ, **env, "IDP_LIVENESS_CACHE_SECONDS": "300",
                  "IDP_REVOCATION_LISTENER": "on", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "3", "-b",
                             f"127.0.0.1:{port}", "--log-level", "warning",
                             "--access-logfile", str(log), "--access-logformat",
                             "%(p)s %(s)s %(U)s", "wsgi:app"], cwd=ROOT, env=worker_env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("gunicorn did not start") from None
            time.sleep(0.1)
    yield base, log
    proc.terminate()
    proc.wait(timeout=20)


def _pids(log: Path, path: str, status: str | None = None) -> set[str]:
    pids = set()
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == path and (status is None or parts[1] == status):
            pids.add(parts[0])
    return pids


def _lines(log: Path) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines() if len(line.split()) == 3]


def test_every_gunicorn_worker_drops_the_person_within_a_second(app, three_workers, lms_admin):
    base, log = three_workers
    headers = {"Authorization": f"Bearer {_token(app, 'student:1')}"}
    url, path = base + PROFILE.format(1), PROFILE.format(1)
    for _ in range(300):  # until all three workers have cached "student:1 is active"
        assert requests.get(url, headers=headers, timeout=5).status_code == 200
        if len({pid for pid, status, p in _lines(log) if p == path}) == 3:
            break
    assert len({pid for pid, _, p in _lines(log) if p == path}) == 3
    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE id = 1")
    # the LMS says inactive, but each worker trusts its 300 s cache until told otherwise
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    with app.app_context():  # only caches are told: nothing is revoked in the database
        revocation.announce_change(db.session, "student:1")
        db.session.commit()
    told = time.monotonic()
    while time.monotonic() < told + 1.0:  # within the second, answers may still be cached
        requests.get(url, headers=headers, timeout=5)
    after = len(_lines(log))
    for _ in range(300):  # after it: every worker asks the LMS again
        assert requests.get(url, headers=headers, timeout=5).status_code == 401
        if len({pid for pid, _, p in _lines(log)[after:] if p == path}) == 3:
            break
    late = _lines(log)[after:]
    assert len({pid for pid, _, _ in late}) == 3 and {s for _, s, _ in late} == {"401"}
