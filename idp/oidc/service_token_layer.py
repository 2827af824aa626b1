"""A successful client-credentials grant answered below Flask (RFC 6749 §4.4, §5.1).

A service asking for a token is the token endpoint's most frequent request, and Flask's
request machinery (request context, URL matching, cookie session, before/after hooks) was about
40 % of its CPU. :class:`ServiceTokenLayer` sits in front of the Flask app (inside ProxyFix, so
scheme and host are the proxy-corrected ones) and looks only at ``POST /oauth/token`` without
a query string, with a form body (``application/x-www-form-urlencoded``) of a declared
``Content-Length`` of at most ``MAX_BODY_BYTES``. It reads that body once, parses it with
Flask's own form parser, applies the endpoint's shape checks
(:func:`.params.check_machine_request`) and lets :func:`.service_tokens.issue_service_token`
decide and issue, inside an app context only.

- The grant succeeds: the layer answers with Authlib's response, the security headers every
  answer carries (:class:`~idp.headers.SecurityHeaders`) and the metrics Flask's hooks and the
  token view record (``idp_http_requests_total``/``idp_http_request_seconds`` labelled
  ``oidc.token``, ``idp_oidc_token_requests_total``): byte for byte what Flask answers.
- Anything else (a refused check, another content type, a query string, no or an odd
  length, a chunked body): Flask gets the request unchanged, its body handed back
  (``wsgi.input`` holds the bytes read, ``CONTENT_LENGTH`` is kept), so Flask and Authlib word
  the error as before.
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

from flask import Flask, json
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header

from ..headers import SecurityHeaders
from ..metrics import count_answer
from .metrics import count_token_request
from .params import MAX_BODY_BYTES, ParamProblem, check_machine_request
from .service_tokens import GRANT, issue_service_token, token_response

PATH = "/oauth/token"
ENDPOINT = "oidc.token"   # the token view's endpoint: the label Flask's hooks give its metrics
FAILURE = "idp.oidc.service_token_failure"   # environ key: the exception the grant raised
FORM = "application/x-www-form-urlencoded"
# Flask's own form parser for this type, as Flask's request builds it (a form body this size
# is below every limit Flask sets; a body that is not UTF-8 parses to an empty form).
_FORM_PARSER = FormDataParser(cls=ImmutableMultiDict)


class ServiceTokenLayer:
    """WSGI middleware: ``app.wsgi_app = ServiceTokenLayer(app, https)`` (before ProxyFix
    wraps it)."""

    def __init__(self, app: Flask, https: bool) -> None:
        self.app = app
        self.next = app.wsgi_app
        self.security_headers = SecurityHeaders(https)
        self._answer = None    # (first response, its headers, where Content-Length is)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST" \
                or environ.get("QUERY_STRING"):
            return self.next(environ, start_response)
        started = time.perf_counter()
        mimetype, options = parse_options_header(environ.get("CONTENT_TYPE"))
        body = _read_body(environ) if mimetype == FORM else None
        if body is None:   # not read: Flask reads it as it always did
            return self.next(environ, start_response)
        answer = self._grant(environ, body, options)
        environ["wsgi.input"] = BytesIO(body)   # the body, handed back whole to Flask
        if answer is None:
            return self.next(environ, start_response)
        count_answer(ENDPOINT, 200, time.perf_counter() - started)   # as Flask's hook does
        status, headers, payload = answer
        start_response(status, headers)
        return [payload]

    def _grant(self, environ: dict, body: bytes, options: dict) -> tuple | None:
        """(status, headers, body) of the success answer, or None (Flask answers)."""
        if len(body) != int(environ["CONTENT_LENGTH"]):
            return None   # cut short: Flask's parsing refuses it
        with self.app.app_context():
            request = self.app.request_class(environ)   # headers, scheme, host; no body read
            form = _FORM_PARSER.parse(BytesIO(body), FORM, len(body), options)[1]
            try:
                check_machine_request(request, form)
            except ParamProblem:
                return None
            try:
                token = issue_service_token(request, form)
            except Exception as exc:   # the token view raises it inside Flask
                environ[FAILURE] = exc
                return None
            if token is None:
                return None
            return self._respond(token)

    def _respond(self, token: dict) -> tuple:
        """Authlib's answer with the security headers, as Flask sends it. The first one is
        rendered by Authlib and werkzeug and kept; later ones differ from it only in the body
        (Authlib's ``json.dumps``, Flask's) and its Content-Length: the same bytes, without
        building a werkzeug response each time."""
        if self._answer is None:
            response = self.security_headers(token_response(token))
            headers = response.get_wsgi_headers({}).to_wsgi_list()
            self._answer = (response, headers, [name for name, _ in headers].index(
                "Content-Length"))
            count_token_request(GRANT, response)
            return response.status, headers, response.get_data()
        first, headers, at = self._answer
        count_token_request(GRANT, first)
        payload = json.dumps(token).encode()
        headers = list(headers)
        headers[at] = ("Content-Length", str(len(payload)))
        return first.status, headers, payload


def _read_body(environ: dict) -> bytes | None:
    """The body when its length is declared, plain digits and within ``MAX_BODY_BYTES`` (and
    not chunked); else None, and nothing is read. A body cut short is returned as read (and
    handed to Flask, whose parsing refuses it)."""
    declared = environ.get("CONTENT_LENGTH", "")
    if "HTTP_TRANSFER_ENCODING" in environ or not (declared.isascii() and declared.isdigit()):
        return None
    length = int(declared)
    if not 0 < length <= MAX_BODY_BYTES:
        return None
    return environ["wsgi.input"].read(length)
