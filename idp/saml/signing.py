"""XML signatures (XML-DSig, SAML core §5) and HTTP-Redirect query signatures (SAML bindings
§3.4.4.1).

Outgoing: RSA-SHA256 over SHA-256 digests, exclusive canonicalisation, enveloped, one
``Reference URI="#<ID>"``, the ``ds:Signature`` placed right after ``saml:Issuer`` (core
§5.4.2). xmlsec key objects are parsed once per key id and reused (hot path).

Incoming (signed AuthnRequests, LogoutRequests and LogoutResponses): checked against the SP's
registered certificate only, never a key carried in the message; the single reference must
point at the root element's ID (no signature wrapping) and use only the enveloped transform and
canonicalisation; the caller reads the message from the very tree (POST) or parameter octets
(Redirect, :mod:`.bindings`) that were verified.
"""

from __future__ import annotations

import base64
import binascii
import threading
from urllib.parse import quote_plus

import xmlsec
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from ..keys import SigningKey
from .constants import NS_DS, NS_SAML, RSA_SHA256, RSA_SHA384, RSA_SHA512

_HASHES = {RSA_SHA256: hashes.SHA256, RSA_SHA384: hashes.SHA384, RSA_SHA512: hashes.SHA512}
_ISSUER = f"{{{NS_SAML}}}Issuer"
_REFERENCE_TRANSFORMS = (xmlsec.Transform.ENVELOPED, xmlsec.Transform.EXCL_C14N,
                         xmlsec.Transform.C14N, xmlsec.Transform.C14N11,
                         xmlsec.Transform.SHA256, xmlsec.Transform.SHA384,
                         xmlsec.Transform.SHA512, xmlsec.Transform.SHA1)
"""What a Reference of a signed SAML message may do (SAML core §5.4.4): the enveloped
transform and canonicalisation without comments (comments are dropped at parse time). No
XPath or XSLT, which could make the signature cover less than the message."""
_SIGNATURE_TRANSFORMS = (xmlsec.Transform.EXCL_C14N, xmlsec.Transform.C14N,
                         xmlsec.Transform.C14N11, xmlsec.Transform.RSA_SHA256,
                         xmlsec.Transform.RSA_SHA384, xmlsec.Transform.RSA_SHA512)
"""SignedInfo's canonicalisation and signature methods: RSA with SHA-2, as for Redirect
signatures (no RSA-SHA1, no HMAC)."""
_xmlsec_keys: dict[str, xmlsec.Key] = {}
_lock = threading.Lock()


class SignatureError(ValueError):
    """A signature is missing, malformed or does not verify; the text is safe to show."""


def _xmlsec_key(key: SigningKey) -> xmlsec.Key:
    """The xmlsec key object for ``key``, parsed once (PEM parsing costs as much as a sign)."""
    cached = _xmlsec_keys.get(key.kid)
    if cached is None:
        with _lock:
            cached = _xmlsec_keys.get(key.kid)
            if cached is None:
                cached = xmlsec.Key.from_memory(key.private_pem.encode(),
                                                xmlsec.KeyFormat.PEM, None)
                _xmlsec_keys[key.kid] = cached
    return cached


def sign_element(element: etree._Element, key: SigningKey) -> None:
    """Sign ``element`` (which has an ``ID`` and a ``saml:Issuer`` child) in place."""
    signature = xmlsec.template.create(element, xmlsec.Transform.EXCL_C14N,
                                       xmlsec.Transform.RSA_SHA256, ns="ds")
    issuer = element.find(_ISSUER)
    if issuer is None:
        element.insert(0, signature)
    else:
        issuer.addnext(signature)
    reference = xmlsec.template.add_reference(signature, xmlsec.Transform.SHA256,
                                              uri="#" + element.get("ID"))
    xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
    key_info = xmlsec.template.ensure_key_info(signature)
    x509_data = xmlsec.template.add_x509_data(key_info)
    certificate = etree.SubElement(x509_data, f"{{{NS_DS}}}X509Certificate")
    certificate.text = key.certificate_b64
    context = xmlsec.SignatureContext()
    context.register_id(element, "ID")
    context.key = _xmlsec_key(key)
    context.sign(signature)


def load_certificate(pem_or_b64: str) -> x509.Certificate:
    """A certificate from PEM or from bare base64 DER (as in metadata)."""
    text = pem_or_b64.strip()
    try:
        if text.startswith("-----BEGIN"):
            return x509.load_pem_x509_certificate(text.encode())
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split()),
                                                               validate=True))
    except (ValueError, binascii.Error):
        raise SignatureError("the certificate is not a valid X.509 certificate") from None


def verify_element(element: etree._Element, certificate_pem: str) -> None:
    """Verify the enveloped signature of ``element`` (the message root) with the SP's
    certificate; raise :class:`SignatureError` unless it is valid and covers the whole root."""
    signatures = element.findall(f"{{{NS_DS}}}Signature")
    if len(signatures) != 1:
        raise SignatureError("the message must carry exactly one signature on its root")
    references = signatures[0].findall(f"{{{NS_DS}}}SignedInfo/{{{NS_DS}}}Reference")
    root_id = element.get("ID")
    if len(references) != 1 or not root_id or references[0].get("URI") != "#" + root_id:
        raise SignatureError("the signature does not cover the message")
    method = signatures[0].find(f"{{{NS_DS}}}SignedInfo/{{{NS_DS}}}SignatureMethod")
    if method is None or method.get("Algorithm") not in _HASHES:
        raise SignatureError("unsupported signature algorithm: use rsa-sha256")
    try:
        key = xmlsec.Key.from_memory(certificate_pem.encode(), xmlsec.KeyFormat.CERT_PEM, None)
        context = xmlsec.SignatureContext()
        context.register_id(element, "ID")
        for transform in _REFERENCE_TRANSFORMS:
            context.enable_reference_transform(transform)
        for transform in _SIGNATURE_TRANSFORMS:
            context.enable_signature_transform(transform)
        context.key = key
        context.verify(signatures[0])
    except xmlsec.Error:
        raise SignatureError("the message signature does not verify") from None


def redirect_query(params: list[tuple[str, str]]) -> str:
    """``k=v&...`` with upper-case percent-encoding, as python3-saml rebuilds it to verify
    (bindings §3.4.4.1; ZULIP.md pitfall 8)."""
    return "&".join(f"{name}={quote_plus(value)}" for name, value in params)


def sign_redirect(params: list[tuple[str, str]], key: SigningKey) -> str:
    """The signed query string: ``params`` (SAMLRequest|SAMLResponse, RelayState?) plus
    SigAlg and Signature."""
    params = [*params, ("SigAlg", RSA_SHA256)]
    query = redirect_query(params)
    signature = key.sign_rs256(query.encode())
    return query + "&Signature=" + quote_plus(base64.b64encode(signature).decode())


def verify_redirect(signed_octets: bytes | None, sig_alg: str | None,
                    signature_b64: str | None, certificate_pem: str) -> None:
    """Check a Redirect-binding signature (bindings §3.4.4.1) over ``signed_octets``, the
    ``SAMLRequest|SAMLResponse=…[&RelayState=…]&SigAlg=…`` octets as sent, which
    :func:`idp.saml.bindings.read_redirect` rebuilt from the same parse the message is read
    from."""
    if not sig_alg or not signature_b64 or signed_octets is None:
        raise SignatureError("this service provider must sign its requests")
    algorithm = _HASHES.get(sig_alg)
    if algorithm is None:
        raise SignatureError("unsupported SigAlg: use rsa-sha256")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the Signature parameter is not valid base64") from None
    public_key = load_certificate(certificate_pem).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureError("the service provider's certificate is not an RSA key")
    try:
        public_key.verify(signature, signed_octets, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise SignatureError("the request signature does not verify") from None
