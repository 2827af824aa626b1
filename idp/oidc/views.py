"""HTTP endpoints of the OpenID Connect provider.

Discovery (OIDC Discovery §3), JWKS (RFC 7517), authorization (RFC 6749 §4.1, OIDC Core §3.1.2),
consent, token (RFC 6749 §3.2), userinfo (OIDC Core §5.3), revocation (RFC 7009),
introspection (RFC 7662), RP-initiated logout. Machine endpoints are exempt from CSRF; the
consent form is not.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError
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
from itsdangerous import BadSignature, URLSafeSerializer
from werkzeug.datastructures import MultiDict

from .. import clock
from ..audit import record
from ..extensions import csrf, db
from ..headers import allow_form_targets
from ..keys import get_keystore
from ..login.sessions import current_person, current_session
from ..people import Person
from . import consents
from .claims import (
    ACR_VALUES_SUPPORTED,
    CLAIMS_SUPPORTED,
    ClaimsRequestError,
    acr_for,
    essential_acr_values,
    implied_scopes,
    parse_claims_request,
    requested_subject,
)
from .idtoken import decode_id_token_hint
from .metrics import count_token_request
from .params import (
    MAX_AUTHORIZE_QUERY_CHARS,
    ParamProblem,
    check_machine_request,
    check_values,
    well_formed,
)
from .server import get_server, query_client
from .service_token_layer import FAILURE as SERVICE_TOKEN_FAILURE

bp = Blueprint("oidc", __name__)
_LOGIN_MARK = "oidc_login"
_LOGOUT_REFUSED = "This sign-out request cannot be used"
_NOT_SUPPORTED = {"request": "request_not_supported",
                  "request_uri": "request_uri_not_supported",
                  "registration": "registration_not_supported"}


# -- helpers ------------------------------------------------------------------------------
def _json(payload: dict, status: int = 200, headers: dict | None = None) -> Response:
    response = current_app.response_class(json.dumps(payload), status=status,
                                          mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _wants_html() -> bool:
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"]


def _error_page(error: str, description: str, status: int = 400,
                title: str = "This sign-in request is not valid") -> Response:
    """An error that must not be redirected (RFC 6749 §4.1.2.1): HTML for browsers, else JSON."""
    if _wants_html():
        response = make_response(render_template(
            "errors/error.html", title=title,
            message=f"{description} ({error})"), status)
        response.headers["Cache-Control"] = "no-store"
        return response
    return _json({"error": error, "error_description": description}, status)


def _redirect_target(values: MultiDict) -> str | None:
    """``redirect_uri`` when the client exists and registered it exactly, else None."""
    client_id, redirect_uri = values.get("client_id"), values.get("redirect_uri")
    if not well_formed(client_id) or not well_formed(redirect_uri):
        return None
    client = query_client(client_id)
    return redirect_uri if client is not None and client.check_redirect_uri(redirect_uri) \
        else None


def _authorize_problem(values: MultiDict, error: str, description: str) -> Response:
    target = _redirect_target(values)
    if target is None:
        return _error_page(error, description)
    params = [("error", error), ("error_description", description)]
    state = values.get("state")
    if state and well_formed(state, opaque=True):
        params.append(("state", state))
    return redirect(add_params_to_uri(target, params))


def _oauth_error(error: OAuth2Error) -> Response:
    if error.redirect_uri:
        return get_server().handle_error_response(None, error)
    return _error_page(error.error, error.get_error_description() or error.error,
                       error.status_code or 400)


def login_form_targets(next_path: str) -> list[str]:
    """``login_form_targets`` hook: when the login form stands in front of an authorization
    request, its answer redirects (via this endpoint) to the client's registered
    redirect_uri, which the login page's CSP must admit (idp/headers.py)."""
    parts = urlsplit(next_path)
    if parts.path != url_for("oidc.authorize"):
        return []
    target = _redirect_target(MultiDict(parse_qsl(parts.query)))
    return [target] if target else []


def _issuer() -> str:
    return current_app.config["IDP"].issuer


def _request_params() -> MultiDict:
    """The authorization request's parameters (query or form, OIDC Core §3.1.2.1)."""
    values = MultiDict()
    for source in (request.args, request.form):
        for key, value in source.items(multi=True):
            if key != "csrf_token":
                values.add(key, value)
    return values


# -- discovery ----------------------------------------------------------------------------
@bp.get("/.well-known/openid-configuration")
def discovery():
    """OIDC Discovery §3: only what works is advertised."""
    issuer = _issuer()
    state = current_app.extensions["oidc"]
    response = _json({
        "issuer": issuer,
        "authorization_endpoint": issuer + url_for("oidc.authorize"),
        "token_endpoint": issuer + url_for("oidc.token"),
        "userinfo_endpoint": issuer + url_for("oidc.userinfo"),
        "jwks_uri": issuer + url_for("oidc.jwks"),
        "revocation_endpoint": issuer + url_for("oidc.revoke"),
        "introspection_endpoint": issuer + url_for("oidc.introspect"),
        "end_session_endpoint": issuer + url_for("oidc.end_session"),
        "scopes_supported": list(state.settings.scopes),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post",
                                                  "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic",
                                                       "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic",
                                                          "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_supported": list(CLAIMS_SUPPORTED),
        "claims_parameter_supported": True,
        "acr_values_supported": list(ACR_VALUES_SUPPORTED),
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    })
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


@bp.get("/.well-known/jwks.json")
def jwks():
    """RFC 7517: current, staged and recently retired public keys (keys.py)."""
    response = _json(get_keystore().jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


# -- authorization --------------------------------------------------------------------------
@bp.route("/oauth/authorize", methods=["GET", "POST"])
def authorize():
    """RFC 6749 §4.1.1 / OIDC Core §3.1.2: check, sign in (prompt, max_age, login_hint),
    consent, then redirect with a code."""
    values = _request_params()
    try:
        check_values(values)
    except ParamProblem as problem:
        return _authorize_problem(values, problem.error, problem.description)
    if len(urlencode(list(values.items(multi=True)))) > MAX_AUTHORIZE_QUERY_CHARS:
        return _authorize_problem(values, "invalid_request", "The request is too long.")
    for name, error in _NOT_SUPPORTED.items():
        if name in values:
            return _authorize_problem(values, error, f"The {name} parameter is not supported.")
    if values.get("response_mode", "query") != "query":
        return _authorize_problem(values, "invalid_request", "Only response_mode=query is "
                                                             "supported.")
    max_age = values.get("max_age")
    if max_age is not None and (not max_age.isdigit() or len(max_age) > 9):
        return _authorize_problem(values, "invalid_request", "max_age must be a whole number "
                                                             "of seconds.")
    if "redirect_uri" not in values:
        return _error_page("invalid_request", "The redirect_uri parameter is required.")

    # Back from the login form, this is a redirect of that form's POST: a plain 302 to the
    # client, admitted by the login page's CSP form-action (login_form_targets).
    return _authorize(values)


def _authorize(values: MultiDict) -> Response:
    server = get_server()
    person = current_person()
    try:
        grant = server.get_consent_grant(end_user=person)
    except OAuth2Error as error:
        return _oauth_error(error)
    if not values.get("scope", "").strip():
        return _authorize_problem(values, "invalid_scope", "The scope parameter is required "
                                                           "(e.g. openid profile email).")
    prompts = set(values.get("prompt", "").split())
    try:
        claims_request = _claims_request(values, grant)
        hinted = _hinted_subjects(values, claims_request)
    except OAuth2Error as error:
        return _authorize_problem(values, error.error, error.get_error_description())
    if person is not None and hinted - {person.subject}:
        # OIDC Core §3.1.2.2: the request names someone else than the signed-in person.
        if "none" in prompts or _login_mark_time(values.get(_LOGIN_MARK)) is not None:
            return _oauth_error(LoginRequiredError(redirect_uri=grant.redirect_uri,
                                                   state=values.get("state")))
        return _send_to_login(values, reauth=True)
    if person is None or _needs_reauthentication(values, person, prompts) or \
            _acr_unmet(values, claims_request):
        if "none" in prompts:
            return _oauth_error(LoginRequiredError(redirect_uri=grant.redirect_uri,
                                                   state=values.get("state")))
        if person is not None and _acr_unmet(values, claims_request) and \
                _login_mark_time(values.get(_LOGIN_MARK)) is not None:
            return _oauth_error(AccessDeniedError(
                "The requested authentication context cannot be met.",
                redirect_uri=grant.redirect_uri, state=values.get("state")))
        return _send_to_login(values, reauth=person is not None)
    consent_scope = _consent_scope(grant, claims_request)
    if "consent" in prompts or not (grant.client.trusted or consents.covers(
            person.subject, grant.client.client_id, consent_scope)):
        if "none" in prompts:
            return _oauth_error(ConsentRequiredError(redirect_uri=grant.redirect_uri,
                                                     state=values.get("state")))
        fields = [(k, v) for k, v in values.items(multi=True) if k != _LOGIN_MARK]
        response = make_response(render_template(
            "oidc/consent.html", client=grant.client, person=person, fields=fields,
            scopes=consent_scope.split()))
        response.headers["Cache-Control"] = "no-store"
        return allow_form_targets(response, [grant.redirect_uri])
    return _issue_code(grant, person, claims_request)


@bp.post("/oauth/authorize/consent")
def consent():
    """The consent form (CSRF-protected): allow issues the code, deny answers access_denied."""
    values = _request_params()
    values.pop("decision", None)
    try:
        check_values(values)
    except ParamProblem as problem:
        return _authorize_problem(values, problem.error, problem.description)
    person = current_person()
    server = get_server()
    try:
        grant = server.get_consent_grant(end_user=person)
    except OAuth2Error as error:
        return _oauth_error(error)
    if person is None:
        return _send_to_login(values, reauth=False)
    try:
        claims_request = _claims_request(values, grant)
        hinted = _hinted_subjects(values, claims_request)
    except OAuth2Error as error:
        return _authorize_problem(values, error.error, error.get_error_description())
    if hinted - {person.subject} or _acr_unmet(values, claims_request):
        # the form is acted on as posted: it must still describe this sign-in (the consent
        # page is only shown when it did, so this is a changed or stale form)
        return _oauth_error(LoginRequiredError(
            redirect_uri=grant.redirect_uri, state=values.get("state")))
    if request.form.get("decision") != "allow":
        record("oidc_consent", "denied", subject=person.subject,
               client_id=grant.client.client_id)
        db.session.commit()
        return server.create_authorization_response(grant=grant, grant_user=None)
    if not grant.client.trusted:
        consents.remember(person.subject, grant.client.client_id,
                          _consent_scope(grant, claims_request))
    return _issue_code(grant, person, claims_request)


def _claims_request(values: MultiDict, grant) -> dict | None:
    """The ``claims`` parameter (OIDC Core §5.5), reduced to what this client may hold."""
    try:
        return parse_claims_request(values.get("claims"), grant.client.scopes or [])
    except ClaimsRequestError as error:
        raise InvalidRequestError(str(error)) from None


def _consent_scope(grant, claims_request: dict | None) -> str:
    """What the person is asked to allow: the granted scope plus the scopes of claims requested
    one by one (a claim is never released without consent to its scope)."""
    scopes = list(dict.fromkeys((grant.request.scope or "").split()))
    scopes += sorted(implied_scopes(claims_request) - set(scopes))
    return " ".join(scopes)


def _acr_unmet(values: MultiDict, claims_request: dict | None) -> bool:
    """OIDC Core §5.5.1.1: an essential ``acr`` with values the current sign-in does not
    meet. Only a password sign-in can be asked for again (on the login form)."""
    required = essential_acr_values(claims_request)
    row = current_session()
    return required is not None and (row is None or acr_for(row.auth_method) not in required)


def _needs_reauthentication(values: MultiDict, person: Person, prompts: set[str]) -> bool:
    """prompt=login, an exceeded max_age or a login_hint naming someone else ask for the
    password again (OIDC Core §3.1.2.1), unless this very request just came back from it."""
    row = current_session()
    if row is None:
        return True
    sent_at = _login_mark_time(values.get(_LOGIN_MARK))
    if sent_at is not None and row.authenticated_at.timestamp() >= sent_at:
        return False
    if "login" in prompts:
        return True
    max_age = values.get("max_age")
    if max_age is not None and clock.timestamp() - row.authenticated_at.timestamp() > \
            int(max_age):
        return True
    hint = (values.get("login_hint") or "").strip().lower()
    return bool(hint) and hint not in {person.email.lower(), person.username.lower(),
                                       person.subject}


def _hinted_subjects(values: MultiDict, claims_request: dict | None) -> set[str]:
    """Whom the request names as the only acceptable person: the subject of ``id_token_hint``
    (OIDC Core §3.1.2.1) and a ``sub`` value in the claims request (§5.5.1)."""
    hint = values.get("id_token_hint")
    named = {decode_id_token_hint(hint)["sub"]} if hint else set()
    subject = requested_subject(claims_request)
    return named | {subject} if subject is not None else named


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="oidc-login-mark")


def _login_mark_time(mark: str | None) -> int | None:
    """When this request was sent to the login form (a signed mark in its return URL), or
    None. A password given after that time satisfies prompt=login, max_age and login_hint."""
    if not mark:
        return None
    try:
        sent_at = _serializer().loads(mark)
    except BadSignature:
        return None
    if not isinstance(sent_at, int) or clock.timestamp() - sent_at > 3600:
        return None
    return sent_at


def _send_to_login(values: MultiDict, *, reauth: bool) -> Response:
    mark = _serializer().dumps(clock.timestamp())
    params = [(k, v) for k, v in values.items(multi=True) if k != _LOGIN_MARK]
    params.append((_LOGIN_MARK, mark))
    target = url_for("oidc.authorize") + "?" + urlencode(params)
    query = {"next": target}
    if reauth:
        query["reauth"] = "1"
    if values.get("login_hint"):
        query["login_hint"] = values["login_hint"]
    return redirect(url_for("login.login") + "?" + urlencode(query))


def _issue_code(grant, person: Person, claims_request: dict | None) -> Response:
    row = current_session()
    grant.request.auth_time = int(row.authenticated_at.timestamp()) if row \
        else clock.timestamp()
    grant.request.auth_method = row.auth_method if row else None
    grant.request.claims_json = json.dumps(claims_request) if claims_request else None
    response = get_server().create_authorization_response(grant=grant, grant_user=person)
    if response.status_code == 302 and "code=" in response.headers.get("Location", ""):
        record("oidc_authorize", "success", subject=person.subject,
               client_id=grant.client.client_id)
        db.session.commit()
    else:
        db.session.rollback()
    return response


# -- machine endpoints ---------------------------------------------------------------------
def _check_machine_request() -> Response | None:
    """Size, repetition and Basic-header checks for token, revocation and introspection."""
    try:
        check_machine_request(request)
    except ParamProblem as problem:
        headers = {"WWW-Authenticate": 'Basic realm="bridge"'} if problem.status == 401 \
            else None
        return _json({"error": problem.error, "error_description": problem.description},
                     problem.status, headers)
    return None


def _finish(response: Response) -> Response:
    """Commit what a successful call wrote; roll back anything a refused one started.
    Nothing to do when the call never opened an ORM transaction (a client-credentials token
    and a rotated refresh token commit on their own): building and committing an empty
    session was 7 % of a client-credentials grant."""
    if not (db.session.registry.has() and db.session().in_transaction()):
        return response
    if response is not None and response.status_code == 200:
        db.session.commit()
    else:
        db.session.rollback()
    return response


@bp.post("/oauth/token")
def token():
    """RFC 6749 §3.2: authorization_code, refresh_token, client_credentials. A successful
    client-credentials grant is answered before Flask (.service_token_layer)."""
    failure = request.environ.pop(SERVICE_TOKEN_FAILURE, None)
    if failure is not None:
        raise failure   # that grant failed (the database): the app's error handlers answer
    problem = _check_machine_request()
    if problem is not None:
        response = problem
    else:
        response = _finish(get_server().create_token_response())
    count_token_request(request.form.get("grant_type"), response)
    return response


@bp.post("/oauth/revoke")
def revoke():
    problem = _check_machine_request()
    if problem is not None:
        return problem
    return _finish(get_server().create_endpoint_response("revocation"))


@bp.post("/oauth/introspect")
def introspect():
    problem = _check_machine_request()
    if problem is not None:
        return problem
    return _finish(get_server().create_endpoint_response("introspection"))


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
def userinfo():
    """OIDC Core §5.3.1: GET and POST; the bearer token in the Authorization header or (POST)
    a form-encoded body (RFC 6750 §2.1-§2.2)."""
    return get_server().create_endpoint_response("userinfo")


@bp.route("/oauth/logout", methods=["GET", "POST"])
def end_session():
    """RP-Initiated Logout §2: with a valid id_token_hint the session ends at once and the
    browser goes to the registered post_logout_redirect_uri; without one, the bridge's own
    logout page asks the person to confirm. A bad hint or a post_logout_redirect_uri that is
    not registered exactly is an error page, and nobody is signed out (§4)."""
    values = _request_params()
    try:
        check_values(values)
    except ParamProblem as problem:
        return _error_page(problem.error, problem.description, title=_LOGOUT_REFUSED)
    server = get_server()
    try:
        validated = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        return _error_page(error.error, error.get_error_description() or error.error,
                           title=_LOGOUT_REFUSED)
    if validated.needs_confirmation:
        return redirect(url_for("login.logout"))
    if values.get("post_logout_redirect_uri") and validated.redirect_uri is None:
        return _refused_logout_redirect(validated.client)
    response = server.create_endpoint_response("end_session", validated)
    if response is None:
        return make_response(render_template("login/logged_out.html"))
    return response


def _refused_logout_redirect(client) -> Response:
    """RP-Initiated Logout §3-§4: a post_logout_redirect_uri that does not exactly match a
    registered one is an error in the request: no redirection, and no silent sign-out either
    (the RP would believe it worked). The person stays signed in and may sign out here."""
    name = client.name if client is not None else "The application"
    response = make_response(render_template(
        "oidc/logout_refused.html", client_name=name), 400)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(OAuth2Error)
def oauth_error(error: OAuth2Error):
    """Any OAuth error that escaped an endpoint (e.g. insecure transport) in OAuth's format."""
    db.session.rollback()
    return _json({"error": error.error,
                  "error_description": error.get_error_description() or error.error},
                 error.status_code or 400)


for _view in (authorize, token, revoke, introspect, userinfo, end_session):
    csrf.exempt(_view)
