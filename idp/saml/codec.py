"""Decoding SAML messages from the wire with hard limits (SAML bindings §3.4.4, §3.5.4).

Every incoming message goes through :func:`decode_redirect` or :func:`decode_post` and then
:func:`parse_xml`: size is checked before base64, before and after inflate (a deflate bomb stops
at the limit, it is never inflated in full), and the XML parser refuses DTDs, entities, network
access and processing instructions, so XXE and "billion laughs" cannot work.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib

from lxml import etree

MAX_ENCODED_CHARS = 32 * 1024
"""Largest base64 message accepted (a Zulip AuthnRequest is under 1 KiB)."""
MAX_XML_BYTES = 64 * 1024
"""Largest XML document accepted after base64 decoding and inflating."""

_B64 = re.compile(rb"^[A-Za-z0-9+/=\s]*$")
_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY)|<\?xml-stylesheet", re.IGNORECASE)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                          dtd_validation=False, huge_tree=False, remove_comments=True,
                          remove_pis=True, collect_ids=False)


class SamlDecodeError(ValueError):
    """The message cannot be decoded or parsed; the text is safe to show."""


def _b64decode(value: str) -> bytes:
    if not value:
        raise SamlDecodeError("the SAML message is empty")
    if len(value) > MAX_ENCODED_CHARS:
        raise SamlDecodeError(f"the SAML message is larger than {MAX_ENCODED_CHARS} characters")
    raw = value.encode("ascii", "replace")
    if not _B64.match(raw):
        raise SamlDecodeError("the SAML message is not valid base64")
    try:
        return base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SamlDecodeError("the SAML message is not valid base64") from None


def inflate(data: bytes, limit: int = MAX_XML_BYTES) -> bytes:
    """Raw DEFLATE (RFC 1951) with an output cap: never allocates more than ``limit`` + 1."""
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error:
        raise SamlDecodeError("the SAML message is not valid DEFLATE data") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise SamlDecodeError(f"the SAML message inflates to more than {limit} bytes")
    if not inflater.eof:
        raise SamlDecodeError("the SAML message is truncated DEFLATE data")
    return out


def decode_redirect(value: str) -> bytes:
    """HTTP-Redirect binding: base64 of raw DEFLATE (bindings §3.4.4.1)."""
    return inflate(_b64decode(value))


def decode_post(value: str) -> bytes:
    """HTTP-POST binding: base64 of the XML, not deflated (bindings §3.5.4)."""
    data = _b64decode(value)
    if len(data) > MAX_XML_BYTES:
        raise SamlDecodeError(f"the SAML message is larger than {MAX_XML_BYTES} bytes")
    return data


def encode_redirect(xml: bytes) -> str:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, no network; returns the root element."""
    if len(data) > MAX_XML_BYTES:
        raise SamlDecodeError(f"the SAML message is larger than {MAX_XML_BYTES} bytes")
    if _FORBIDDEN.search(data):
        raise SamlDecodeError("the SAML message contains a DTD or entity declaration, "
                              "which is not allowed")
    try:
        root = etree.fromstring(data, parser=_PARSER)
    except etree.XMLSyntaxError:
        raise SamlDecodeError("the SAML message is not well-formed XML") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise SamlDecodeError("the SAML message contains a DTD, which is not allowed")
    for node in root.iter():
        if not isinstance(node.tag, str):  # entity references or other non-element nodes
            raise SamlDecodeError("the SAML message contains entity references")
    return root
