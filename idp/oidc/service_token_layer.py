"""A successful client-credentials grant answered below Flask (RFC 6749 §4.4, §5.1).

A service asking for a token is the token endpoint's most frequent request, and Flask's
request machinery (request context, URL matching, cookie session, before/after hooks) was about
40 % of its CPU. :class:`ServiceTokenLayer` sits in front of the Flask app (inside ProxyFix, so
scheme and host are the proxy-corrected ones) and looks only at ``POST /oauth/token`` with a
declared ``Content-Length`` of at most ``MAX_BODY_BYTES``. It reads that body once, applies the
endpoint's shape checks (:func:`.params.check_machine_request`) and lets
:func:`.service_tokens.issue_service_token` decide and issue, inside an app context only.

- The grant succeeds: the layer answers with Authlib's response, the security headers every
  answer carries (:class:`~idp.headers.SecurityHeaders`) and the metrics Flask's hooks and the
  token view record (``idp_http_requests_total``/``idp_http_request_seconds`` labelled
  ``oidc.token``, ``idp_oidc_token_requests_total``): byte for byte what Flask answers.
- Anything else (a refused check, a body that is not a plain form, no or an odd length, a
  chunked body): Flask gets the request unchanged, its body handed back (``wsgi.input`` holds
  the bytes read, ``CONTENT_LENGTH`` is kept), so Flask and Authlib word the error as before.
- The grant fails on an exception (the bridge database down): the request goes to Flask with
  the exception under :data:`FAILURE`; the token view raises it, so the answer is the app's
  error handlers' (503 with Retry-After for a database error) and nothing is tried twice.

Per-process work that Flask's first request starts (the revocation listener) is not needed
here: it drops cached people, and this path caches none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from io import BytesIO

from flask import Flask
from werkzeug.exceptions import HTTPException

from ..headers import SecurityHeaders
from ..metrics import HTTP_REQUESTS, HTTP_SECONDS
from .metrics import count_token_request
from .params import MAX_BODY_BYTES, ParamProblem, check_machine_request
from .service_tokens import GRANT, issue_service_token, token_response

PATH = "/oauth/token"
ENDPOINT = "oidc.token"   # the token view's endpoint: the label Flask's hooks give its metrics
FAILURE = "idp.oidc.service_token_failure"   # environ key: the exception the grant raised


class ServiceTokenLayer:
    """WSGI middleware: ``app.wsgi_app = ServiceTokenLayer(app, https)`` (before ProxyFix
    wraps it)."""

    def __init__(self, app: Flask, https: bool) -> None:
        self.app = app
        self.next = app.wsgi_app
        self.security_headers = SecurityHeaders(https)
        self._metrics = None   # (requests counter child, latency histogram child)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.next(environ, start_response)
        started = time.perf_counter()
        body = _read_body(environ)
        if body is None:   # not read: Flask reads it as it always did
            return self.next(environ, start_response)
        response = self._grant(environ, body)
        environ["wsgi.input"] = BytesIO(body)   # the body, handed back whole to Flask
        if response is None:
            return self.next(environ, start_response)
        self._count(time.perf_counter() - started)
        return response(environ, start_response)

    def _grant(self, environ: dict, body: bytes):
        """Authlib's success answer with the security headers, or None (Flask answers)."""
        with self.app.app_context():
            environ["wsgi.input"] = BytesIO(body)
            request = self.app.request_class(environ)
            try:
                check_machine_request(request)
            except (ParamProblem, HTTPException, ValueError):
                return None   # refused, or a body Flask's parsing words (e.g. not UTF-8)
            try:
                token = issue_service_token(request)
            except Exception as exc:   # the token view raises it inside Flask
                environ[FAILURE] = exc
                return None
            if token is None:
                return None
            response = self.security_headers(token_response(token))
            count_token_request(GRANT, response)
            return response

    def _count(self, seconds: float) -> None:
        """What create_app's ``count_request`` hook records for this answer."""
        if self._metrics is None:
            self._metrics = (HTTP_REQUESTS.labels(ENDPOINT, "200"), HTTP_SECONDS.labels(ENDPOINT))
        self._metrics[0].inc()
        self._metrics[1].observe(seconds)


def _read_body(environ: dict) -> bytes | None:
    """The body when its length is declared, plain digits and within ``MAX_BODY_BYTES`` (and
    not chunked); else None, and nothing is read. A body cut short is returned as read (the
    request's form parsing then refuses it, as Flask's does)."""
    declared = environ.get("CONTENT_LENGTH", "")
    if "HTTP_TRANSFER_ENCODING" in environ or not (declared.isascii() and declared.isdigit()):
        return None
    length = int(declared)
    if not 0 < length <= MAX_BODY_BYTES:
        return None
    return environ["wsgi.input"].read(length)
