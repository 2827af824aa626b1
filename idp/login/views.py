"""Login, logout, the start page and LMS launch links."""

from __future__ import annotations

from flask import Blueprint, current_app, make_response, redirect, render_template, request, url_for

from ..audit import record
from ..events import inactive_login_attempt, send_after_response
from ..extensions import db
from ..headers import allow_form_targets, allow_logout_redirects, hook_targets
from ..lms.directory import get_directory
from ..metrics import LOGINS, THROTTLED
from ..net import client_ip
from ..people import parse_subject
from . import throttle
from .forms import LoginForm, LogoutForm
from .launch import LaunchRefused, issued_after_revocation, verify_launch_token
from .redirects import safe_local_path, safe_next
from .sessions import close_session, current_person, open_session

bp = Blueprint("login", __name__)

FAILED_MESSAGE = "That username or password is not right, or the account is not active."


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    return response


def _login_page(form: LoginForm, *, error: str | None = None, status: int = 200,
                retry_after: int | None = None):
    response = make_response(render_template("login/login.html", form=form, error=error,
                                             retry_after=retry_after), status)
    allow_form_targets(response, hook_targets("login_form_targets", form.next.data or "/"))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return _no_store(response)


@bp.get("/")
def index():
    person = current_person()
    if person is None:
        return redirect(url_for("login.login"))
    links = [link for link in current_app.extensions["start_links"] if link.shows_for(person)]
    return allow_logout_redirects(_no_store(make_response(render_template(
        "login/index.html", person=person, links=links, logout_form=LogoutForm()))))


@bp.route("/login", methods=["GET", "POST"])
def login():
    """GET shows the form (or goes straight to ``next`` when signed in, unless ``reauth=1``
    asks for the password again: SAML ForceAuthn, OIDC ``prompt=login``)."""
    form = LoginForm()
    target = safe_local_path(request.values.get("next")) or "/"
    if request.method == "GET":
        form.next.data = target
        form.login.data = (request.args.get("login_hint") or "")[:254]  # OIDC login_hint
        if request.args.get("reauth") != "1" and current_person() is not None:
            return redirect(target)
        return _login_page(form)
    if not form.validate_on_submit():
        return _login_page(form, error="The form expired. Please sign in again.", status=400)
    settings = current_app.config["IDP"]
    login_name = (form.login.data or "").strip()
    keys = throttle.keys_for(settings, login_name, client_ip())
    state = throttle.check(keys)
    if state.retry_after is not None:
        seconds, scope = state.retry_after, state.scope
        THROTTLED.labels(scope).inc()
        LOGINS.labels("password", "throttled").inc()
        record("login", "throttled", login=login_name[:254], scope=scope)
        db.session.commit()
        return _login_page(form, status=429, retry_after=seconds,
                           error=f"Too many failed attempts. Try again in "
                                 f"{throttle.describe_delay(seconds)}.")
    person = get_directory().authenticate(login_name, form.password.data or "")
    if person is None:
        throttle.record_failure(settings, keys)
        LOGINS.labels("password", "failed").inc()
        record("login", "failed", login=login_name[:254])
        db.session.commit()
        return _login_page(form, error=FAILED_MESSAGE, status=401)
    if state.account_counted:
        throttle.clear_account(keys)
        db.session.commit()
    open_session(person, "password")
    LOGINS.labels("password", "success").inc()
    return redirect(safe_local_path(form.next.data) or "/")


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """GET asks for confirmation (a cross-site link cannot log anyone out); POST ends the
    bridge session, then lets each logout handler (SAML Single Logout) continue the chain."""
    form = LogoutForm()
    if request.method == "GET" or not form.validate_on_submit():
        if current_person() is None:
            return _no_store(make_response(render_template("login/logged_out.html")))
        return allow_logout_redirects(_no_store(make_response(
            render_template("login/logout.html", form=form))))
    row = close_session()
    if row is not None:
        LOGINS.labels("logout", "success").inc()
        record("logout", "success", subject=row.subject)
    db.session.commit()
    for handler in current_app.extensions["logout_handlers"]:
        step = handler(row)  # a URL to go to, or a response (an auto-POST form)
        if step:
            return redirect(step) if isinstance(step, str) else step
    return _no_store(make_response(render_template("login/logged_out.html")))


def _launch_refused(reason: str, subject: str | None = None):
    """Every refused link looks the same to the browser (no enumeration); the reason goes to
    the audit trail only."""
    LOGINS.labels("launch", "refused").inc()
    record("launch", "refused", subject=subject, reason=reason)
    db.session.commit()
    return _no_store(make_response(render_template(
        "errors/error.html", title="This link did not work",
        message="The chat link is invalid, expired or already used. Go back to the LMS "
                "and press Chat again."), 400))


@bp.get("/launch")
def launch():
    """Verify an LMS launch token, check the person is active now and the link was issued
    after their last revocation, open a session, continue to ``next`` (a local path or a
    registered service URL)."""
    settings = current_app.config["IDP"]
    try:
        claims = verify_launch_token(settings, request.args.get("token", ""))
    except LaunchRefused as refused:
        db.session.rollback()
        return _launch_refused(refused.reason)
    directory = get_directory()
    sub = claims.sub
    person = directory.get(sub) if parse_subject(sub) else directory.find(sub)
    if person is None or not person.active:
        LOGINS.labels("launch", "inactive").inc()
        record("launch", "refused", subject=person.subject if person else None,
               reason="not active in the LMS")
        db.session.commit()  # the jti stays spent
        if person is not None:
            send_after_response(inactive_login_attempt, directory, subject=person.subject)
        return _no_store(make_response(render_template(
            "errors/error.html", title="Your account is not active",
            message="The LMS does not list this account as active. Ask your mentor or the "
                    "LMS staff."), 403))
    if not issued_after_revocation(claims, person.subject):
        return _launch_refused("issued before the person's revocation",  # the jti stays spent
                               subject=person.subject)
    db.session.commit()  # the jti is spent before the session opens
    open_session(person, "launch")
    LOGINS.labels("launch", "success").inc()
    return redirect(safe_next(request.args.get("next"), settings.launch_service_urls))
