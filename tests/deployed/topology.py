"""The production shape, started by the tests: a test CA and certificate, Debian's nginx running
the shipped site (deploy/nginx/), replicas started with the shipped unit's command line
(deploy/systemd/), each replaced only in ports, paths and certificates.

How Chromium trusts the test CA: the CA certificate is added as a trusted root to an NSS
database (``certutil``, Debian package libnss3-tools) in a temporary HOME, the place where
Chromium on Linux reads locally trusted roots (``$HOME/.pki/nssdb``). Chromium then validates
the chain for real; no certificate error is ignored.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.helpers import stop_process

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SHIPPED_PREFIX = "/opt/lms-zulip-bridge"
SHIPPED_HOST = "sso.example.edu"
SHIPPED_UPSTREAM = "127.0.0.1:8000"


# -- certificates -------------------------------------------------------------------------
@dataclass(frozen=True)
class TestPKI:
    ca_pem: Path
    cert_pem: Path       # leaf + CA (fullchain)
    key_pem: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_pki(directory: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> TestPKI:
    """A CA made now, and a server certificate it signs for ``hosts`` (names and addresses)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("LMS bridge test CA"))
          .issuer_name(_name("LMS bridge test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.IPAddress(ipaddress.ip_address(h)) if h[0].isdigit() else x509.DNSName(h)
             for h in hosts]
    leaf = (x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pki = TestPKI(directory / "ca.pem", directory / "fullchain.pem", directory / "privkey.pem")
    pem = serialization.Encoding.PEM
    pki.ca_pem.write_bytes(ca.public_bytes(pem))
    pki.cert_pem.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    pki.key_pem.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    pki.key_pem.chmod(0o600)
    return pki


def chromium_home(directory: Path, pki: TestPKI) -> Path:
    """A HOME whose NSS database trusts the test CA as a root for web servers ("C,,")."""
    nssdb = directory / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-N", "--empty-password"], check=True)
    subprocess.run(["certutil", "-d", f"sql:{nssdb}", "-A", "-t", "C,,", "-n",
                    "lms-bridge-test-ca", "-i", str(pki.ca_pem)], check=True)
    return directory


# -- shipped files, templated ---------------------------------------------------------------
def _substitute(text: str, replacements: list[tuple[str, str]], source: str) -> str:
    """Replace each literal of the shipped file; a literal that vanished fails loudly (the
    test would otherwise quietly stop running what is shipped)."""
    for old, new in replacements:
        assert old in text, f"{source} no longer contains {old!r}: update tests/deployed/"
        text = text.replace(old, new)
    return text


def nginx_site(*, host: str, https_port: int, http_port: int, pki: TestPKI,
               upstreams: list[int]) -> str:
    source = DEPLOY / "nginx" / "lms-zulip-bridge.conf"
    servers = "\n    ".join(f"server 127.0.0.1:{port};" for port in upstreams)
    return _substitute(source.read_text(), [
        (f"https://{SHIPPED_HOST}", f"https://{host}:{https_port}"),
        (f"server_name {SHIPPED_HOST};", f"server_name {host};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
        ("/etc/ssl/lms-zulip-bridge/fullchain.pem", str(pki.cert_pem)),
        ("/etc/ssl/lms-zulip-bridge/privkey.pem", str(pki.key_pem)),
        (f"{SHIPPED_PREFIX}/", f"{ROOT}/"),
        (f"server {SHIPPED_UPSTREAM};", servers),
    ], "deploy/nginx/lms-zulip-bridge.conf")


def nginx_main_conf(directory: Path, site: Path) -> str:
    """The top-level nginx.conf (Debian's /etc/nginx/nginx.conf in production), in a temporary
    prefix so that nginx runs as an unprivileged child of the tests."""
    # Started as root (CI), nginx's workers would switch to an unprivileged user that cannot
    # read the test's private temporary directories: keep them as the test's own user.
    user = "user root;" if os.geteuid() == 0 else ""
    temp = "\n  ".join(f"{kind}_temp_path {directory}/{kind};"
                       for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{user}
daemon off;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 512; }}
http {{
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log {directory}/access.log;
  {temp}
  include {site};
}}
"""


def unit_command(unit: str, *, port: int) -> tuple[list[str], dict[str, str]]:
    """ExecStart= and Environment= of a shipped systemd unit, paths and port substituted."""
    source = DEPLOY / "systemd" / unit
    text = _substitute(source.read_text(), [
        (f"{SHIPPED_PREFIX}/.venv/bin/", f"{Path(sys.executable).parent}/"),
        (SHIPPED_PREFIX, str(ROOT)),
    ], f"deploy/systemd/{unit}")
    text = text.replace(SHIPPED_UPSTREAM, f"127.0.0.1:{port}")
    command, environment = [], {}
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            command = shlex.split(line.removeprefix("ExecStart="))
        elif line.startswith("Environment="):
            name, _, value = line.removeprefix("Environment=").partition("=")
            environment[name] = value
    assert command, f"no ExecStart= in deploy/systemd/{unit}"
    return command, environment


# -- processes ------------------------------------------------------------------------------
class Processes:
    """Child processes started by a fixture, stopped (TERM, then KILL) in reverse order."""

    def __init__(self) -> None:
        self.started: list[tuple[subprocess.Popen, object]] = []

    def start(self, command: list[str], *, log: Path, **options) -> subprocess.Popen:
        handle = open(log, "w")  # noqa: SIM115 - closed in stop_all
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, **options)
        self.started.append((proc, handle))
        return proc

    def stop_all(self) -> None:
        for proc, handle in reversed(self.started):
            stop_process(proc, timeout=20)
            handle.close()
        self.started.clear()
