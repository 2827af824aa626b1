"""Operations endpoints: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .dbtimeouts import database_failure
from .extensions import db
from .lms.db import LMSUnavailable
from .lms.directory import get_directory
from .metrics import scrape_registry

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz():
    """The process is up (no dependency is checked)."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Both databases answer; 503 names the one that does not."""
    checks, details = {}, {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["bridge_database"] = "ok"
    except SQLAlchemyError as exc:
        db.session.rollback()
        checks["bridge_database"] = "unavailable"
        details["bridge_database"] = database_failure(exc, db.engine.url)
    try:
        get_directory().ping()
        checks["lms_database"] = "ok"
    except LMSUnavailable as exc:
        checks["lms_database"] = "unavailable"
        details["lms_database"] = str(exc)
    ready = all(v == "ok" for v in checks.values())
    for name, detail in details.items():
        log.error("readyz: %s unavailable: %s", name, detail)
    body = {"status": "ok" if ready else "unavailable", "checks": checks}
    if details:
        body["details"] = details
    return jsonify(body), 200 if ready else 503


@bp.get("/metrics")
def metrics():
    """Prometheus text exposition; in multiprocess mode, every worker's values summed."""
    return Response(generate_latest(scrape_registry()), mimetype=CONTENT_TYPE_LATEST)
