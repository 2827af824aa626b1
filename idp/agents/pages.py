"""``/me/privacy``: a student sees and changes whether AI agents and bots may read their
academic context. A CSRF-protected form (Flask-WTF); only the signed-in student's own choice
can be changed, and every change is audited."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    current_app,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from ..extensions import db
from ..login.sessions import current_person
from .sharing import set_sharing, shares

bp = Blueprint("agents_pages", __name__)


def _page(**context) -> Response:
    response = make_response(render_template("agents/privacy.html", **context))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/me/privacy", methods=["GET", "POST"])
def privacy() -> Response:
    person = current_person()
    if person is None:
        return redirect(url_for("login.login", next=url_for("agents_pages.privacy")))
    default = current_app.extensions["agents"].settings.share_default
    if person.kind != "student":
        return _page(person=person, student=False, sharing=None, default=default, saved=False)
    saved = False
    if request.method == "POST":
        choice = request.form.get("share")
        if choice not in ("yes", "no"):
            return make_response(render_template(
                "context/message.html", title="That choice is not valid",
                message="Choose whether AI assistants may read your progress."), 400)
        set_sharing(person.subject, choice == "yes")
        db.session.commit()
        saved = True
    return _page(person=person, student=True, sharing=shares(person.subject), default=default,
                 saved=saved)
