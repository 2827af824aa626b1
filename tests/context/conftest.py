"""Fixtures of the context API tests: a clean cache and breaker per test, LMS facts the tests
compare against, and bearer tokens honouring the RFC 6750 contract of
``idp.oidc.resource.validate_bearer``."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from idp.oidc import resource
from idp.oidc.resource import BearerError, BearerGrant


@pytest.fixture(autouse=True)
def _fresh_context(app):
    """Every test starts with empty context caches and a closed breaker."""
    service = app.extensions["context"].service
    service.cache.clear()
    service.breaker._failures, service.breaker._state = 0, "closed"
    yield
    service.cache.clear()
    service.breaker._failures, service.breaker._state = 0, "closed"


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


@pytest.fixture
def contract_bearer(monkeypatch):
    """Bearer tokens per the contract of ``validate_bearer`` (RFC 6750): the test registers
    ``token → BearerGrant``; unknown tokens get 401 invalid_token, a grant without the scope
    403 insufficient_scope. Only the result of validate_bearer is replaced."""
    grants: dict[str, BearerGrant | BearerError] = {}

    def validate(header: str | None, required_scope: str) -> BearerGrant:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise BearerError(401, "invalid_token", "malformed Authorization header")
        grant = grants.get(token)
        if grant is None:
            raise BearerError(401, "invalid_token", "unknown token")
        if isinstance(grant, BearerError):
            raise grant
        if required_scope not in grant.scopes:
            raise BearerError(403, "insufficient_scope", f"the token lacks {required_scope}")
        return grant

    monkeypatch.setattr(resource, "validate_bearer", validate)

    def issue(token: str, subject: str | None, scopes=("lms.context",),
              client_id: str = "agent") -> dict:
        grants[token] = BearerGrant(client_id, frozenset(scopes), subject)
        return {"Authorization": f"Bearer {token}"}

    def refuse(token: str, description: str) -> dict:
        grants[token] = BearerError(401, "invalid_token", description)
        return {"Authorization": f"Bearer {token}"}

    issue.refuse = refuse
    return issue
