"""Single Logout (SAML profiles §4.4) over HTTP-Redirect (bindings §3.4) or HTTP-POST (§3.5):
incoming messages in either binding, outgoing ones in the binding each SP registered.

- SP-initiated: a LogoutRequest ends the bridge session its SessionIndex belongs to, then every
  other SP of that session with an SLO URL is sent a LogoutRequest, and the initiator gets a
  signed LogoutResponse last.
- IdP-initiated: bridge ``/logout`` (the ``logout_handlers`` hook) walks the same chain.

The chain's state lives in ``saml_logout_chains`` and ``saml_logins``; the browser carries only
a random RelayState token (its SHA-256 is the key). A LogoutRequest ID is acted on once
(``saml_seen_logout_requests``); a replay is answered Requester/RequestDenied.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets

from flask import url_for
from lxml import etree
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from .. import clock
from ..audit import record
from ..extensions import db
from ..hashing import token_digest
from ..keys import get_keystore
from ..login.sessions import SessionView, close_session, current_session
from ..models import LoginSession
from .bindings import InboundMessage, PostForm, RedirectTo
from .codec import SamlDecodeError, decode_post, decode_redirect, encode_redirect, parse_xml
from .constants import (
    BINDING_POST,
    BINDING_REDIRECT,
    NS_DS,
    STATUS_PARTIAL_LOGOUT,
    STATUS_REQUEST_DENIED,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    STATUS_SUCCESS,
)
from .inbound import (
    LogoutRequest,
    SamlMessageError,
    read_logout_request,
    read_logout_response,
)
from .messages import build_logout_request, build_logout_response, new_id
from .metrics import SAML_LOGOUTS
from .models import LogoutChain, SamlLogin, SeenLogoutRequest, ServiceProvider
from .registry import get_sp
from .settings import SamlSettings, get_saml_settings
from .signing import (
    SignatureError,
    sign_element,
    sign_redirect,
    verify_element,
    verify_redirect,
)
from .sso import MAX_RELAY_STATE

CHAIN_LIFETIME = dt.timedelta(minutes=10)


class SloRefused(Exception):
    """The logout message cannot be trusted or matched: show an error page."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or message


LogoutStep = RedirectTo | PostForm
"""Where the browser goes next: a Redirect-binding message or the end of the logout, or an
auto-POST form carrying a signed message to a POST-bound SP."""


def _redirect_url(location: str, query: str) -> str:
    return location + ("&" if "?" in location else "?") + query


def _logout_url(sp: ServiceProvider, param: str) -> str:
    """Where a logout message goes: a LogoutResponse to the SP's ResponseLocation when it
    registered one, anything else to its Location (SAML metadata §2.2.2)."""
    if param == "SAMLResponse" and sp.slo_response_url:
        return sp.slo_response_url
    return sp.slo_url


def _send(sp: ServiceProvider, param: str, xml_root, relay_state: str | None) -> LogoutStep:
    """A logout message to the SP's SLO endpoint (:func:`_logout_url`) in the binding it
    registered: signed in the query (Redirect, bindings §3.4.4.1) or as an enveloped XML
    signature (POST, §3.5.4)."""
    key = get_keystore().current()
    location = _logout_url(sp, param)
    if sp.slo_binding == BINDING_POST:
        sign_element(xml_root, key)
        message = base64.b64encode(etree.tostring(xml_root, encoding="utf-8")).decode()
        return PostForm(location, param, message, relay_state)
    params = [(param, encode_redirect(etree.tostring(xml_root, encoding="utf-8")))]
    if relay_state:
        params.append(("RelayState", relay_state))
    return RedirectTo(_redirect_url(location, sign_redirect(params, key)))


def _read(inbound: InboundMessage, reader):
    """Decode, parse (once) and read the message; the parsed root is kept for the signature
    check, which must look at the same tree."""
    try:
        raw = (decode_post(inbound.message) if inbound.binding == BINDING_POST
               else decode_redirect(inbound.message))
        root = parse_xml(raw)
        return root, reader(root)
    except (SamlDecodeError, SamlMessageError) as exc:
        raise SloRefused(f"The logout message is not valid: {exc}.") from None


def _check_sp_signature(sp: ServiceProvider, inbound: InboundMessage, root) -> bool:
    """Required when the SP registered ``want_authn_requests_signed``; checked whenever one is
    present and the SP's certificate is known: over the query octets as sent (Redirect,
    bindings §3.4.4.1) or the enveloped XML signature of the parsed root (POST, §3.5.4).
    True when a signature was verified."""
    in_xml = root.find(f"{{{NS_DS}}}Signature") is not None
    if not sp.certificate or not (inbound.signature or in_xml or sp.want_authn_requests_signed):
        return False
    try:
        if inbound.binding == BINDING_REDIRECT:
            verify_redirect(inbound.signed_octets, inbound.sig_alg, inbound.signature,
                            sp.certificate)
        elif not in_xml:
            raise SignatureError("this service provider must sign its logout messages")
        else:
            verify_element(root, sp.certificate)
    except SignatureError as exc:
        raise SloRefused(f"The logout message's signature is not valid: {exc}.",
                         reason="bad signature") from None
    return True


def _check_header(settings: SamlSettings, header, signed: bool) -> None:
    """Destination (required on a signed message, bindings §3.4.5.2, §3.5.5.2) and
    IssueInstant within the clock skew."""
    if header.destination is None and signed:
        raise SloRefused("A signed logout message must name its Destination.",
                         reason="signed without Destination")
    if header.destination is not None and header.destination != settings.slo_url:
        raise SloRefused("The logout message was addressed to another identity provider.",
                         reason="wrong Destination")
    if abs(clock.now() - header.issue_instant) > dt.timedelta(seconds=settings.clock_skew):
        raise SloRefused("The logout message is too old or dated in the future.",
                         reason="IssueInstant out of range")


# -- SP-initiated ------------------------------------------------------------------------------
def receive_logout_request(settings: SamlSettings, query: InboundMessage) -> LogoutStep:
    """End the sessions the request names and return the next step (another SP's
    LogoutRequest, or the LogoutResponse to the initiator). Commits."""
    if query.relay_state is not None and len(query.relay_state) > MAX_RELAY_STATE:
        raise SloRefused("RelayState is too long.")
    root, request = _read(query, read_logout_request)
    sp = get_sp(request.header.issuer)
    if sp is None:
        raise SloRefused("The logout request comes from a service that is not registered.",
                         reason="unknown SP")
    if not sp.slo_url:
        raise SloRefused("This service has no Single Logout URL registered, so the bridge "
                         "cannot answer it.", reason="SP without SLO URL")
    _check_header(settings, request.header, _check_sp_signature(sp, query, root))
    if request.not_on_or_after is not None and clock.now() >= request.not_on_or_after + \
            dt.timedelta(seconds=settings.clock_skew):
        raise SloRefused("The logout request has expired (NotOnOrAfter).",
                         reason="LogoutRequest expired")
    if not _first_sight(settings, sp, request):
        SAML_LOGOUTS.labels("from-sp", "replayed").inc()
        record("saml_slo", "replayed", sp=sp.entity_id)
        db.session.commit()
        return _answer_initiator(settings, sp, request.header.id, query.relay_state,
                                 STATUS_REQUESTER, STATUS_REQUEST_DENIED)
    logins = _logins_named(sp, request)
    session_ids = {login.login_session_id for login in logins}
    now = clock.now()
    for login in logins:
        login.ended_at = now
    if session_ids:
        db.session.execute(update(LoginSession).where(
            LoginSession.id.in_(session_ids), LoginSession.revoked_at.is_(None))
            .values(revoked_at=now))
    browser = current_session()
    if browser is not None and browser.id in session_ids:
        close_session()
    SAML_LOGOUTS.labels("from-sp", "success" if logins else "no-session").inc()
    record("saml_slo", "success" if logins else "no-session",
           subject=logins[0].subject if logins else None, sp=sp.entity_id)
    if not session_ids:
        db.session.commit()
        return _answer_initiator(settings, sp, request.header.id, query.relay_state,
                                 STATUS_SUCCESS)
    chain = _start_chain(next(iter(session_ids)), initiator=sp, request_id=request.header.id,
                         relay_state=query.relay_state)
    return _next_step(settings, chain)


def _first_sight(settings: SamlSettings, sp: ServiceProvider, request: LogoutRequest) -> bool:
    """Remember the request's ID until its IssueInstant can no longer pass the clock check;
    False when it was seen already (a replay). As AuthnRequest IDs are kept in
    ``saml_pending_requests``."""
    now = clock.now()
    db.session.execute(delete(SeenLogoutRequest).where(SeenLogoutRequest.expires_at < now))
    return db.session.execute(insert(SeenLogoutRequest).values(
        sp_entity_id=sp.entity_id, request_id=request.header.id,
        expires_at=request.header.issue_instant + dt.timedelta(seconds=settings.clock_skew,
                                                               minutes=1))
        .on_conflict_do_nothing().returning(SeenLogoutRequest.request_id)).scalar() is not None


def _logins_named(sp: ServiceProvider, request: LogoutRequest) -> list[SamlLogin]:
    """This SP's live logins for the NameID, narrowed to the SessionIndexes when given
    (core §3.7.3.2)."""
    statement = select(SamlLogin).where(
        SamlLogin.sp_entity_id == sp.entity_id, SamlLogin.ended_at.is_(None),
        func.lower(SamlLogin.name_id) == request.name_id.lower())
    if request.session_indexes:
        statement = statement.where(SamlLogin.session_index.in_(request.session_indexes))
    else:
        browser = current_session()
        if browser is None:
            return []
        statement = statement.where(SamlLogin.login_session_id == browser.id)
    return list(db.session.execute(statement).scalars())


def _answer_initiator(settings: SamlSettings, sp: ServiceProvider, request_id: str | None,
                      relay_state: str | None, code: str,
                      sub_code: str | None = None) -> LogoutStep:
    response = build_logout_response(issuer=settings.entity_id,
                                     destination=_logout_url(sp, "SAMLResponse"),
                                     in_response_to=request_id, code=code, sub_code=sub_code,
                                     now=clock.now())
    return _send(sp, "SAMLResponse", response, relay_state)


# -- IdP-initiated (bridge /logout) --------------------------------------------------------------
def start_logout(closed: SessionView | None) -> LogoutStep | None:
    """Bridge ``/logout`` ended ``closed``: start the chain through the SPs this session
    signed into (the ``logout_handlers`` hook in :mod:`.views` renders the step)."""
    if closed is None:
        return None
    live = db.session.execute(select(SamlLogin.id).where(
        SamlLogin.login_session_id == closed.id, SamlLogin.ended_at.is_(None)).limit(1)).first()
    if live is None:
        return None
    chain = _start_chain(closed.id, initiator=None, request_id=None, relay_state=None)
    return _next_step(get_saml_settings(), chain)


def _start_chain(session_id: str, *, initiator: ServiceProvider | None, request_id: str | None,
                 relay_state: str | None) -> tuple[LogoutChain, str]:
    token = secrets.token_urlsafe(24)
    now = clock.now()
    chain = LogoutChain(key=token_digest(token), login_session_id=session_id,
                        initiator_entity_id=initiator.entity_id if initiator else None,
                        initiator_request_id=request_id, initiator_relay_state=relay_state,
                        created_at=now, expires_at=now + CHAIN_LIFETIME)
    db.session.add(chain)
    db.session.flush()
    return chain, token


def _next_step(settings: SamlSettings, chain_and_token: tuple[LogoutChain, str],
               partial: bool = False) -> LogoutStep:
    """The next LogoutRequest of the chain, or its end. Commits."""
    chain, token = chain_and_token
    now = clock.now()
    pending = db.session.execute(select(SamlLogin).where(
        SamlLogin.login_session_id == chain.login_session_id, SamlLogin.ended_at.is_(None),
        SamlLogin.logout_request_id.is_(None)).order_by(SamlLogin.id)).scalars().all()
    for login in pending:
        sp = get_sp(login.sp_entity_id)
        if sp is None or not sp.slo_url or sp.entity_id == chain.initiator_entity_id:
            login.ended_at = now
            continue
        same_sp = [row for row in pending if row.sp_entity_id == login.sp_entity_id
                   and row.ended_at is None and row.logout_request_id is None]
        request_id = new_id()
        for row in same_sp:
            row.logout_request_id = request_id
            row.logout_chain = chain.key
        request = build_logout_request(issuer=settings.entity_id, destination=sp.slo_url,
                                       name_id=login.name_id,
                                       session_indexes=[row.session_index for row in same_sp],
                                       request_id=request_id, now=now)
        step = _send(sp, "SAMLRequest", request, token)
        SAML_LOGOUTS.labels("to-sp", "sent").inc()
        db.session.commit()
        return step
    if partial:
        record("saml_slo", "partial", chain=chain.key[:12])
    initiator = get_sp(chain.initiator_entity_id) if chain.initiator_entity_id else None
    request_id, relay_state = chain.initiator_request_id, chain.initiator_relay_state
    db.session.delete(chain)
    db.session.commit()
    if initiator is not None and initiator.slo_url:
        if partial:
            return _answer_initiator(settings, initiator, request_id, relay_state,
                                     STATUS_RESPONDER, STATUS_PARTIAL_LOGOUT)
        return _answer_initiator(settings, initiator, request_id, relay_state, STATUS_SUCCESS)
    return RedirectTo(url_for("login.logout"))


def receive_logout_response(settings: SamlSettings, query: InboundMessage) -> LogoutStep:
    """An SP answered our LogoutRequest: mark it done and continue the chain. Commits."""
    token = query.relay_state or ""
    chain = db.session.get(LogoutChain, token_digest(token)) if 8 < len(token) < 100 else None
    if chain is None or chain.expires_at < clock.now():
        raise SloRefused("This logout has expired or is unknown. You are signed out of the "
                         "bridge; close the browser to end other sessions.",
                         reason="unknown logout chain")
    root, response = _read(query, read_logout_response)
    sp = get_sp(response.header.issuer)
    if sp is None:
        raise SloRefused("The logout response comes from a service that is not registered.",
                         reason="unknown SP")
    _check_header(settings, response.header, _check_sp_signature(sp, query, root))
    logins = db.session.execute(select(SamlLogin).where(
        SamlLogin.logout_chain == chain.key, SamlLogin.sp_entity_id == sp.entity_id,
        SamlLogin.logout_request_id == response.in_response_to,
        SamlLogin.ended_at.is_(None))).scalars().all()
    if not logins:
        raise SloRefused("The logout response does not answer a request of this logout.",
                         reason="InResponseTo mismatch")
    for login in logins:
        login.ended_at = clock.now()
    ok = response.status == STATUS_SUCCESS
    SAML_LOGOUTS.labels("to-sp", "success" if ok else "failed").inc()
    record("saml_slo", "success" if ok else "failed", subject=logins[0].subject,
           sp=sp.entity_id, status=response.status)
    return _next_step(settings, (chain, token), partial=not ok)
