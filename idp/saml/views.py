"""SAML endpoints: ``/saml/metadata``, ``/saml/sso`` (Redirect and POST bindings),
``/saml/sso/continue/<token>``, ``/saml/sso/init`` (IdP-initiated) and ``/saml/slo``.

Errors before the SP and its ACS are trusted are error pages (status 400), never a redirect to
a URL taken from the request.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, make_response, redirect, render_template, request

from ..extensions import db
from ..keys import get_keystore
from .constants import BINDING_POST, BINDING_REDIRECT
from .metadata import build_idp_metadata
from .metrics import SAML_REFUSED
from .settings import get_saml_settings
from .slo import RedirectQuery, SloRefused, receive_logout_request, receive_logout_response
from .sso import (
    PostToAcs,
    RedirectSignature,
    SignIn,
    SsoRefused,
    continue_pending,
    idp_initiated,
    receive_authn_request,
    refuse_name_id_policy,
    select_acs,
)

bp = Blueprint("saml", __name__, url_prefix="/saml")

_POST_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
             "base-uri 'none'; frame-ancestors 'none'; form-action {origin}")


def _refused(endpoint: str, exc: SsoRefused | SloRefused, status: int = 400):
    from ..audit import record

    db.session.rollback()
    SAML_REFUSED.labels(endpoint).inc()
    record("saml_" + endpoint, "refused", reason=exc.reason[:200])
    db.session.commit()
    response = make_response(render_template(
        "saml/error.html", title="This sign-in request cannot be used", message=exc.message),
        status)
    response.headers["Cache-Control"] = "no-store"
    return response


def _post_form(answer: PostToAcs) -> Response:
    """The auto-submitting form (bindings §3.5.4): works without JavaScript (visible button);
    the script is a static file, so the CSP needs no inline exemption."""
    parts = urlsplit(answer.acs_url)
    response = make_response(render_template("saml/post.html", answer=answer))
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


@bp.route("/sso", methods=["GET", "POST"])
def sso():
    """SAML bindings §3.4 (GET, deflated) and §3.5 (POST)."""
    settings = get_saml_settings()
    source = request.form if request.method == "POST" else request.args
    message = source.get("SAMLRequest")
    try:
        if not message:
            raise SsoRefused("No SAMLRequest was sent. Start signing in from the service.")
        signature = None
        if request.method == "GET":
            signature = RedirectSignature(request.query_string, request.args.get("SigAlg"),
                                          request.args.get("Signature"))
        sp, authn, token = receive_authn_request(
            settings, binding=BINDING_POST if request.method == "POST" else BINDING_REDIRECT,
            message=message, relay_state=source.get("RelayState"),
            redirect_signature=signature)
        refusal = refuse_name_id_policy(settings, sp, authn, select_acs(sp, authn),
                                        source.get("RelayState"))
        if refusal is not None:
            db.session.commit()
            return _post_form(refusal)
        db.session.commit()
        step = continue_pending(settings, token)
    except SsoRefused as exc:
        return _refused("sso", exc)
    db.session.commit()
    return _post_form(step) if isinstance(step, PostToAcs) else _sign_in(step)


@bp.get("/sso/continue/<token>")
def sso_continue(token: str):
    try:
        step = continue_pending(get_saml_settings(), token)
    except SsoRefused as exc:
        return _refused("sso", exc)
    db.session.commit()
    return _post_form(step) if isinstance(step, PostToAcs) else _sign_in(step)


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
    return _post_form(step) if isinstance(step, PostToAcs) else _sign_in(step)


@bp.get("/slo")
def slo():
    """Single Logout, HTTP-Redirect binding (profiles §4.4)."""
    settings = get_saml_settings()
    args = request.args
    param = "SAMLRequest" if "SAMLRequest" in args else "SAMLResponse"
    query = RedirectQuery(raw=request.query_string, message=args.get(param, ""),
                          relay_state=args.get("RelayState"), sig_alg=args.get("SigAlg"),
                          signature=args.get("Signature"))
    try:
        if not query.message:
            raise SloRefused("No SAMLRequest or SAMLResponse was sent.")
        if param == "SAMLRequest":
            url = receive_logout_request(settings, query)
        else:
            url = receive_logout_response(settings, query)
    except SloRefused as exc:
        return _refused("slo", exc)
    response = redirect(url)
    response.headers["Cache-Control"] = "no-store"
    return response
