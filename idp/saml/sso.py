"""Web Browser SSO, identity-provider side (SAML profiles §4.1): accept an AuthnRequest,
remember it until the person has signed in, and answer with a signed Response.

Every assertion is issued for the Person just read from the LMS (``current_person()`` checks
that they are active now): a person deactivated in the LMS gets no assertion, whatever session
they still hold.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from .. import clock
from ..audit import audit_values, record
from ..dbapi import execute
from ..extensions import autocommit_engine, db
from ..hashing import token_digest
from ..keys import get_keystore
from ..login.sessions import SessionView, current_person, current_session
from ..people import Person
from .attributes import release
from .bindings import InboundMessage, PostForm
from .codec import SamlDecodeError, decode_post, decode_redirect, parse_xml
from .constants import (
    BINDING_POST,
    BINDING_REDIRECT,
    NAMEID_EMAIL,
    NAMEID_UNSPECIFIED,
    STATUS_AUTHN_FAILED,
    STATUS_INVALID_NAMEID_POLICY,
    STATUS_NO_PASSIVE,
    STATUS_REQUESTER,
    STATUS_RESPONDER,
    STATUS_UNKNOWN_PRINCIPAL,
)
from .inbound import AuthnRequest, SamlMessageError, read_authn_request
from .messages import AssertionFacts, build_response, build_status_response
from .metrics import SAML_RESPONSES
from .models import PendingAuthnRequest
from .registry import SPView, find_sp
from .settings import SamlSettings, valid_subdomain
from .signing import SignatureError, verify_element, verify_redirect

_RECORD_LOGIN = """
    SET LOCAL synchronous_commit TO OFF;
    WITH audit AS (
        INSERT INTO audit_events (at, event, outcome, subject, client_ip, detail)
        VALUES (%(at)s, %(event)s, %(outcome)s, %(subject)s, %(client_ip)s,
                CAST(%(detail)s AS jsonb)))
    INSERT INTO saml_logins (login_session_id, subject, sp_entity_id, name_id, session_index,
                             created_at)
    VALUES (%(sid)s, %(subject)s, %(sp)s, %(email)s, %(idx)s, %(at)s)"""
"""On the driver (``idp.dbapi``), which sends both statements in one round trip; the audit
row's values come from ``idp.audit.audit_values``, as ``idp.audit.record`` would write them."""
ACCEPTED_NAMEID_FORMATS = (None, NAMEID_UNSPECIFIED, NAMEID_EMAIL)
MAX_RELAY_STATE = 1024


class SsoRefused(Exception):
    """The request cannot be answered with a SAML message (its sender or ACS is not trusted):
    show an error page, never redirect."""

    def __init__(self, message: str, reason: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.reason = reason or message
        self.status = status


@dataclass(frozen=True)
class SignIn:
    """The person must sign in (again) first; ``next_path`` brings them back."""

    next_path: str
    reauth: bool


# -- receiving an AuthnRequest ---------------------------------------------------------------
def receive_authn_request(settings: SamlSettings, inbound: InboundMessage
                          ) -> tuple[SPView, AuthnRequest, str]:
    """Decode and check an AuthnRequest; store it (refusing a replayed ID) and return the SP,
    the request and the continuation token. The caller commits."""
    relay_state = inbound.relay_state
    if relay_state is not None and len(relay_state) > MAX_RELAY_STATE:
        raise SsoRefused(f"RelayState is longer than {MAX_RELAY_STATE} characters.")
    try:
        raw = (decode_post(inbound.message) if inbound.binding == BINDING_POST
               else decode_redirect(inbound.message))
        root = parse_xml(raw)
        request = read_authn_request(root)
    except (SamlDecodeError, SamlMessageError) as exc:
        raise SsoRefused(f"The sign-in request is not valid: {exc}.") from None
    sp = find_sp(request.header.issuer)
    if sp is None:
        raise SsoRefused("The sign-in request comes from a service that is not registered "
                         "with this identity provider.", reason="unknown SP")
    acs_url = select_acs(sp, request)
    signed = _check_signature(sp, request, root, inbound)
    if request.header.destination is None and signed:
        raise SsoRefused("A signed sign-in request must name its Destination.",
                         reason="signed without Destination")
    if request.header.destination is not None and request.header.destination != settings.sso_url:
        raise SsoRefused("The sign-in request was addressed to another identity provider "
                         "(Destination does not match).", reason="wrong Destination")
    now = clock.now()
    skew = dt.timedelta(seconds=settings.clock_skew)
    if abs(now - request.header.issue_instant) > skew:
        raise SsoRefused("The sign-in request is too old or dated in the future (check the "
                         "clocks of both servers).", reason="IssueInstant out of range")
    token = secrets.token_urlsafe(24)
    db.session.execute(delete(PendingAuthnRequest).where(PendingAuthnRequest.expires_at < now))
    stored = db.session.execute(insert(PendingAuthnRequest).values(
        key=token_digest(token), sp_entity_id=sp.entity_id, request_id=request.header.id,
        acs_url=acs_url, relay_state=relay_state, force_authn=request.force_authn,
        is_passive=request.is_passive, created_at=now,
        subject_name_id=request.subject.name_id if request.subject else None,
        expires_at=request.header.issue_instant + 2 * skew + dt.timedelta(minutes=10))
        .on_conflict_do_nothing().returning(PendingAuthnRequest.key)).scalar()
    if stored is None:
        raise SsoRefused("This sign-in request was already used. Start again from the "
                         "service.", reason="replayed request ID")
    return sp, request, token


def select_acs(sp: SPView, request: AuthnRequest) -> str:
    """The ACS URL to answer: the one the request names if the SP registered it exactly, the
    indexed one, or the SP's default (profiles §4.1.4.1)."""
    if request.protocol_binding not in (None, BINDING_POST):
        raise SsoRefused("The service asked for a response binding other than HTTP-POST.",
                         reason="unsupported ProtocolBinding")
    if request.acs_url is not None:
        if request.acs_url not in sp.acs_urls:
            raise SsoRefused("The sign-in request names an address (ACS URL) that this "
                             "service did not register.", reason="unregistered ACS URL")
        return request.acs_url
    if request.acs_index is not None:
        if request.acs_index >= len(sp.acs_urls):
            raise SsoRefused("The sign-in request names an ACS index this service did not "
                             "register.", reason="unregistered ACS index")
        return sp.acs_urls[request.acs_index]
    return sp.acs_urls[0]


def _check_signature(sp: SPView, request: AuthnRequest, root, inbound: InboundMessage) -> bool:
    """Required when the SP registered ``want_authn_requests_signed``; checked whenever one is
    present and the SP's certificate is known (bindings §3.4.4.1, core §5). The signature is
    checked over the very value (Redirect) or tree (POST) the request was read from. True when
    a signature was verified: a signed request must then carry ``Destination`` (bindings
    §3.4.5.2, §3.5.5.2)."""
    carries = request.signed or bool(inbound.signature)
    if not sp.certificate or not (carries or sp.want_authn_requests_signed):
        return False
    try:
        if inbound.binding == BINDING_REDIRECT:
            verify_redirect(inbound.signed_octets, inbound.sig_alg, inbound.signature,
                            sp.certificate)
        else:
            if not request.signed:
                raise SignatureError("this service provider must sign its requests")
            verify_element(root, sp.certificate)
    except SignatureError as exc:
        raise SsoRefused(f"The sign-in request's signature is not valid: {exc}.",
                         reason="bad request signature") from None
    return True


# -- answering ----------------------------------------------------------------------------
def continue_pending(settings: SamlSettings, token: str) -> PostForm | SignIn:
    """Answer a stored request for the signed-in person, or ask them to sign in first."""
    row = db.session.get(PendingAuthnRequest, token_digest(token)) if 8 < len(token) < 100 else None
    now = clock.now()
    if row is None or row.answered_at is not None or row.expires_at < now:
        raise SsoRefused("This sign-in request has expired or was already answered. Start "
                         "again from the service.", reason="unknown or used continuation")
    sp = find_sp(row.sp_entity_id)
    if sp is None or row.acs_url not in sp.acs_urls:
        raise SsoRefused("The service is no longer registered.", reason="SP removed")
    person = current_person()
    session = current_session() if person is not None else None
    fresh = session is not None and (not row.force_authn or session.authenticated_at
                                     >= row.created_at)
    if person is None or session is None or not fresh:
        if row.is_passive:
            row.answered_at = now
            return status_answer(settings, sp, row.acs_url, row.request_id, row.relay_state,
                                 STATUS_RESPONDER, STATUS_NO_PASSIVE, "passive",
                                 "The person is not signed in and IsPassive was requested.")
        return SignIn(next_path=f"/saml/sso/continue/{token}", reauth=row.force_authn)
    row.answered_at = now
    if not _is_requested_subject(row, person):
        return status_answer(settings, sp, row.acs_url, row.request_id, row.relay_state,
                             STATUS_RESPONDER, STATUS_AUTHN_FAILED, "refused",
                             "The request names another person than the one signed in.")
    db.session.commit()  # answered before the answer is built: a request is answered once
    return issue_assertion(settings, sp, person, session, acs_url=row.acs_url,
                           in_response_to=row.request_id, relay_state=row.relay_state,
                           flow="sp-initiated")


def status_answer(settings: SamlSettings, sp: SPView, acs_url: str,
                  in_response_to: str | None, relay_state: str | None, code: str,
                  sub_code: str | None, outcome: str, message: str) -> PostForm:
    """A signed error Response to a registered ACS (core §3.2.2.2). The caller commits."""
    xml = build_status_response(issuer=settings.entity_id, acs_url=acs_url,
                                in_response_to=in_response_to, code=code, sub_code=sub_code,
                                message=message, key=get_keystore().current(), now=clock.now())
    SAML_RESPONSES.labels("sp-initiated", outcome).inc()
    record("saml_sso", outcome, sp=sp.entity_id, status=sub_code or code)
    return PostForm(acs_url, "SAMLResponse", base64.b64encode(xml).decode(), relay_state)


def refuse_unsupported(settings: SamlSettings, sp: SPView, request: AuthnRequest,
                       acs_url: str, relay_state: str | None) -> PostForm | None:
    """An error Response at once for what the bridge can never satisfy, whoever signs in:

    - a NameIDPolicy format other than email: InvalidNameIDPolicy (core §3.4.1.1);
    - a requested Subject (core §3.4.1.4) named by anything but an email NameID: the bridge
      cannot tell whom it means, UnknownPrincipal (core §3.2.2.2).
    """
    if request.name_id_format not in ACCEPTED_NAMEID_FORMATS:
        return status_answer(settings, sp, acs_url, request.header.id, relay_state,
                             STATUS_REQUESTER, STATUS_INVALID_NAMEID_POLICY, "refused",
                             "Only the emailAddress NameID format is supported.")
    subject = request.subject
    if subject is not None and (subject.name_id is None
                                or subject.name_id_format not in ACCEPTED_NAMEID_FORMATS):
        return status_answer(settings, sp, acs_url, request.header.id, relay_state,
                             STATUS_REQUESTER, STATUS_UNKNOWN_PRINCIPAL, "refused",
                             "A requested Subject must be an emailAddress NameID.")
    return None


def _is_requested_subject(row: PendingAuthnRequest, person: Person) -> bool:
    """SAML core §3.4.1.4: the assertion's Subject must strongly match the request's
    (§3.3.4); the bridge names people by email, compared case-insensitively as Zulip does."""
    return row.subject_name_id is None or (
        bool(person.email) and row.subject_name_id.lower() == person.email.lower())


def issue_assertion(settings: SamlSettings, sp: SPView, person: Person,
                    session: SessionView, *, acs_url: str, in_response_to: str | None,
                    relay_state: str | None, flow: str) -> PostForm:
    """Sign a Response for ``person`` (already checked active in the LMS) and record the login
    for Single Logout (committed on its own, in one round trip)."""
    if not person.email or "@" not in person.email:
        raise SsoRefused("Your LMS account has no email address, which the service needs to "
                         "know you. Ask the LMS staff to add one.", reason="person without email")
    now = clock.now()
    session_index = "_" + secrets.token_hex(16)
    facts = AssertionFacts(
        issuer=settings.entity_id, audience=sp.entity_id, acs_url=acs_url,
        in_response_to=in_response_to, name_id=person.email, session_index=session_index,
        authn_instant=session.authenticated_at, session_not_on_or_after=session.expires_at,
        attributes=release(sp.attribute_profile, person))
    xml = build_response(facts, get_keystore().current(), now=now,
                         sign_assertion=sp.sign_assertion, sign_response=sp.sign_response)
    # Hot path: one round trip writes the SAML login and its audit row, and the commit does
    # not wait for fsync (losing the last rows in a database crash costs only a Single Logout
    # message, never a wrong assertion).
    audit = audit_values("saml_sso", "success", person.subject, sp=sp.entity_id, flow=flow)
    execute(autocommit_engine(), _RECORD_LOGIN, {  # one implicit transaction
        **audit, "at": now, "detail": json.dumps(audit["detail"]), "sid": session.id,
        "sp": sp.entity_id, "email": person.email, "idx": session_index})
    SAML_RESPONSES.labels(flow, "success").inc()
    return PostForm(acs_url, "SAMLResponse", base64.b64encode(xml).decode(), relay_state)


def idp_initiated(settings: SamlSettings, sp_entity_id: str, subdomain: str,
                  return_path: str) -> PostForm | SignIn:
    """Unsolicited Response (profiles §4.1.5) to the SP's default ACS, with the RelayState
    JSON Zulip expects: ``{"subdomain": "<realm>"}``."""
    sp = find_sp(sp_entity_id)
    if sp is None:
        raise SsoRefused("That service is not registered with this identity provider.",
                         reason="unknown SP")
    if not valid_subdomain(subdomain):
        raise SsoRefused("The realm subdomain is not valid.", reason="bad subdomain")
    person = current_person()
    session = current_session() if person is not None else None
    if person is None or session is None:
        return SignIn(next_path=return_path, reauth=False)
    return issue_assertion(settings, sp, person, session, acs_url=sp.acs_urls[0],
                           in_response_to=None,
                           relay_state=json.dumps({"subdomain": subdomain}),
                           flow="idp-initiated")
