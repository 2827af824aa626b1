"""The LMS ↔ Zulip identity bridge: ``create_app()`` builds the Flask app.

Config is read and validated first (a bad value stops start-up with a one-line ConfigError),
then extensions, the LMS directory, signing keys, and each feature package's ``init_app``.
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import secrets
import time
from collections.abc import Mapping
from functools import cached_property
from urllib.parse import urlsplit

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import ConfigError, ProblemList, Settings, load_settings
from .extensions import (
    bridge_connect_args,
    csrf,
    db,
    init_autocommit_engine,
    limit_bridge_statements,
    migrate,
)
from .headers import SecurityHeaders
from .lms.db import (
    begin_request,
    create_lms_engine,
    end_request,
    load_lms_breaker,
    set_bulkhead,
)
from .lms.directory import Directory
from .metrics import count_answer
from .people import RoleMapping
from .session_cookie import SessionCookies

__all__ = ["ConfigError", "create_app"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FEATURES = ("login", "saml", "oidc", "provisioning", "context", "history", "attention",
            "nudges", "agents")


class _Flask(Flask):
    """Flask asks ``inspect`` whether each hook and view is a coroutine function on every
    request (ten times per token request); the answer for a given function never changes."""

    def ensure_sync(self, func):
        try:
            return self._sync[func]
        except (KeyError, TypeError):   # TypeError: not hashable
            wrapped = super().ensure_sync(func)
            if wrapped is func and not inspect.ismethod(func) and len(self._sync) < 4096:
                self._sync[func] = func   # a bound method is a new object on every access
            return wrapped

    @cached_property
    def _sync(self) -> dict:
        return {}


def create_app(env: Mapping[str, str] | None = None, **overrides) -> Flask:
    """Build the app from environment variables (or ``env``); ``overrides`` update Flask config
    (tests)."""
    from importlib import import_module

    from . import cli, housekeeping, keys, liveness, ops, revocation
    from .errors import register_error_handlers
    from .logs import configure_logging
    from .oidc.service_token_layer import ServiceTokenLayer

    env = os.environ if env is None else env
    settings = load_settings(env)
    configure_logging(settings.log_format, settings.log_level)
    app = _Flask(__name__, template_folder=os.path.join(ROOT, "templates"))
    app.session_interface = SessionCookies()
    app.config.update(
        IDP=settings, IDP_ENV=dict(env), SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        # No pre-ping round trip per request: after a database restart the first request
        # answers 503 and the pool reconnects (errors.py).
        SQLALCHEMY_ENGINE_OPTIONS={"pool_pre_ping": False, "pool_size": 10, "max_overflow": 10,
                                   "connect_args": bridge_connect_args(env)},
        # The one cookie (session token and CSRF token). SameSite=Lax: it rides along on
        # top-level GET navigations from other sites (SAML HTTP-Redirect AuthnRequests, OIDC
        # authorization requests, launch links, the hop from a cross-site SAML HTTP-POST to
        # /login?next=/saml/sso/continue/...), never on another site's POST or sub-request.
        SESSION_COOKIE_NAME="idp_session", SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.https,
        # The cookie keeps the expiry set at sign-in, like the session row it names: re-signing
        # it on every request would extend nothing the server honours.
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(seconds=settings.session_lifetime),
        PREFERRED_URL_SCHEME="https" if settings.https else "http",
        MAX_CONTENT_LENGTH=2 * 1024 * 1024, MAX_FORM_MEMORY_SIZE=2 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=3600,
        # The same-origin check compares with IDP_ISSUER (idp/csrf.py), not with the Host.
        WTF_CSRF_SSL_STRICT=False,
    )
    app.config.update(overrides)
    housekeeping.audit_retention_days(app)   # validated at start, like every setting
    app.wsgi_app = ServiceTokenLayer(app, settings.https)   # inside ProxyFix
    if settings.trusted_proxy_count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_count,
                                x_proto=settings.trusted_proxy_count,
                                x_host=settings.trusted_proxy_count)
    db.init_app(app)
    init_autocommit_engine(app)
    limit_bridge_statements(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    csrf.init_app(app)
    app.extensions["lms_directory"] = _directory(settings, env)
    app.before_request(begin_request)   # a request keeps its LMS bulkhead slot to the end
    app.teardown_request(end_request)
    liveness.init_app(app)
    revocation.init_app(app)
    app.extensions["start_links"] = []
    app.extensions["logout_handlers"] = []
    app.extensions["logout_form_targets"] = []   # () -> URLs a sign-out form may redirect to
    app.extensions["login_form_targets"] = []    # (next path) -> URLs the login form may reach
    app.extensions["signing_keys"] = keys.KeyStore(settings.keys_dir,
                                                   common_name=urlsplit(settings.issuer).hostname)
    app.extensions["signing_keys"].ensure()
    register_error_handlers(app)
    _request_hooks(app, settings)
    app.register_blueprint(ops.bp)
    cli.init_app(app)
    problems = ProblemList()   # every feature's bad settings reported together
    for feature in FEATURES:
        problems.check(import_module(f"{__name__}.{feature}").init_app, app)
    problems.raise_if_any()
    return app


def _directory(settings: Settings, env: Mapping[str, str]) -> Directory:
    from .config import env_int

    set_bulkhead(env_int(env, "LMS_MAX_CONCURRENT", 8, minimum=1, maximum=1000),
                 env.get("LMS_BULKHEAD_DIR") or None,
                 env_int(env, "LMS_MAX_CONCURRENT_PER_WORKER", 0, minimum=0, maximum=1000) or None)
    engine = create_lms_engine(settings.lms_database_url,
                               statement_timeout_ms=settings.lms_statement_timeout_ms,
                               connect_timeout=settings.lms_connect_timeout)
    return Directory(engine, RoleMapping(settings.role_map, settings.staff_emails),
                     breaker=load_lms_breaker(env))


def _request_hooks(app: Flask, settings: Settings) -> None:
    """A request id for the logs, work deferred until the response is sent
    (``events.send_after_response``), and the security headers."""

    @app.before_request
    def tag_request() -> None:
        g.request_id = secrets.token_hex(8)
        g.request_started = time.perf_counter()

    @app.after_request
    def count_request(response):
        """Every answer, errors and 503s included (error handlers' answers pass here too)."""
        started = g.get("request_started")
        count_answer(request.endpoint or "unmatched", response.status_code,
                     None if started is None else time.perf_counter() - started)
        return response

    @app.after_request
    def run_after_response(response):
        for task in g.pop("after_response", ()):
            response.call_on_close(task)
        return response

    app.after_request(SecurityHeaders(settings.https))
