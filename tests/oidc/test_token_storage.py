"""Where the token endpoint's rows go: a client-credentials token commits on its own
(autocommit, on the driver), still hashed at rest and still refused for a removed client."""

from __future__ import annotations

import base64

from sqlalchemy import text

from idp.extensions import db
from idp.hashing import token_digest


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
    with app.app_context():
        db.session.execute(text("DELETE FROM oidc_tokens WHERE client_id = :c"),
                           {"c": service.client_id})
        db.session.execute(text("DELETE FROM oidc_clients WHERE client_id = :c"),
                           {"c": service.client_id})
        db.session.commit()
    refused = _grant(app, service)
    assert refused.status_code == 400  # RFC 6749 §5.2 (authentication itself succeeded)
    assert refused.get_json()["error"] == "invalid_client"
    assert _rows(app, service.client_id) == []


def test_hostile_body_writes_nothing(app, service):
    refused = _grant(app, service, scope="lms.context\x00openid")
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_request"
    assert _rows(app, service.client_id) == []
