"""One housekeeping entry point (``maintenance prune``) deletes what is expired or past
retention in every package, and keeps what is still live."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from idp import clock
from idp.extensions import db
from idp.models import AuditEvent, LoginSession
from tests.helpers import client_login


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def test_prune_removes_old_sessions_and_audit_rows_and_keeps_live_ones(app, client, make_app):
    assert client_login(client, "student1").status_code == 302     # a live session + audit
    with app.app_context():
        old = clock.now() - dt.timedelta(days=400)
        db.session.add(LoginSession(id="x" * 64, subject="student:9", auth_method="password",
                                    authenticated_at=old, last_seen_at=old,
                                    expires_at=old + dt.timedelta(hours=8)))
        db.session.add(AuditEvent(at=old, event="login", outcome="success"))
        db.session.commit()
        assert (_count(LoginSession), _count(AuditEvent)) == (2, 2)
    result = app.test_cli_runner().invoke(args=["maintenance", "prune"])
    assert result.exit_code == 0, result.output
    assert "1 login sessions" in result.output and "1 audit rows" in result.output
    assert "OIDC codes" in result.output and "pending requests" in result.output
    with app.app_context():
        assert (_count(LoginSession), _count(AuditEvent)) == (1, 1)
    assert client.get("/").status_code == 200                       # still signed in


def test_audit_retention_zero_keeps_audit_rows(app, make_app):
    keeper = make_app(IDP_AUDIT_RETENTION_DAYS="0")
    with keeper.app_context():
        db.session.add(AuditEvent(at=clock.now() - dt.timedelta(days=4000), event="login",
                                  outcome="success"))
        db.session.commit()
    result = keeper.test_cli_runner().invoke(args=["maintenance", "prune"])
    assert result.exit_code == 0 and "0 audit rows" in result.output


def test_a_malformed_retention_stops_start_up(app, make_app):
    import pytest

    from idp import ConfigError

    with pytest.raises(ConfigError, match="IDP_AUDIT_RETENTION_DAYS"):
        make_app(IDP_AUDIT_RETENTION_DAYS="a year")
