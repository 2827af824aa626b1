"""SAML protocol bindings on the wire (SAML bindings §3.4 HTTP-Redirect, §3.5 HTTP-POST):
reading a message and its parameters from a request exactly once, and the two ways of sending
one.

A signature covers bytes, so the bridge verifies and acts on the same bytes (DESIGN.md, "rules
learned"): the raw query string is split once into :class:`InboundMessage`, the Redirect
signature is checked over the still percent-encoded values kept there (bindings §3.4.4.1), and
the message is decoded from that very value. A SAML parameter sent twice, also under a
percent-encoded name such as ``SAML%52equest``, is refused: with two candidates no reader can
know which one a signature covers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

from werkzeug.datastructures import MultiDict

from .constants import BINDING_POST, BINDING_REDIRECT

MESSAGE_PARAMS = ("SAMLRequest", "SAMLResponse")
SAML_PARAMS = (*MESSAGE_PARAMS, "RelayState", "SigAlg", "Signature")
MAX_QUERY_CHARS = 64 * 1024
_QUERY_CHARS = re.compile(r"^[\x21-\x7e]*$")  # RFC 3986 §3.4: printable ASCII, no spaces


class BindingError(ValueError):
    """The request does not carry one well-formed SAML message; the text (a sentence) is
    safe to show."""


@dataclass(frozen=True)
class InboundMessage:
    """One SAML message as a binding delivered it, read once.

    ``message`` is the base64 text (deflated for Redirect). For Redirect, ``signed_octets`` is
    ``SAMLRequest=…[&RelayState=…]&SigAlg=…`` rebuilt from the raw values as sent (bindings
    §3.4.4.1), or None when the query carries no signature; POST messages are signed inside
    the XML (§3.5.4).
    """

    binding: str
    param: str  # "SAMLRequest" or "SAMLResponse"
    message: str
    relay_state: str | None
    sig_alg: str | None = None
    signature: str | None = None
    signed_octets: bytes | None = None

    @property
    def is_request(self) -> bool:
        return self.param == "SAMLRequest"


def _one_message(values: dict[str, str], accepted: tuple[str, ...]) -> str:
    present = [name for name in MESSAGE_PARAMS if values.get(name)]
    if not present:
        raise BindingError(f"No {' or '.join(accepted)} was sent.")
    if len(present) > 1:
        raise BindingError("Both SAMLRequest and SAMLResponse were sent; send one message.")
    if present[0] not in accepted:
        raise BindingError(f"This address does not accept a {present[0]}.")
    return present[0]


def _split_query(query_string: bytes) -> dict[str, tuple[str, str]]:
    """``{decoded name: (raw value, decoded value)}`` for the SAML parameters of the query;
    refuses a SAML parameter given twice under any spelling of its name."""
    try:
        text = query_string.decode("ascii")
    except UnicodeDecodeError:
        raise BindingError("The query string must be percent-encoded ASCII.") from None
    if len(text) > MAX_QUERY_CHARS:
        raise BindingError(f"The query string is longer than {MAX_QUERY_CHARS} characters.")
    if not _QUERY_CHARS.match(text):
        raise BindingError("The query string contains spaces or control characters.")
    found: dict[str, tuple[str, str]] = {}
    for part in text.split("&"):
        if not part:
            continue
        raw_name, _, raw_value = part.partition("=")
        name = unquote_plus(raw_name, errors="replace")
        if name not in SAML_PARAMS:
            continue
        if name in found:
            raise BindingError(f"The {name} parameter appears more than once.")
        try:
            found[name] = (raw_value, unquote_plus(raw_value, errors="strict"))
        except UnicodeDecodeError:
            raise BindingError(f"The {name} parameter is not UTF-8.") from None
    return found


def read_redirect(query_string: bytes, accepted: tuple[str, ...]) -> InboundMessage:
    """HTTP-Redirect binding (bindings §3.4.4): the message and its signature from the raw
    query string, parsed once."""
    params = _split_query(query_string)
    param = _one_message({k: v[1] for k, v in params.items()}, accepted)
    signed_octets = None
    if "Signature" in params or "SigAlg" in params:
        signed_octets = "&".join(f"{name}={params[name][0]}"
                                 for name in (param, "RelayState", "SigAlg")
                                 if name in params).encode("ascii")

    def decoded(name: str) -> str | None:
        return params[name][1] if name in params else None

    return InboundMessage(
        binding=BINDING_REDIRECT, param=param, message=params[param][1],
        relay_state=decoded("RelayState"), sig_alg=decoded("SigAlg"),
        signature=decoded("Signature"), signed_octets=signed_octets)


def read_post(form: MultiDict, query_string: bytes,
              accepted: tuple[str, ...]) -> InboundMessage:
    """HTTP-POST binding (bindings §3.5.4): the message from the form body only; a SAML
    parameter repeated in the body or also present in the query string is refused."""
    if _split_query(query_string):
        raise BindingError("The SAML parameters of an HTTP-POST message belong in the body, "
                           "not in the query string.")
    values: dict[str, str] = {}
    for name in SAML_PARAMS:
        given = form.getlist(name)
        if len(given) > 1:
            raise BindingError(f"The {name} parameter appears more than once.")
        if given:
            values[name] = given[0]
    if "SigAlg" in values or "Signature" in values:
        raise BindingError("An HTTP-POST message is signed inside its XML; SigAlg and "
                           "Signature parameters (SimpleSign) are not supported.")
    param = _one_message(values, accepted)
    return InboundMessage(binding=BINDING_POST, param=param, message=values[param],
                          relay_state=values.get("RelayState"))


# -- sending ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class PostForm:
    """An auto-submitting form carrying a SAML message to a registered endpoint (bindings
    §3.5.4): a Response to an ACS, or a LogoutRequest or LogoutResponse to an SLO URL."""

    action: str
    param: str  # "SAMLRequest" or "SAMLResponse"
    message: str  # base64 of the signed XML
    relay_state: str | None


@dataclass(frozen=True)
class RedirectTo:
    """A Redirect-binding message (or the end of a logout): the browser goes to ``url``."""

    url: str

