"""The client-credentials fast path (idp.oidc.service_tokens) answers exactly as Authlib does:
the same success (token format, headers, stored row) and, since it never refuses anything
itself, the same error for every request it does not take."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import text

from idp.extensions import db
from idp.hashing import token_digest
from idp.oidc import views
from tests.oidc.conftest import delete_client_rows


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(
        f"{client_id}:{secret}".encode()).decode()}


def _post(app, fast: bool, monkeypatch, headers=None, data=None, query=""):
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(views, "issue_service_token", lambda: None)
        return app.test_client().post("/oauth/token" + query, headers=headers or {},
                                      data=data or {})


def _comparable(response) -> tuple:
    body = response.get_json()
    for secret in ("access_token", "refresh_token"):
        if secret in body:
            body[secret] = len(body[secret])   # random: compare the shape only
    return response.status_code, body, sorted(response.headers.items())


def test_success_is_authlibs_answer_and_row(app, service, monkeypatch):
    taken = []
    server = app.extensions["oidc"].server
    monkeypatch.setattr(type(server), "create_token_response",
                        lambda self, *a: taken.append(1) or None, raising=True)
    fast = _post(app, True, monkeypatch, _basic(service.client_id, service.secret),
                 {"grant_type": "client_credentials", "scope": "lms.context"})
    assert taken == []   # Authlib's token endpoint was not used
    monkeypatch.undo()
    slow = _post(app, False, monkeypatch, _basic(service.client_id, service.secret),
                 {"grant_type": "client_credentials", "scope": "lms.context"})
    assert fast.status_code == 200 and _comparable(fast) == _comparable(slow)
    assert list(fast.get_json()) == list(slow.get_json())   # same key order
    with app.app_context():
        rows = db.session.execute(text(
            "SELECT access_token_hash, scope, subject, refresh_token_hash FROM oidc_tokens "
            "WHERE client_id = :c ORDER BY id"), {"c": service.client_id}).all()
    assert [r[0] for r in rows] == [token_digest(fast.get_json()["access_token"]),
                                    token_digest(slow.get_json()["access_token"])]
    assert {r[1:] for r in rows} == {("lms.context", None, None)}


CASES = {
    "wrong secret": (lambda s: _basic(s.client_id, "wrong"), {}, ""),
    "unknown client": (lambda s: _basic("nosuchclient", "x"), {}, ""),
    "empty secret": (lambda s: _basic(s.client_id, ""), {}, ""),
    "secret in the body": (lambda s: {}, {"client_id": "{id}", "client_secret": "{secret}"},
                           ""),
    "basic and body": (lambda s: _basic(s.client_id, s.secret), {"client_id": "{id}"}, ""),
    "person scope": (lambda s: _basic(s.client_id, s.secret), {"scope": "openid"}, ""),
    "scope not allowed": (lambda s: _basic(s.client_id, s.secret), {"scope": "nope"}, ""),
    "unknown resource": (lambda s: _basic(s.client_id, s.secret),
                         {"resource": "https://elsewhere.example/"}, ""),
    "parameter in the query": (lambda s: _basic(s.client_id, s.secret), {},
                               "?scope=lms.context"),
    "bearer, not basic": (lambda s: {"Authorization": "Bearer x"}, {}, ""),
    "no authentication": (lambda s: {}, {}, ""),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_other_request_gets_authlibs_answer(app, service, monkeypatch, case):
    headers, extra, query = CASES[case]
    data = {"grant_type": "client_credentials",
            **{k: v.format(id=service.client_id, secret=service.secret)
               for k, v in extra.items()}}
    fast = _post(app, True, monkeypatch, headers(service), data, query)
    slow = _post(app, False, monkeypatch, headers(service), data, query)
    assert _comparable(fast) == _comparable(slow), case


def test_a_client_without_the_grant_or_public_gets_authlibs_answer(app, make_client,
                                                                    monkeypatch):
    code_client = make_client("code-only")   # authorization_code + refresh_token only
    for client in (code_client,):
        data = {"grant_type": "client_credentials"}
        fast = _post(app, True, monkeypatch, _basic(client.client_id, client.secret), data)
        slow = _post(app, False, monkeypatch, _basic(client.client_id, client.secret), data)
        assert fast.status_code == 400 and fast.get_json()["error"] == "unauthorized_client"
        assert _comparable(fast) == _comparable(slow)


def test_client_removed_while_cached_gets_authlibs_answer(app, service, monkeypatch):
    auth = _basic(service.client_id, service.secret)
    assert _post(app, True, monkeypatch, auth, {"grant_type": "client_credentials"}) \
        .status_code == 200   # the client is now cached in this process
    delete_client_rows(app, service.client_id)
    fast = _post(app, True, monkeypatch, auth, {"grant_type": "client_credentials"})
    slow = _post(app, False, monkeypatch, auth, {"grant_type": "client_credentials"})
    assert fast.status_code == 400 and fast.get_json()["error"] == "invalid_client"
    assert _comparable(fast) == _comparable(slow)


def test_insecure_transport_gets_authlibs_answer(make_app, make_client, monkeypatch):
    """An http issuer that is not loopback: Authlib refuses the request; so does the bridge
    with the fast path."""
    other = make_app(IDP_ISSUER="http://sso.example.edu")
    with other.app_context():
        from idp.oidc.clients import create_client

        new = create_client(name="svc-insecure", redirect_uris=[],
                            grant_types=["client_credentials"], scopes=["lms.context"])
        client_id, secret = new.client.client_id, new.secret
        db.session.commit()
    auth = _basic(client_id, secret)
    with monkeypatch.context() as patch:
        patch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)
        fast = other.test_client().post("/oauth/token", base_url="http://sso.example.edu",
                                        headers=auth, data={"grant_type": "client_credentials"})
        patch.setattr(views, "issue_service_token", lambda: None)
        slow = other.test_client().post("/oauth/token", base_url="http://sso.example.edu",
                                        headers=auth, data={"grant_type": "client_credentials"})
    assert fast.status_code == 400 and fast.get_json()["error"] == "insecure_transport"
    assert _comparable(fast) == _comparable(slow)


@pytest.mark.parametrize("body", [
    "grant_type=client_credentials&grant_type=client_credentials",
    "grant_type=client_credentials&scope=lms.context&scope=openid",
    "grant_type=client_credentials&scope=openid&scope=lms.context",
])
def test_a_repeated_parameter_gets_authlibs_answer(app, service, monkeypatch, body):
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once."""
    headers = {**_basic(service.client_id, service.secret),
               "Content-Type": "application/x-www-form-urlencoded"}
    fast = _post(app, True, monkeypatch, headers, body)
    slow = _post(app, False, monkeypatch, headers, body)
    assert fast.status_code == 400, fast.get_json()
    assert _comparable(fast) == _comparable(slow)
