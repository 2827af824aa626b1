"""Revocation: one call ends sessions, OIDC tokens and codes, SAML logins and cached answers in
the caller's transaction (all or nothing), and every web process drops the person from its
caches within a second (LISTEN/NOTIFY), proven with the shipped server's workers."""

from __future__ import annotations

import secrets
import time

import pytest
import requests
from sqlalchemy import select

from idp import clock, revocation
from idp.extensions import db
from idp.models import LoginSession
from idp.oidc.models import OIDCToken
from idp.saml.models import SamlLogin
from tests.helpers import ShippedServer, access_lines, client_login, stored_bearer

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
def workers(env, tmp_path):
    """The shipped server (its unit's 4 workers of 4 threads), a 300 s liveness cache,
    listeners on; its access log names the worker of each request."""
    with ShippedServer({**env, "IDP_LIVENESS_CACHE_SECONDS": "300",
                        "IDP_REVOCATION_LISTENER": "on"}, tmp_path) as server:
        yield server


def _lines(server: ShippedServer) -> list[tuple[str, str, str]]:
    """(worker pid, status, path) of each request so far."""
    return [(pid, status, path) for pid, _method, path, status in access_lines(server.output())]


def test_every_worker_drops_the_person_within_a_second(app, workers, lms_admin):
    base, log, count = workers.base, workers, len(workers.worker_pids())
    headers = {"Authorization": f"Bearer {_token(app, 'student:1')}"}
    url, path = base + PROFILE.format(1), PROFILE.format(1)
    for _ in range(300):  # until every worker has cached "student:1 is active"
        answer = requests.get(url, headers=headers, timeout=5)
        assert answer.status_code == 200, (answer.text, workers.output()[-3000:])
        if len({pid for pid, status, p in _lines(log) if p == path}) == count:
            break
    assert len({pid for pid, _, p in _lines(log) if p == path}) == count
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
        if len({pid for pid, _, p in _lines(log)[after:] if p == path}) == count:
            break
    late = _lines(log)[after:]
    assert len({pid for pid, _, _ in late}) == count and {s for _, s, _ in late} == {"401"}
