"""Digests of opaque credentials: the bridge's tables keep the SHA-256 of a session token,
authorization code, access or refresh token or SAML continuation key, never the value, so a
leaked table cannot be replayed."""

import hashlib


def token_digest(value: str) -> str:
    """SHA-256 hex of ``value`` (any str; lone surrogates from odd input are kept, not fatal)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
