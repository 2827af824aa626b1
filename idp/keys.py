"""Signing keys shared by SAML and OIDC: create, load, rotate; JWKS and certificates.

Layout of ``keys/`` (files mode 0600, directory 0700, never committed): ``<kid>.key`` (PKCS#8
PEM RSA-2048), ``<kid>.crt`` (self-signed X.509, SHA-256, 10 years), ``state.json``::

    {"current": kid, "next": kid | null, "retired": [{"kid": kid, "retired_at": epoch}]}

Rotation is two steps so no peer sees a signature before it can know the key:
``flask --app wsgi keys rotate`` first *stages* a next key (published in SAML metadata and the
JWKS, not used to sign); run again, it *activates* the staged key and retires the old one, which
stays published for ``RETIRED_GRACE`` seconds so tokens it signed still verify.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from . import clock

RETIRED_GRACE = 7 * 24 * 3600
"""How long a retired key stays published: longer than any token or assertion it signed."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @cached_property
    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()

    @cached_property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @cached_property
    def certificate_b64(self) -> str:
        """Base64 DER, as in ``<ds:X509Certificate>``."""
        return base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()

    @cached_property
    def public_jwk(self) -> dict:
        """RFC 7517 public JWK (RS256 signing key) with ``kid`` and ``x5c``."""
        numbers = self.private_key.public_key().public_numbers()

        def b64(n: int) -> str:
            raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                "n": b64(numbers.n), "e": b64(numbers.e), "x5c": [self.certificate_b64]}

    def sign_rs256(self, data: bytes) -> bytes:
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


class KeyStore:
    """Keys in one directory; re-reads ``state.json`` when another process rotated."""

    def __init__(self, directory: str, common_name: str = "lms-zulip-bridge"):
        self.directory = directory
        self.common_name = common_name
        self._loaded_mtime: float | None = None
        # (state, keys) replaced as one value: a request thread never reads one file's state
        # with another's keys while a rotation is being loaded.
        self._loaded: tuple[dict, dict[str, SigningKey]] = ({}, {})

    # -- reading -------------------------------------------------------------------------
    def current(self) -> SigningKey:
        """The key that signs now (created at first use)."""
        state, keys = self._refresh()
        return keys[state["current"]]

    def staged(self) -> SigningKey | None:
        """The next key: published, not yet signing."""
        state, keys = self._refresh()
        kid = state.get("next")
        return keys[kid] if kid else None

    def published(self) -> list[SigningKey]:
        """Current, staged, and retired keys still inside their grace period."""
        state, keys = self._refresh()
        kids = [state["current"]]
        if state.get("next"):
            kids.append(state["next"])
        floor = clock.timestamp() - RETIRED_GRACE
        kids += [r["kid"] for r in state.get("retired", []) if r["retired_at"] >= floor]
        return [keys[k] for k in kids if k in keys]

    def get(self, kid: str) -> SigningKey | None:
        return next((k for k in self.published() if k.kid == kid), None)

    def jwks(self) -> dict:
        return {"keys": [k.public_jwk for k in self.published()]}

    # -- changing ------------------------------------------------------------------------
    def ensure(self) -> SigningKey:
        """Create the directory and a first key if there is none (first start)."""
        return self.current()

    def rotate(self) -> tuple[str, SigningKey]:
        """Stage a next key, or activate the staged one. Returns ("staged" | "activated", key)."""
        with self._locked():
            state = self._read_state()
            if state.get("next"):
                retired = state.setdefault("retired", [])
                retired.append({"kid": state["current"], "retired_at": clock.timestamp()})
                state["current"], state["next"] = state["next"], None
                action = "activated"
            else:
                state["next"] = self._create_key()
                action = "staged"
            self._write_state(state)
        self._loaded_mtime = None
        key = self.current() if action == "activated" else self.staged()
        assert key is not None
        return action, key

    # -- files ---------------------------------------------------------------------------
    def _state_path(self) -> str:
        return os.path.join(self.directory, "state.json")

    @contextmanager
    def _locked(self):
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        with open(os.path.join(self.directory, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _refresh(self) -> tuple[dict, dict[str, SigningKey]]:
        """The loaded (state, keys), re-read when ``state.json`` changed."""
        try:
            mtime = os.stat(self._state_path()).st_mtime
        except FileNotFoundError:
            with self._locked():
                if not os.path.exists(self._state_path()):
                    self._write_state({"current": self._create_key(), "next": None,
                                       "retired": []})
            mtime = os.stat(self._state_path()).st_mtime
        loaded = self._loaded
        if mtime == self._loaded_mtime:
            return loaded
        state = self._read_state()
        kids = [state["current"]] + ([state["next"]] if state.get("next") else []) + \
            [r["kid"] for r in state.get("retired", [])]
        keys = {kid: loaded[1].get(kid) or self._load_key(kid) for kid in kids}
        self._loaded = (state, keys)
        self._loaded_mtime = mtime
        return state, keys

    def _read_state(self) -> dict:
        with open(self._state_path()) as fh:
            return json.load(fh)

    def _write_state(self, state: dict) -> None:
        tmp = self._state_path() + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(state, fh, indent=2)
        os.replace(tmp, self._state_path())

    def _load_key(self, kid: str) -> SigningKey:
        base = os.path.join(self.directory, kid)
        with open(base + ".key", "rb") as fh:
            private_key = serialization.load_pem_private_key(fh.read(), password=None)
        with open(base + ".crt", "rb") as fh:
            certificate = x509.load_pem_x509_certificate(fh.read())
        return SigningKey(kid, private_key, certificate)

    def _create_key(self) -> str:
        now = clock.now()
        kid = now.strftime("%Y%m%d") + "-" + secrets.token_hex(4)
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.common_name)])
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(private_key.public_key())
                       .serial_number(x509.random_serial_number())
                       .not_valid_before(now - dt.timedelta(days=1))
                       .not_valid_after(now + dt.timedelta(days=3650))
                       .sign(private_key, hashes.SHA256()))
        key = SigningKey(kid, private_key, certificate)
        for suffix, content in ((".key", key.private_pem), (".crt", key.certificate_pem)):
            fd = os.open(os.path.join(self.directory, kid + suffix),
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(content)
        return kid


def get_keystore() -> KeyStore:
    from flask import current_app

    return current_app.extensions["signing_keys"]
