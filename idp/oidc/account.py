"""The "connected apps" page: a person sees the applications they allowed to use their account
(remembered consents, :mod:`.consents`) and revokes them. The revoke form is a CSRF-protected
POST; revoking also ends that application's tokens for the person."""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for

from ..audit import record
from ..extensions import db
from ..login.sessions import current_person
from . import consents
from .params import well_formed

bp = Blueprint("oidc_account", __name__)


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/account/apps")
def connected_apps():
    person = current_person()
    if person is None:
        return redirect(url_for("login.login", next=url_for("oidc_account.connected_apps")))
    return _no_store(make_response(render_template(
        "oidc/connected_apps.html", person=person,
        consents=consents.list_consents(subject=person.subject))))


@bp.post("/account/apps/revoke")
def revoke_app():
    person = current_person()
    if person is None:
        return redirect(url_for("login.login", next=url_for("oidc_account.connected_apps")))
    client_id = request.form.get("client_id", "")
    if not well_formed(client_id):
        return _no_store(make_response(render_template(
            "errors/error.html", title="This request cannot be used",
            message="The application to disconnect is not named correctly."), 400))
    tokens = consents.revoke(db.session, person.subject, client_id)
    if tokens is not None:
        record("oidc_consent", "revoked", subject=person.subject, client_id=client_id,
               tokens=tokens, by="person")
    db.session.commit()
    return redirect(url_for("oidc_account.connected_apps"), 303)
