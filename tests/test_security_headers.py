"""Security headers on every class of answer (idp.headers.SecurityHeaders): the one-pass hook
gives exactly what the per-header ``setdefault`` calls it replaced gave, a view's own value
always wins, and nothing is sent twice."""

from __future__ import annotations

import base64

import pytest
from flask import Flask

from idp.headers import CSP, SecurityHeaders

ISSUER = "https://sso.example.edu"
DEFAULTS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY", "Referrer-Policy": "strict-origin-when-cross-origin"}
HSTS = {"Strict-Transport-Security": "max-age=31536000"}


def _reference(response, https: bool):
    """The hook as it was (commit 12c698b): one setdefault per header, in this order."""
    for name, value in {**DEFAULTS, **(HSTS if https else {})}.items():
        response.headers.setdefault(name, value)
    return response


OWN_HEADERS = [
    [],
    [("Cache-Control", "no-store"), ("Pragma", "no-cache")],
    [("Content-Security-Policy", "default-src 'none'")],
    [("content-security-policy", "default-src 'none'"), ("x-frame-options", "SAMEORIGIN")],
    [("Content-Security-Policy", "a"), ("Content-Security-Policy", "b")],
    [(name, "own") for name in {**DEFAULTS, **HSTS}],
]


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("own", OWN_HEADERS)
def test_one_pass_gives_what_setdefault_gave(https, own):
    app = Flask(__name__)
    hook = SecurityHeaders(https)
    for mimetype in ("application/json", "text/html"):
        fast = app.response_class("{}", mimetype=mimetype, headers=own)
        slow = app.response_class("{}", mimetype=mimetype, headers=own)
        assert list(hook(fast).headers) == list(_reference(slow, https).headers)


def _expected(response, https: bool, own_csp: bool = False) -> None:
    wanted = {**DEFAULTS, **(HSTS if https else {})}
    if own_csp:
        wanted.pop("Content-Security-Policy")
        assert len(response.headers.getlist("Content-Security-Policy")) == 1
    for name, value in wanted.items():
        assert response.headers.getlist(name) == [value], (response.request.path, name)
    if not https:
        assert "Strict-Transport-Security" not in response.headers


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@pytest.mark.parametrize("https", [False, True], ids=["http", "https"])
def test_every_class_of_answer_carries_them_once(app, make_app, https):
    from idp.oidc.clients import create_client

    application = make_app(IDP_ISSUER=ISSUER) if https else app
    base = ISSUER if https else "http://localhost"
    with application.app_context():
        from idp.extensions import db

        service = create_client(name="headers-svc", redirect_uris=[],
                                grant_types=["client_credentials"])
        credentials = _basic(service.client.client_id, service.secret)
        wrong = _basic(service.client.client_id, "wrong")
        db.session.commit()
    client = application.test_client()
    form = {"grant_type": "client_credentials", "scope": "lms.context"}
    answers = [
        client.get("/healthz", base_url=base),                                   # JSON probe
        client.get("/login", base_url=base),                                     # HTML page
        client.get("/", base_url=base),                                          # redirect
        client.get("/no-such-page", base_url=base),                              # 404
        client.get("/oauth/token", base_url=base),                               # 405
        client.get("/.well-known/openid-configuration", base_url=base),          # public JSON
        client.post("/oauth/token", base_url=base, data=form,                    # token 200
                    headers={"Authorization": credentials}),
        client.post("/oauth/token", base_url=base, data=form,                    # token 401
                    headers={"Authorization": wrong}),
        client.post("/oauth/token", base_url=base, data="%%%",                   # token 400
                    content_type="application/x-www-form-urlencoded"),
        client.get("/api/v1/lms/students/1/profile", base_url=base),             # API 401
    ]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:2] == [200, 200] and statuses[2] == 302 and statuses[3:5] == [404, 405]
    assert statuses[6:8] == [200, 401] and statuses[9] == 401
    for answer in answers:
        _expected(answer, https)
