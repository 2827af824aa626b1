"""Flask's signed-cookie session, without work for requests that carry no cookie.

Flask's ``SecureCookieSessionInterface`` builds a new ``URLSafeTimedSerializer`` for each
request, cookie or not: on API endpoints that never use a cookie session (token endpoint,
context API, /healthz) that was the largest part of opening the session. The serializer is
stateless, so one per key set serves every request and thread.

Machine clients (token endpoint, APIs) send no ``Cookie`` header at all: their session is
opened empty without parsing cookies, and an empty session nobody touched is not saved
(Flask would read six cookie settings to decide to do nothing). A request that carries the
cookie is opened, verified and saved exactly as Flask does.
"""

from __future__ import annotations

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
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

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if "HTTP_COOKIE" not in request.environ and app.secret_key:
            return self.session_class()   # what Flask returns for a request without the cookie
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SecureCookieSession,
                     response: Response) -> None:
        if not session and not session.modified and not session.accessed:
            return   # Flask would neither set nor delete a cookie, nor add Vary: Cookie
        super().save_session(app, session, response)
