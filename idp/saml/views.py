"""SAML endpoints: ``/saml/metadata``, ``/saml/sso`` (Redirect and POST bindings),
``/saml/sso/continue/<token>``, ``/saml/sso/init`` (IdP-initiated) and ``/saml/slo``
(Redirect and POST). Each request's SAML parameters are read once by :mod:`.bindings`.

Errors before the SP and its ACS are trusted are error pages (status 400), never a redirect to
a URL taken from the request.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, make_response, redirect, render_template, request

from ..extensions import db
from ..keys import get_keystore
from ..login.sessions import SessionView
from .bindings import BindingError, InboundMessage, PostForm, read_post, read_redirect
from .metadata import build_idp_metadata
from .metrics import SAML_REFUSED
from .settings import get_saml_settings
from .slo import (
    LogoutStep,
    SloRefused,
    receive_logout_request,
    receive_logout_response,
    start_logout,
)
from .sso import (
    SignIn,
    SsoRefused,
    continue_pending,
    idp_initiated,
    receive_authn_request,
    refuse_unsupported,
    select_acs,
)

bp = Blueprint("saml", __name__, url_prefix="/saml")

_POST_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
             "base-uri 'none'; frame-ancestors 'none'; form-action {origin}")


_REFUSAL_TITLES = {"sso": "This sign-in request cannot be used",
                   "slo": "This sign-out request cannot be used"}


def _refused(endpoint: str, exc: SsoRefused | SloRefused, status: int = 400):
    from ..audit import record

    db.session.rollback()
    SAML_REFUSED.labels(endpoint).inc()
    record("saml_" + endpoint, "refused", reason=exc.reason[:200])
    db.session.commit()
    response = make_response(render_template(
        "saml/error.html", title=_REFUSAL_TITLES[endpoint], message=exc.message,
        logout=endpoint == "slo"), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _post_form(answer: PostForm, heading: str = "Signing you in",
               lead: str = "You are being sent back to the service.") -> Response:
    """The auto-submitting form (bindings §3.5.4): works without JavaScript (visible button);
    the script is a static file, so the CSP needs no inline exemption."""
    parts = urlsplit(answer.action)
    response = make_response(render_template("saml/post.html", answer=answer,
                                             heading=heading, lead=lead))
    response.headers["Content-Security-Policy"] = _POST_CSP.format(
        origin=f"{parts.scheme}://{parts.netloc}")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _sign_in(step: SignIn):
    query = {"next": step.next_path}
    if step.reauth:
        query["reauth"] = "1"
    return redirect("/login?" + urlencode(query))


@bp.get("/metadata")
def metadata():
    settings = get_saml_settings()
    store = get_keystore()
    keys = [store.current()] + ([store.staged()] if store.staged() else [])
    body = build_idp_metadata(entity_id=settings.entity_id, sso_url=settings.sso_url,
                              slo_url=settings.slo_url, keys=keys)
    response = make_response(body)
    response.headers["Content-Type"] = "application/samlmetadata+xml"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


def _inbound(accepted: tuple[str, ...]) -> InboundMessage:
    """The SAML message of this request, read once from the raw query string (Redirect) or
    the form body (POST); a repeated SAML parameter is refused (:mod:`.bindings`)."""
    if request.method == "POST":
        return read_post(request.form, request.query_string, accepted)
    return read_redirect(request.query_string, accepted)


@bp.route("/sso", methods=["GET", "POST"])
def sso():
    """SAML bindings §3.4 (GET, deflated) and §3.5 (POST)."""
    settings = get_saml_settings()
    try:
        try:
            inbound = _inbound(("SAMLRequest",))
        except BindingError as exc:
            raise SsoRefused(f"{exc} Start signing in from the service.",
                             reason=f"binding: {exc}") from None
        sp, authn, token = receive_authn_request(settings, inbound)
        refusal = refuse_unsupported(settings, sp, authn, select_acs(sp, authn),
                                     inbound.relay_state)
        if refusal is not None:
            db.session.commit()
            return _post_form(refusal)
        db.session.commit()
        step = continue_pending(settings, token)
    except SsoRefused as exc:
        return _refused("sso", exc)
    db.session.commit()
    return _post_form(step) if isinstance(step, PostForm) else _sign_in(step)


@bp.get("/sso/continue/<token>")
def sso_continue(token: str):
    try:
        step = continue_pending(get_saml_settings(), token)
    except SsoRefused as exc:
        return _refused("sso", exc)
    db.session.commit()
    return _post_form(step) if isinstance(step, PostForm) else _sign_in(step)


@bp.get("/sso/init")
def sso_init():
    """IdP-initiated SSO (profiles §4.1.5): ``?sp=<entity id>&subdomain=<realm>``."""
    settings = get_saml_settings()
    sp = request.args.get("sp", "")
    subdomain = request.args.get("subdomain", settings.zulip_subdomain)
    try:
        step = idp_initiated(settings, sp, subdomain,
                             "/saml/sso/init?" + urlencode({"sp": sp, "subdomain": subdomain}))
    except SsoRefused as exc:
        return _refused("sso", exc)
    return _post_form(step) if isinstance(step, PostForm) else _sign_in(step)


def _logout_step(step: LogoutStep) -> Response:
    if isinstance(step, PostForm):
        return _post_form(step, heading="Signing you out",
                          lead="The service you used is being told that you signed out.")
    response = redirect(step.url)
    response.headers["Cache-Control"] = "no-store"
    return response


def logout_hook(closed: SessionView | None) -> Response | None:
    """``logout_handlers`` hook of bridge ``/logout``: the first step of Single Logout through
    the SPs the closed session signed into, if any."""
    step = start_logout(closed)
    return None if step is None else _logout_step(step)


@bp.route("/slo", methods=["GET", "POST"])
def slo():
    """Single Logout (profiles §4.4) over HTTP-Redirect (GET) or HTTP-POST."""
    settings = get_saml_settings()
    try:
        try:
            inbound = _inbound(("SAMLRequest", "SAMLResponse"))
        except BindingError as exc:
            raise SloRefused(str(exc), reason=f"binding: {exc}") from None
        if inbound.is_request:
            step = receive_logout_request(settings, inbound)
        else:
            step = receive_logout_response(settings, inbound)
    except SloRefused as exc:
        return _refused("slo", exc)
    return _logout_step(step)
