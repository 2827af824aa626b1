"""Where the token endpoint's rows go: a client-credentials token commits on its own
(autocommit, on the driver), still hashed at rest and still refused for a removed client."""

from __future__ import annotations

import base64

from sqlalchemy import text

from idp.extensions import db
from idp.hashing import token_digest
from tests.oidc.conftest import delete_client_rows


def _grant(app, service, **form):
    auth = base64.b64encode(f"{service.client_id}:{service.secret}".encode()).decode()
    return app.test_client().post("/oauth/token", headers={"Authorization": f"Basic {auth}"},
                                  data={"grant_type": "client_credentials", **form})


def _rows(app, client_id):
    with app.app_context():
        return db.session.execute(text(
            "SELECT access_token_hash, refresh_token_hash, subject, family_id FROM oidc_tokens "
            "WHERE client_id = :c"), {"c": client_id}).all()


def test_client_credentials_token_is_committed_and_hashed(app, service):
    response = _grant(app, service, scope="lms.context")
    assert response.status_code == 200
    token = response.get_json()["access_token"]
    rows = _rows(app, service.client_id)  # a new session: the row was committed
    assert len(rows) == 1
    access_hash, refresh_hash, subject, family = rows[0]
    assert access_hash == token_digest(token) and token not in access_hash
    assert refresh_hash is None and subject is None and family


def test_removed_client_gets_no_token_even_while_cached(app, service):
    assert _grant(app, service).status_code == 200  # the client is now cached in-process
    delete_client_rows(app, service.client_id)
    refused = _grant(app, service)
    assert refused.status_code == 400  # RFC 6749 §5.2 (authentication itself succeeded)
    assert refused.get_json()["error"] == "invalid_client"
    assert _rows(app, service.client_id) == []


def test_hostile_body_writes_nothing(app, service):
    refused = _grant(app, service, scope="lms.context\x00openid")
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_request"
    assert _rows(app, service.client_id) == []


# -- refresh: read, check the person, then spend and store the successor in one statement ---
def _refresh_row(app, rp, subject="student:1"):
    """A stored refresh token of ``rp`` for ``subject``, as the code exchange stores one."""
    import secrets

    from idp.oidc.tokens import new_family_id, store_token

    value = secrets.token_urlsafe(48)
    with app.app_context():
        store_token({"access_token": secrets.token_urlsafe(32), "refresh_token": value,
                     "scope": "openid profile", "expires_in": 300}, client_id=rp.client_id,
                    subject=subject, family_id=new_family_id(), auth_time=1)
        db.session.commit()
    return value


def _refresh(app, rp, value):
    auth = base64.b64encode(f"{rp.client_id}:{rp.secret}".encode()).decode()
    return app.test_client().post("/oauth/token", headers={"Authorization": f"Basic {auth}"},
                                  data={"grant_type": "refresh_token", "refresh_token": value})


def _family(app, value):
    with app.app_context():
        return db.session.execute(text(
            "SELECT t.refresh_used_at IS NOT NULL, t.revoked_at IS NOT NULL FROM oidc_tokens t "
            "JOIN oidc_tokens o ON o.family_id = t.family_id "
            "WHERE o.refresh_token_hash = :h ORDER BY t.id"), {"h": token_digest(value)}).all()


def test_refresh_rotates_in_one_committed_statement_and_replay_ends_the_family(app, rp):
    old = _refresh_row(app, rp)
    first = _refresh(app, rp, old)
    assert first.status_code == 200
    new = first.get_json()["refresh_token"]
    assert _family(app, old) == [(True, False), (False, False)]   # committed: a new session
    replay = _refresh(app, rp, old)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert _family(app, old) == [(True, True), (False, True)]     # the successor too
    assert _refresh(app, rp, new).status_code == 400


def test_lms_outage_spends_nothing(app, rp, monkeypatch):
    from idp import liveness
    from idp.lms.db import LMSUnavailable

    old = _refresh_row(app, rp)

    def unreachable(*_args, **_kwargs):
        raise LMSUnavailable("test: LMS down")

    with monkeypatch.context() as patch:
        patch.setattr(liveness.LivenessService, "active_person", unreachable)
        assert _refresh(app, rp, old).status_code == 503
    assert _family(app, old) == [(False, False)]                 # not burnt: retry works
    assert _refresh(app, rp, old).status_code == 200


def test_another_clients_token_spends_nothing(app, rp, make_client):
    other = make_client("other-rp")
    old = _refresh_row(app, rp)
    refused = _refresh(app, other, old)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert _family(app, old) == [(False, False)]
    assert _refresh(app, rp, old).status_code == 200


def test_token_spent_between_reading_and_rotation_is_a_replay(app, rp, monkeypatch):
    """The race: another request with the same token wins between this one's reading and its
    rotation. This one stores nothing and answers invalid_grant; the family ends (as for any
    second use, RFC 9700 §4.14.2), the winner's successor included."""
    from idp import liveness

    old = _refresh_row(app, rp)
    checked = liveness.LivenessService.active_person

    def concurrent_winner(self, subject, policy=liveness.Policy.FAIL_CLOSED):
        person = checked(self, subject, policy)
        with app.app_context():   # the winner's rotation, committed meanwhile
            db.session.execute(text("UPDATE oidc_tokens SET refresh_used_at = 1 "
                                    "WHERE refresh_token_hash = :h"), {"h": token_digest(old)})
            db.session.commit()
        return person

    with monkeypatch.context() as patch:
        patch.setattr(liveness.LivenessService, "active_person", concurrent_winner)
        lost = _refresh(app, rp, old)
    assert lost.status_code == 400 and lost.get_json()["error"] == "invalid_grant"
    assert _family(app, old) == [(True, True)]   # no successor stored, family revoked


def test_revoked_or_expired_refresh_token_is_refused_and_not_spent(app, rp):
    from idp import clock

    revoked, expired = _refresh_row(app, rp), _refresh_row(app, rp)
    with app.app_context():
        db.session.execute(text("UPDATE oidc_tokens SET revoked_at = 1 "
                                "WHERE refresh_token_hash = :h"), {"h": token_digest(revoked)})
        db.session.execute(text("UPDATE oidc_tokens SET refresh_expires_at = :t "
                                "WHERE refresh_token_hash = :h"),
                           {"h": token_digest(expired), "t": clock.timestamp() - 1})
        db.session.commit()
    for value, state in ((revoked, [(False, True)]), (expired, [(False, False)])):
        refused = _refresh(app, rp, value)
        assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
        assert _family(app, value) == state
