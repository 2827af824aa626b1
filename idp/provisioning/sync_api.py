"""``POST /api/v1/lms/sync/students``: plan now and answer the plan as JSON (the seed's sync
endpoint).

Callers: a staff member's session (with the ``X-CSRFToken`` header of their session), or a bearer
token with scope ``lms.sync`` (RFC 6750 §2.1; a client-credentials token, or a staff member's
token). A dry run by default; ``{"apply": true}`` (JSON body, or ``apply=true`` in the query)
records the plan like any run: subject to the safety guard (a held run waits for
``provision approve``), refused in plan-only mode. Errors are JSON ``{"error",
"error_description"}``; nothing is written unless the whole plan is recorded.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from ..extensions import csrf, db
from ..lms.directory import get_directory
from ..login.sessions import current_person
from ..oidc import resource
from .actions import ACTIONS as VOCABULARY
from .actions import Kind
from .plan import guard
from .runs import recent_targeted_deactivations, record_plan
from .worker import GUARD_WINDOW, snapshot_plan

bp = Blueprint("provisioning_sync", __name__)
SCOPE = "lms.sync"
MAX_LISTED = 1000


def _error(status: int, error: str, description: str, headers: dict | None = None):
    response = jsonify(error=error, error_description=description)
    return response, status, headers or {}


def _caller() -> tuple[str | None, tuple | None]:
    """Who asks (for the audit), or the refusal to answer."""
    header = request.headers.get("Authorization")
    if header is not None:
        try:
            _row, grant, person = resource.check_access_token(header, SCOPE)
        except resource.BearerError as exc:
            challenge = f'Bearer realm="lms-sync", scope="{SCOPE}"'
            if exc.status == 401:
                challenge += f', error="{exc.error}"'
            return None, _error(exc.status, exc.error, exc.description,
                                {"WWW-Authenticate": challenge})
        if person is not None and not person.is_staff:
            return None, _error(403, "insufficient_scope", "only staff may run a sync")
        return f"client:{grant.client_id}", None
    person = current_person()
    if person is None:
        return None, _error(401, "unauthorized", "sign in as staff or send a bearer token",
                            {"WWW-Authenticate": f'Bearer realm="lms-sync", scope="{SCOPE}"'})
    if not person.is_staff:
        return None, _error(403, "forbidden", "only staff may run a sync")
    try:
        validate_csrf(request.headers.get("X-CSRFToken"))
    except ValidationError as exc:
        return None, _error(400, "invalid_request", f"CSRF check failed: {exc}")
    return person.subject, None


def _apply_flag() -> bool | tuple:
    """``apply`` from the JSON body or the query string: a boolean, nothing else."""
    body = None
    if request.content_length:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return _error(400, "invalid_request", "the body must be a JSON object, e.g. "
                                                  '{"apply": false}')
        unknown = sorted(set(body) - {"apply"})
        if unknown:
            return _error(400, "invalid_request", f"unknown field(s): {', '.join(unknown)[:200]}")
    value = body.get("apply", None) if body else None
    raw = request.args.get("apply")
    if value is None and raw is not None:
        value = {"true": True, "false": False}.get(raw.strip().lower(), raw)
    if value is None:
        return False
    if not isinstance(value, bool):
        return _error(400, "invalid_request", "apply must be true or false")
    return value


@bp.post("/api/v1/lms/sync/students")
@csrf.exempt  # bearer callers have no CSRF token; session callers are checked in _caller()
def sync_students() -> ResponseReturnValue:
    caller, refusal = _caller()
    if refusal is not None:
        return refusal
    apply = _apply_flag()
    if isinstance(apply, tuple):
        return apply
    settings = current_app.extensions["provisioning"]["settings"]
    if apply and settings.plan_only:
        return _error(409, "plan_only", f"{settings.plan_only_reason}: a plan can be shown "
                                        f"but not applied")
    plan = snapshot_plan(db.session, get_directory(), settings)  # LMSUnavailable → 503
    held = guard(plan, max_percent=settings.guard_percent, max_count=settings.guard_max)
    body = {
        "dry_run": not apply, "target": settings.target, "people_seen": plan.people_seen,
        "managed": plan.managed, "counts": plan.counts(), "refused": plan.refused,
        "guard": held, "truncated": len(plan.actions) > MAX_LISTED,
        "actions": [{"subject": a.subject, "action": str(a.action),
                     "detail": VOCABULARY[Kind(a.action)].describe(a.payload)}
                    for a in plan.actions[:MAX_LISTED]],
    }
    if apply and not plan.refused:
        recent = recent_targeted_deactivations(db.session, GUARD_WINDOW)
        run = record_plan(db.session, plan, settings, trigger="api",
                          recent_deactivations=recent)
        body["run"] = None if run is None else {"id": run.id, "status": run.status,
                                                "reason": run.reason}
        current_app.logger.info("sync run requested by %s: %s", caller,
                                "nothing to do" if run is None else run.status)
    else:
        db.session.rollback()
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
