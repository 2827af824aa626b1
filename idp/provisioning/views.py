"""The staff-only status page ``/admin/provisioning``: last runs, pending, held, failures, lag.

Anonymous visitors are sent to sign in; signed-in people who are not staff get 403."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue

from ..extensions import db
from ..login.sessions import current_person
from .status import status_report

bp = Blueprint("provisioning", __name__)


@bp.get("/admin/provisioning")
def status_page() -> ResponseReturnValue:
    person = current_person()
    if person is None:
        return redirect("/login?" + urlencode({"next": request.path}))
    if not person.is_staff:
        abort(403)
    report = status_report(db.session)
    settings = current_app.extensions["provisioning"]["settings"]
    response = current_app.make_response(render_template(
        "provisioning/status.html", report=report, settings=settings))
    response.headers["Cache-Control"] = "no-store"
    return response
