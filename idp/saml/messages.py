"""Outgoing SAML messages: Response with Assertion (SAML core §2.3.3, §3.3.3; profiles
§4.1.4.2), LogoutRequest and LogoutResponse (core §3.7), all built with lxml.

Times are UTC ``xs:dateTime`` with a ``Z``; IDs are 160 random bits prefixed with ``_`` (an
NCName, core §1.3.4).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from ..keys import SigningKey
from .constants import (
    AC_PASSWORD_PROTECTED,
    ATTRNAME_BASIC,
    CM_BEARER,
    NAMEID_EMAIL,
    NS_SAML,
    NS_SAMLP,
    STATUS_SUCCESS,
)
from .signing import sign_element

ASSERTION_LIFETIME = 300
"""Seconds an assertion and its bearer confirmation stay valid (the issue asks 5 minutes)."""

_NSMAP = {"samlp": NS_SAMLP, "saml": NS_SAML}
_P = f"{{{NS_SAMLP}}}"
_A = f"{{{NS_SAML}}}"


def new_id() -> str:
    return "_" + secrets.token_hex(20)


def saml_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str):
    element = etree.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def _header(destination: str, in_response_to: str | None, issued: str) -> dict[str, str]:
    """The attributes every request and response carries (core §3.2.1, §3.2.2)."""
    attrs = {"ID": new_id(), "Version": "2.0", "IssueInstant": issued,
             "Destination": destination}
    if in_response_to:
        attrs["InResponseTo"] = in_response_to
    return attrs


def _status(parent: etree._Element, code: str, sub_code: str | None = None,
            message: str | None = None) -> None:
    status = _sub(parent, _P + "Status")
    status_code = _sub(status, _P + "StatusCode", Value=code)
    if sub_code:
        _sub(status_code, _P + "StatusCode", Value=sub_code)
    if message:
        _sub(status, _P + "StatusMessage", message)


@dataclass(frozen=True)
class AssertionFacts:
    """What an assertion states; every field comes from the SP registry, the session and the
    Person just checked in the LMS."""

    issuer: str
    audience: str
    acs_url: str
    in_response_to: str | None
    name_id: str
    session_index: str
    authn_instant: dt.datetime
    session_not_on_or_after: dt.datetime | None
    attributes: list[tuple[str, list[str]]]


def build_response(facts: AssertionFacts, key: SigningKey, *, now: dt.datetime,
                   sign_assertion: bool = True, sign_response: bool = True) -> bytes:
    """A signed ``samlp:Response`` carrying one bearer assertion (profiles §4.1.4.2)."""
    if not (sign_assertion or sign_response):
        raise ValueError("a response must be signed (assertion, response or both)")
    issued = saml_time(now)
    expires = saml_time(now + dt.timedelta(seconds=ASSERTION_LIFETIME))
    response = etree.Element(_P + "Response", _header(facts.acs_url, facts.in_response_to, issued),
                             nsmap=_NSMAP)
    _sub(response, _A + "Issuer", facts.issuer)
    _status(response, STATUS_SUCCESS)

    assertion = _sub(response, _A + "Assertion", ID=new_id(), Version="2.0",
                     IssueInstant=issued)
    _sub(assertion, _A + "Issuer", facts.issuer)
    subject = _sub(assertion, _A + "Subject")
    _sub(subject, _A + "NameID", facts.name_id, Format=NAMEID_EMAIL)
    confirmation = _sub(subject, _A + "SubjectConfirmation", Method=CM_BEARER)
    data_attrs = {"NotOnOrAfter": expires, "Recipient": facts.acs_url}
    if facts.in_response_to:
        data_attrs["InResponseTo"] = facts.in_response_to
    _sub(confirmation, _A + "SubjectConfirmationData", **data_attrs)
    conditions = _sub(assertion, _A + "Conditions", NotBefore=issued, NotOnOrAfter=expires)
    _sub(_sub(conditions, _A + "AudienceRestriction"), _A + "Audience", facts.audience)
    statement_attrs = {"AuthnInstant": saml_time(facts.authn_instant),
                       "SessionIndex": facts.session_index}
    if facts.session_not_on_or_after is not None:
        statement_attrs["SessionNotOnOrAfter"] = saml_time(facts.session_not_on_or_after)
    authn = _sub(assertion, _A + "AuthnStatement", **statement_attrs)
    _sub(_sub(authn, _A + "AuthnContext"), _A + "AuthnContextClassRef", AC_PASSWORD_PROTECTED)
    if facts.attributes:
        statement = _sub(assertion, _A + "AttributeStatement")
        for name, values in facts.attributes:
            attribute = _sub(statement, _A + "Attribute", Name=name, NameFormat=ATTRNAME_BASIC)
            for value in values:
                _sub(attribute, _A + "AttributeValue", value)
    if sign_assertion:
        sign_element(assertion, key)
    if sign_response:
        sign_element(response, key)
    return etree.tostring(response, xml_declaration=False, encoding="utf-8")


def build_status_response(*, issuer: str, acs_url: str, in_response_to: str | None,
                          code: str, sub_code: str | None, message: str | None,
                          key: SigningKey, now: dt.datetime) -> bytes:
    """A signed ``samlp:Response`` without an assertion, reporting an error status (core
    §3.2.2.2), e.g. NoPassive."""
    response = etree.Element(_P + "Response", _header(acs_url, in_response_to, saml_time(now)),
                             nsmap=_NSMAP)
    _sub(response, _A + "Issuer", issuer)
    _status(response, code, sub_code, message)
    sign_element(response, key)
    return etree.tostring(response, encoding="utf-8")


def build_logout_request(*, issuer: str, destination: str, name_id: str,
                         session_indexes: Iterable[str], request_id: str,
                         now: dt.datetime) -> etree._Element:
    """``samlp:LogoutRequest`` (core §3.7.1), unsigned: the binding signs it (in the query
    for Redirect, in the XML for POST)."""
    request = etree.Element(_P + "LogoutRequest", {
        "ID": request_id, "Version": "2.0", "IssueInstant": saml_time(now),
        "Destination": destination,
        "NotOnOrAfter": saml_time(now + dt.timedelta(seconds=ASSERTION_LIFETIME))},
        nsmap=_NSMAP)
    _sub(request, _A + "Issuer", issuer)
    _sub(request, _A + "NameID", name_id, Format=NAMEID_EMAIL)
    for index in session_indexes:
        _sub(request, _P + "SessionIndex", index)
    return request


def build_logout_response(*, issuer: str, destination: str, in_response_to: str | None,
                          code: str, now: dt.datetime,
                          sub_code: str | None = None) -> etree._Element:
    """``samlp:LogoutResponse`` (core §3.7.2), unsigned: the binding signs it."""
    response = etree.Element(_P + "LogoutResponse",
                             _header(destination, in_response_to, saml_time(now)), nsmap=_NSMAP)
    _sub(response, _A + "Issuer", issuer)
    _status(response, code, sub_code)
    return response
