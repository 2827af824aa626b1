"""Incoming SAML protocol messages, read from already hardened-parsed XML: AuthnRequest (SAML
core §3.4.1), LogoutRequest (§3.7.1) and LogoutResponse (§3.7.2).

Only structure is checked here (element names, required attributes, sizes, dates); whether the
issuer is registered, the ACS allowed or the signature valid is decided in :mod:`.sso` and
:mod:`.slo`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from lxml import etree

from .constants import NS_SAML, NS_SAMLP

_P = f"{{{NS_SAMLP}}}"
_A = f"{{{NS_SAML}}}"
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,255}$")  # NCName, bounded
_DATETIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


class SamlMessageError(ValueError):
    """The message is not a valid SAML message of the expected kind; safe to show."""


def parse_instant(value: str | None, what: str) -> dt.datetime:
    match = _DATETIME.match(value or "")
    if not match:
        raise SamlMessageError(f"{what} is missing or not an xs:dateTime")
    base, fraction, zone = match.groups()
    fraction = (fraction or "")[:7]  # at most microseconds
    stamp = base + fraction + ("+00:00" if zone == "Z" else zone)
    try:
        return dt.datetime.fromisoformat(stamp).astimezone(dt.UTC)
    except ValueError:
        raise SamlMessageError(f"{what} is not a valid date and time") from None


def _bool(value: str | None, what: str) -> bool:
    if value in (None, "false", "0"):
        return False
    if value in ("true", "1"):
        return True
    raise SamlMessageError(f"{what} must be true or false")


def _text(element: etree._Element | None, limit: int = 1024) -> str | None:
    if element is None:
        return None
    text = (element.text or "").strip()
    if len(text) > limit:
        raise SamlMessageError(f"{etree.QName(element).localname} is too long")
    return text or None


@dataclass(frozen=True)
class MessageHeader:
    """Attributes every request or response carries (core §3.2.1, §3.2.2)."""

    id: str
    issue_instant: dt.datetime
    destination: str | None
    issuer: str


def _header(root: etree._Element, expected: str) -> MessageHeader:
    if root.tag != _P + expected:
        raise SamlMessageError(f"expected a samlp:{expected} message")
    if root.get("Version") != "2.0":
        raise SamlMessageError("only SAML Version 2.0 is supported")
    message_id = root.get("ID") or ""
    if not _ID.match(message_id):
        raise SamlMessageError("the message ID is missing or malformed")
    issuer = _text(root.find(_A + "Issuer"))
    if not issuer:
        raise SamlMessageError("the message has no Issuer")
    return MessageHeader(id=message_id, issue_instant=parse_instant(root.get("IssueInstant"),
                                                                     "IssueInstant"),
                         destination=root.get("Destination"), issuer=issuer)


@dataclass(frozen=True)
class RequestedSubject:
    """The ``saml:Subject`` of an AuthnRequest (core §3.4.1): whom the requester wants
    authenticated. ``name_id`` is None when the identifier is a BaseID or EncryptedID, or
    missing."""

    name_id: str | None
    name_id_format: str | None


@dataclass(frozen=True)
class AuthnRequest:
    header: MessageHeader
    acs_url: str | None
    acs_index: int | None
    protocol_binding: str | None
    force_authn: bool
    is_passive: bool
    name_id_format: str | None
    signed: bool
    subject: RequestedSubject | None


def read_authn_request(root: etree._Element) -> AuthnRequest:
    header = _header(root, "AuthnRequest")
    index = root.get("AssertionConsumerServiceIndex")
    if index is not None and (not index.isdigit() or int(index) > 65535):
        raise SamlMessageError("AssertionConsumerServiceIndex must be a small integer")
    acs_url = root.get("AssertionConsumerServiceURL")
    if acs_url is not None and len(acs_url) > 2048:
        raise SamlMessageError("AssertionConsumerServiceURL is too long")
    policy = root.find(_P + "NameIDPolicy")
    subject = root.find(_A + "Subject")
    requested = None
    if subject is not None:
        name_id = subject.find(_A + "NameID")
        requested = RequestedSubject(
            name_id=_text(name_id, 320),
            name_id_format=name_id.get("Format") if name_id is not None else None)
    return AuthnRequest(
        header=header, acs_url=acs_url, acs_index=int(index) if index is not None else None,
        protocol_binding=root.get("ProtocolBinding"),
        force_authn=_bool(root.get("ForceAuthn"), "ForceAuthn"),
        is_passive=_bool(root.get("IsPassive"), "IsPassive"),
        name_id_format=policy.get("Format") if policy is not None else None,
        signed=root.find("{http://www.w3.org/2000/09/xmldsig#}Signature") is not None,
        subject=requested)


@dataclass(frozen=True)
class LogoutRequest:
    header: MessageHeader
    name_id: str
    session_indexes: tuple[str, ...]
    not_on_or_after: dt.datetime | None


def read_logout_request(root: etree._Element) -> LogoutRequest:
    header = _header(root, "LogoutRequest")
    name_id = _text(root.find(_A + "NameID"), 320)
    if not name_id:
        raise SamlMessageError("the LogoutRequest has no NameID")
    indexes = tuple(filter(None, (_text(e, 256) for e in root.findall(_P + "SessionIndex"))))
    expiry = root.get("NotOnOrAfter")
    return LogoutRequest(header=header, name_id=name_id, session_indexes=indexes,
                         not_on_or_after=None if expiry is None
                         else parse_instant(expiry, "NotOnOrAfter"))


@dataclass(frozen=True)
class LogoutResponse:
    header: MessageHeader
    in_response_to: str | None
    status: str


def read_logout_response(root: etree._Element) -> LogoutResponse:
    header = _header(root, "LogoutResponse")
    code = root.find(f"{_P}Status/{_P}StatusCode")
    if code is None or not code.get("Value"):
        raise SamlMessageError("the LogoutResponse has no StatusCode")
    return LogoutResponse(header=header, in_response_to=root.get("InResponseTo"),
                          status=code.get("Value"))
