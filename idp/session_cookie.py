"""Flask's signed-cookie session, without rebuilding its signer on every request.

Flask's ``SecureCookieSessionInterface`` builds a new ``URLSafeTimedSerializer`` for each
request, cookie or not: on API endpoints that never use a cookie session (token endpoint,
context API, /healthz) that was the largest part of opening the session. The serializer is
stateless, so one per key set serves every request and thread.
"""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class SessionCookies(SecureCookieSessionInterface):
    def __init__(self) -> None:
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        try:
            return self._serializers[keys]
        except KeyError:
            serializer = super().get_signing_serializer(app)
            if len(self._serializers) > 8:  # keys changed at run time (tests): start over
                self._serializers.clear()
            self._serializers[keys] = serializer
            return serializer
