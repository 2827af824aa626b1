"""Fixtures of the context API tests: a clean cache and breaker per test, LMS facts the tests
compare against, and real bearer tokens from the bridge's OIDC provider."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import text

from idp.extensions import db
from idp.oidc.clients import create_client


@pytest.fixture(autouse=True)
def _fresh_context(app):
    """Every test starts with empty context caches and a closed breaker."""
    service = app.extensions["context"].service
    liveness = app.extensions["liveness"]
    for fresh in (service.cache.clear, service.breaker.reset, liveness.forget_all,
                  liveness.breaker.reset):
        fresh()
    yield
    for fresh in (service.cache.clear, service.breaker.reset, liveness.forget_all,
                  liveness.breaker.reset):
        fresh()


@pytest.fixture
def service(app):
    return app.extensions["context"].service


@pytest.fixture(scope="session")
def lms_facts(app):
    """Ids the tests need: another mentor's student, a mentor with students, etc."""
    engine = app.extensions["lms_directory"].engine
    with engine.connect() as conn:
        other = conn.execute(text(
            "SELECT id, mentor_id FROM students WHERE mentor_id <> 1 AND is_active "
            "ORDER BY id LIMIT 1")).one()
        mentor1_students = conn.execute(text(
            "SELECT count(*) FROM students WHERE mentor_id = 1")).scalar()
        max_student = conn.execute(text("SELECT max(id) FROM students")).scalar()
    return {"other_student": other.id, "other_mentor": other.mentor_id,
            "mentor1_students": mentor1_students, "max_student": max_student}


def register_client(app, name: str, **options) -> tuple[str, str | None]:
    """Register an OIDC client the way ``flask oidc add-client`` does; (client_id, secret)."""
    with app.app_context():
        new = create_client(name=name, **options)
        db.session.commit()
        return new.client.client_id, new.secret


def basic_auth(client_id: str, secret: str) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.fixture
def service_token(app, client) -> dict:
    """A real client-credentials token (RFC 6749 §4.4) with scope lms.context from the
    bridge's own token endpoint; ``["headers"]`` is ready to send."""
    client_id, secret = register_client(app, "ai-agent", redirect_uris=[],
                                        grant_types=["client_credentials"],
                                        scopes=["lms.context"])
    response = client.post("/oauth/token", headers=basic_auth(client_id, secret),
                           data={"grant_type": "client_credentials", "scope": "lms.context"})
    assert response.status_code == 200, response.get_data(as_text=True)
    token = response.json
    token.update(client=(client_id, secret),
                 headers={"Authorization": f"Bearer {token['access_token']}"})
    return token
