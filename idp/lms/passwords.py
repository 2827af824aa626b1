"""Verification of the password hashes the LMS wrote, with libpass (import name ``passlib``).

Formats (DESIGN.md): Django ``pbkdf2_sha256$iter$salt$hash`` (and Django's bcrypt/argon2
variants), bcrypt ``$2y$``/``$2b$``/``$2a$``, sha512-crypt ``$6$``, argon2 ``$argon2id$``. The
stored parameters (iteration count, cost, memory) are always the ones in the hash: nothing is
re-hashed and nothing is ever written back to the LMS.
"""

from __future__ import annotations

import logging

from passlib.context import CryptContext

log = logging.getLogger(__name__)

MAX_PASSWORD_CHARS = 4096
"""Longer passwords are refused before any hashing (Django's limit; a 1 MB password must not
cost a megabyte of HMAC work or reach bcrypt)."""

BCRYPT_MAX_BYTES = 72

_context = CryptContext(schemes=[
    "django_pbkdf2_sha256", "django_pbkdf2_sha1", "django_bcrypt_sha256", "django_bcrypt",
    "django_argon2", "bcrypt", "sha512_crypt", "sha256_crypt", "argon2",
])

_BCRYPT_SCHEMES = {"bcrypt", "django_bcrypt"}


def scheme_of(stored_hash: str) -> str | None:
    """Name of the libpass scheme that reads ``stored_hash``, or None if none does."""
    try:
        return _context.identify(stored_hash)
    except (ValueError, TypeError):
        return None


def verify_password(password: str, stored_hash: str | None) -> bool:
    """True when ``password`` matches ``stored_hash``; False for a wrong password, an empty or
    unknown hash, or an over-long password. Never raises for bad input."""
    if not stored_hash or len(password) > MAX_PASSWORD_CHARS:
        return False
    scheme = scheme_of(stored_hash)
    if scheme is None:
        log.warning("LMS password hash in an unknown format; login refused")
        return False
    secret = password.encode("utf-8", "surrogatepass")
    if scheme in _BCRYPT_SCHEMES and len(secret) > BCRYPT_MAX_BYTES:
        # bcrypt reads at most 72 bytes; PHP's password_verify and the LMS that wrote the hash
        # truncate there, and bcrypt 5 raises instead, so cut exactly where the LMS did.
        secret = secret[:BCRYPT_MAX_BYTES]
    try:
        return bool(_context.verify(secret, stored_hash))
    except (ValueError, TypeError):
        log.warning("LMS password hash could not be read (scheme %s); login refused", scheme)
        return False


def hash_password(password: str, scheme: str, **settings) -> str:
    """Hash in one of the LMS formats (demo generator and tests only: the bridge never writes a
    hash to the LMS)."""
    handler = _context.handler(scheme)
    if settings:
        handler = handler.using(**settings)
    return handler.hash(password)
