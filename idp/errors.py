"""Error pages and JSON errors: every failure a person or peer can cause gets a clear answer in
the right format, never a stack trace. Protocol packages (SAML, OIDC, SCIM, context API)
answer their own errors in their protocol's format; this is the fallback."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DatabaseError, DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from .csrf import CROSS_SITE_REASONS
from .dbtimeouts import database_failure
from .extensions import db
from .lms.db import LMSBusy, LMSUnavailable

log = logging.getLogger(__name__)

JSON_PREFIXES = ("/api/", "/oauth/", "/oidc/", "/.well-known/", "/scim/")


def wants_json() -> bool:
    if request.path.startswith(JSON_PREFIXES):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > \
        request.accept_mimetypes["text/html"]


def error_response(status: int, title: str, message: str, code: str):
    if wants_json():
        response = jsonify(error=code, error_description=message)
    else:
        response = render_template("errors/error.html", title=title, message=message)
    return response, status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        log.info("form refused: %s", exc.description)
        if exc.description and exc.description.startswith(CROSS_SITE_REASONS):
            return error_response(400, "This form came from another site",
                                  "For your safety the sign-in service only accepts forms "
                                  "from its own pages. Open the sign-in page again and "
                                  "retry.", "invalid_request")
        return error_response(400, "This form has expired",
                              "The page was open too long or came from another site. Go back, "
                              "reload the page and try again.", "invalid_request")

    def unavailable(what: str, detail: str, message: str, retry_after: int):
        try:
            db.session.rollback()
        except DBAPIError:  # the connection is already gone; the pool discards it
            db.session.close()
        log.error("%s unavailable: %s", what, detail)
        response, status = error_response(503, "Temporarily unavailable", message,
                                          "temporarily_unavailable")
        return response, status, {"Retry-After": str(retry_after)}

    @app.errorhandler(LMSUnavailable)
    def lms_unavailable(exc: LMSUnavailable):
        if isinstance(exc, LMSBusy):  # the bulkhead: come back in a second
            return unavailable("LMS", str(exc), "The LMS is answering slowly right now. Please "
                               "try again in a moment.", 1)
        return unavailable("LMS", str(exc),
                           "The LMS cannot be reached right now. Please try again in a few "
                           "minutes.", 30)

    @app.errorhandler(OperationalError)
    def bridge_database_unavailable(exc: DBAPIError):
        """The bridge's own database is unreachable (or was restarted: the pool reconnects on
        the next request, since connections are not pinged before use)."""
        return unavailable("bridge database", database_failure(exc, db.engine.url),
                           "The sign-in service cannot reach its database right now. Please "
                           "try again shortly.", 10)

    @app.errorhandler(DBAPIError)
    def bridge_database_failed(exc: DBAPIError):
        """A connection lost mid-statement (``psycopg2.DatabaseError: server closed the
        connection unexpectedly``, a restart, a client-side deadline) is the database being
        unavailable too; integrity and programming errors are not."""
        if exc.connection_invalidated or type(exc) in (DatabaseError, InterfaceError):
            return bridge_database_unavailable(exc)
        return unexpected(exc)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed",
                413: "request_too_large", 429: "too_many_requests"}.get(exc.code, "error")
        response, status = error_response(exc.code or 500, exc.name,
                                          exc.description or exc.name, code)
        # RFC 9110 §15.5.6: a 405 "MUST generate an Allow header field" (werkzeug's, kept)
        allow = [(k, v) for k, v in exc.get_headers() if k.lower() == "allow"]
        return response, status, allow

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error")
        return error_response(500, "Something went wrong",
                              "The bridge hit an unexpected error. It has been logged.",
                              "server_error")
