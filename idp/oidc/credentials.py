"""Secrets of the OIDC provider: client secrets, codes and tokens, and their stored digests.

Client secrets are 256-bit random strings, so a fast keyed hash is enough (no password stretching
needed): HMAC-SHA256 under a server key derived from ``IDP_SECRET_KEY``, compared in constant
time. Codes and tokens are stored as plain SHA-256 digests (their entropy makes them unguessable).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

from flask import current_app

_KEY_LABEL = b"lms-zulip-bridge/oidc-client-secret/v1"
_KEYS: dict[str, bytes] = {}


def _server_key() -> bytes:
    master = current_app.config["IDP"].secret_key
    key = _KEYS.get(master)
    if key is None:
        key = hmac.new(master.encode(), _KEY_LABEL, hashlib.sha256).digest()
        _KEYS[master] = key
    return key


_CLIENT_ID_ALPHABET = string.ascii_letters + string.digits


def new_client_id() -> str:
    """24 random letters and digits (about 143 bits). No ``-`` or ``_``: one id in 64 from the
    URL-safe alphabet began with ``-`` and read as an option on the command line (``flask
    agents approve-client ID``, ``oidc remove-client ID``)."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(24))


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_client_secret(secret: str) -> str:
    """HMAC-SHA256(server key, secret), hex."""
    return hmac.new(_server_key(), secret.encode("utf-8", "surrogatepass"),
                    hashlib.sha256).hexdigest()


def verify_client_secret(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of the keyed hash (RFC 6749 §2.3.1)."""
    return hmac.compare_digest(hash_client_secret(secret), stored_hash)


def new_token(nbytes: int = 32) -> str:
    """An opaque bearer credential (RFC 6750 b64token alphabet)."""
    return secrets.token_urlsafe(nbytes)


