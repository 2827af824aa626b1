"""The client-credentials grant answered below Flask (idp.oidc.service_token_layer, deciding
with idp.oidc.service_tokens) answers exactly as Flask and Authlib do: the same success (status,
every header, body shape, stored row, metrics) and, since it never refuses anything itself, the
same answer for every request it does not take, its body handed back intact."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import text

from idp.extensions import db
from idp.hashing import token_digest
from idp.metrics import REGISTRY
from idp.oidc.service_token_layer import ServiceTokenLayer
from tests.oidc.conftest import delete_client_rows


def _basic(client_id: str, secret: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(
        f"{client_id}:{secret}".encode()).decode()}


def _layer(app) -> ServiceTokenLayer:
    wsgi = app.wsgi_app
    while not isinstance(wsgi, ServiceTokenLayer):
        wsgi = wsgi.app   # ProxyFix
    return wsgi


def _post(app, fast: bool, monkeypatch, headers=None, data=None, query="", **options):
    """POST /oauth/token through the layer (``fast``) or straight to Flask (no layer)."""
    with monkeypatch.context() as patch:
        if not fast:
            patch.setattr(app, "wsgi_app", _layer(app).next)
        return app.test_client().post("/oauth/token" + query, headers=headers or {},
                                      data=data or {}, **options)


def _comparable(response) -> tuple:
    """Status, every header in order, the body (a token's random values by length only)."""
    if response.mimetype != "application/json":
        return response.status_code, response.get_data(), response.headers.to_wsgi_list()
    body = response.get_json()
    for secret in ("access_token", "refresh_token"):
        if secret in body:
            body[secret] = len(body[secret])   # random: compare the shape only
    return response.status_code, list(body.items()), response.headers.to_wsgi_list()


def test_success_is_authlibs_answer_and_row(app, service, monkeypatch):
    taken = []
    monkeypatch.setitem(app.view_functions, "oidc.token", lambda: taken.append(1) or None)
    fast = _post(app, True, monkeypatch, _basic(service.client_id, service.secret),
                 {"grant_type": "client_credentials", "scope": "lms.context"})
    again = _post(app, True, monkeypatch, _basic(service.client_id, service.secret),
                  {"grant_type": "client_credentials"})   # the layer's first answer is kept
    assert taken == []   # Flask's token view (and so Authlib) was not used
    monkeypatch.undo()
    slow = _post(app, False, monkeypatch, _basic(service.client_id, service.secret),
                 {"grant_type": "client_credentials", "scope": "lms.context"})
    assert fast.status_code == 200 and _comparable(fast) == _comparable(slow) \
        == _comparable(again)
    assert fast.headers["Content-Security-Policy"] and fast.headers["Cache-Control"] == \
        "no-store" and fast.headers["Pragma"] == "no-cache"
    with app.app_context():
        rows = db.session.execute(text(
            "SELECT access_token_hash, scope, subject, refresh_token_hash FROM oidc_tokens "
            "WHERE client_id = :c ORDER BY id"), {"c": service.client_id}).all()
    assert [r[0] for r in rows] == [token_digest(response.get_json()["access_token"])
                                    for response in (fast, again, slow)]
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
        patch.setattr(other, "wsgi_app", _layer(other).next)
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


def _samples() -> dict:
    """What Flask's hooks and the token view record for a successful client-credentials grant."""
    return {
        "requests": REGISTRY.get_sample_value(
            "idp_http_requests_total", {"endpoint": "oidc.token", "status": "200"}) or 0,
        "timed": REGISTRY.get_sample_value(
            "idp_http_request_seconds_count", {"endpoint": "oidc.token"}) or 0,
        "issued": REGISTRY.get_sample_value(
            "idp_oidc_token_requests_total",
            {"grant_type": "client_credentials", "outcome": "issued"}) or 0,
        "any other endpoint": sum(
            sample.value for metric in REGISTRY.collect()
            if metric.name == "idp_http_requests"
            for sample in metric.samples
            if sample.name == "idp_http_requests_total"
            and sample.labels["endpoint"] != "oidc.token"),
    }


def test_success_is_counted_as_flask_counts_it(app, service, monkeypatch):
    auth = _basic(service.client_id, service.secret)
    deltas = []
    for fast in (True, False):
        before = _samples()
        assert _post(app, fast, monkeypatch, auth,
                     {"grant_type": "client_credentials"}).status_code == 200
        after = _samples()
        deltas.append({name: after[name] - before[name] for name in before})
    assert deltas[0] == deltas[1] == {"requests": 1, "timed": 1, "issued": 1,
                                      "any other endpoint": 0}


def _raw(app, fast, monkeypatch, body: bytes, headers: dict, **environ) -> tuple:
    return _comparable(_post(app, fast, monkeypatch, headers, body, environ_overrides=environ))


FORM = "application/x-www-form-urlencoded"
GRANT = b"grant_type=client_credentials&scope=lms.context"
HOSTILE = {
    "oversized body": (GRANT + b"&state=" + b"a" * 17000, FORM, {}),
    "missing Content-Length": (GRANT, FORM, {"CONTENT_LENGTH": ""}),
    "garbage Content-Length": (GRANT, FORM, {"CONTENT_LENGTH": "4x"}),
    "negative Content-Length": (GRANT, FORM, {"CONTENT_LENGTH": "-1"}),
    "Content-Length beyond the body": (GRANT, FORM, {"CONTENT_LENGTH": str(len(GRANT) + 9)}),
    "Content-Length short of the body": (GRANT, FORM, {"CONTENT_LENGTH": str(len(GRANT) - 3)}),
    "chunked body": (GRANT, FORM, {"HTTP_TRANSFER_ENCODING": "chunked"}),
    "JSON body": (json.dumps({"grant_type": "client_credentials"}).encode(),
                  "application/json", {}),
    "multipart body": (b"--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\n"
                       b"client_credentials\r\n--x--\r\n", "multipart/form-data; boundary=x", {}),
    "text body": (GRANT, "text/plain", {}),
    "body not UTF-8": (GRANT + b"&state=\xff\xfe", FORM, {}),
    "percent-encoded non-ASCII": (GRANT + b"&state=%C3%A9", FORM, {}),
    "repeated grant_type": (GRANT + b"&grant_type=client_credentials", FORM, {}),
    "query string": (GRANT, FORM, {"QUERY_STRING": "scope=lms.context"}),
    "empty query string parameter": (GRANT, FORM, {"QUERY_STRING": "x"}),
    "PUT": (GRANT, FORM, {"REQUEST_METHOD": "PUT"}),
    "trailing slash": (GRANT, FORM, {"PATH_INFO": "/oauth/token/"}),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_requests_get_flasks_answer(app, service, monkeypatch, case):
    body, content_type, environ = HOSTILE[case]
    headers = {**_basic(service.client_id, service.secret), "Content-Type": content_type}
    fast = _raw(app, True, monkeypatch, body, headers, **environ)
    slow = _raw(app, False, monkeypatch, body, headers, **environ)
    assert fast == slow, case


@pytest.mark.parametrize("authorization", [
    "Digest username=x", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(),
    "basic " + base64.b64encode(b"a:\xff").decode(), "Basic " + "A" * 2000, "Bearer",
])
def test_an_odd_authorization_header_gets_flasks_answer(app, service, monkeypatch,
                                                        authorization):
    headers = {"Authorization": authorization, "Content-Type": FORM}
    fast = _raw(app, True, monkeypatch, GRANT, headers)
    slow = _raw(app, False, monkeypatch, GRANT, headers)
    assert fast == slow and fast[0] in (400, 401), fast


def test_the_body_is_handed_back_to_flask_intact(app, service, monkeypatch):
    """Refused after the layer read the body: Flask's answer names the parameter that was in
    it."""
    auth = {**_basic(service.client_id, service.secret), "Content-Type": FORM}
    repeated = _raw(app, True, monkeypatch, GRANT + b"&scope=openid", auth)
    assert repeated[0] == 400
    assert dict(repeated[1])["error_description"] == "The parameter scope is repeated."
    scope = _raw(app, True, monkeypatch, b"grant_type=client_credentials&scope=nope", auth)
    assert scope[0] == 400 and dict(scope[1])["error"] == "invalid_scope"
    code = _raw(app, True, monkeypatch, b"grant_type=authorization_code&code=abc", auth)
    assert code[0] == 400 and dict(code[1])["error"] == "unauthorized_client"


def test_bridge_database_down_is_the_apps_503(make_app, monkeypatch):
    """The grant raises inside the layer: Flask's error handler answers (503, Retry-After),
    once, not a 500 and not a hang."""
    down = make_app(IDP_DATABASE_URL="postgresql://nobody@127.0.0.1:9/bridge")
    auth = {**_basic("svc-somewhere", "secret"), "Content-Type": FORM}
    retried = []
    server = down.extensions["oidc"].server
    with monkeypatch.context() as patch:
        patch.setattr(type(server), "create_token_response",
                      lambda self, *a: retried.append(1) or None)
        fast = _raw(down, True, monkeypatch, GRANT, auth)
    assert retried == []   # Flask raised the layer's failure; Authlib did not try again
    slow = _raw(down, False, monkeypatch, GRANT, auth)
    assert fast == slow
    assert fast[0] == 503 and ("Retry-After", "10") in fast[2]
    body = dict(fast[1])
    assert body["error"] == "temporarily_unavailable"
    assert "cannot reach its database" in body["error_description"]


def test_behind_a_proxy_the_layer_sees_the_forwarded_scheme(make_app, monkeypatch):
    """Inside ProxyFix: an https issuer behind one proxy, reached over http with
    X-Forwarded-Proto https, is served by the layer, as Flask would serve it."""
    proxied = make_app(IDP_ISSUER="https://sso.example.edu", IDP_TRUSTED_PROXY_COUNT="1")
    with proxied.app_context():
        from idp.oidc.clients import create_client

        new = create_client(name="svc-proxied", redirect_uris=[],
                            grant_types=["client_credentials"], scopes=["lms.context"])
        client_id, secret = new.client.client_id, new.secret
        db.session.commit()
    headers = {**_basic(client_id, secret), "X-Forwarded-Proto": "https",
               "X-Forwarded-Host": "sso.example.edu", "X-Forwarded-For": "198.51.100.9"}
    with monkeypatch.context() as patch:
        patch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)
        taken = []
        patch.setitem(proxied.view_functions, "oidc.token", lambda: taken.append(1) or None)
        fast = proxied.test_client().post("/oauth/token", base_url="http://sso.example.edu",
                                          headers=headers,
                                          data={"grant_type": "client_credentials"})
        assert taken == [] and fast.status_code == 200
        patch.undo()
        patch.delenv("AUTHLIB_INSECURE_TRANSPORT", raising=False)
        plain = proxied.test_client().post("/oauth/token", base_url="http://sso.example.edu",
                                           headers=_basic(client_id, secret),
                                           data={"grant_type": "client_credentials"})
    assert plain.status_code == 400 and plain.get_json()["error"] == "insecure_transport"
    assert fast.headers["Strict-Transport-Security"] == "max-age=31536000"


@pytest.mark.parametrize(("index", "statement"), [
    ("uq_oidc_tokens_refresh_token_hash",
     "SELECT client_id FROM oidc_tokens WHERE refresh_token_hash = $1"),
    ("uq_oidc_tokens_refresh_token_hash",
     "UPDATE oidc_tokens SET refresh_used_at = 1 WHERE refresh_token_hash = $1 "
     "AND refresh_used_at IS NULL"),
    ("ix_oidc_tokens_subject",
     "UPDATE oidc_tokens SET revoked_at = 1 WHERE subject = $1 AND revoked_at IS NULL"),
])
def test_lookups_use_the_partial_indexes(app, index, statement):
    """Migration 0014: a service token's NULLs are left out of these indexes; a lookup by "="
    (prepared, so with a generic plan, as idp.dbapi runs it) still uses them."""
    with app.app_context(), db.engine.connect() as connection:
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        connection.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        connection.exec_driver_sql(f"PREPARE lookup(text) AS {statement}")
        plan = "\n".join(row[0] for row in connection.exec_driver_sql(
            "EXPLAIN EXECUTE lookup('x')"))
        connection.rollback()
        connection.exec_driver_sql("DEALLOCATE lookup")   # the pooled session outlives us
    assert index in plan, plan


def test_refresh_token_hashes_stay_unique_and_service_tokens_need_none(app, service,
                                                                       monkeypatch):
    from sqlalchemy.exc import IntegrityError

    auth = _basic(service.client_id, service.secret)
    for _ in range(2):   # two rows without a refresh token (NULL) are fine
        assert _post(app, True, monkeypatch, auth,
                     {"grant_type": "client_credentials"}).status_code == 200
    insert = text("INSERT INTO oidc_tokens (client_id, subject, scope, access_token_hash, "
                  "refresh_token_hash, family_id, issued_at, expires_in) VALUES "
                  "(:c, 's', '', :a, 'same-refresh', 'f', 0, 60)")
    with app.app_context():
        db.session.execute(insert, {"c": service.client_id, "a": "a1"})
        with pytest.raises(IntegrityError):
            db.session.execute(insert, {"c": service.client_id, "a": "a2"})
        db.session.rollback()


def test_an_oversized_body_is_refused_before_flask_parses_it(app, monkeypatch):
    """params.check_machine_request (shared with the layer) checks the size first."""
    from flask import Request

    parsed = []
    original = Request._load_form_data
    monkeypatch.setattr(Request, "_load_form_data",
                        lambda self: parsed.append(1) or original(self))
    response = app.test_client().post("/oauth/revoke", data=b"token=" + b"a" * 17000,
                                      headers={"Content-Type": FORM})
    assert response.status_code == 413 and parsed == []
