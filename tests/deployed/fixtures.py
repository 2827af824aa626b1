"""The https topology, started once per test session and shared by every test that asks for
``deployment`` (a plugin registered by tests/conftest.py):

    Chromium ──https──▶ nginx (deploy/nginx site, test CA) ──▶ replica A (granian, 4 workers)
                                                          └─▶ replica B (granian, 4 workers)
    Chromium ──https──▶ peers: an OIDC relying party and a python3-saml SP (another site)

Both replicas run the shipped unit's command line against one bridge database of their own
(``bridge_deployed``, so the table truncation of the other tests never reaches it) and the
shared demo LMS, with ``IDP_ISSUER=https://localhost:PORT`` and ``IDP_TRUSTED_PROXY_COUNT=1``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from idp import clock
from idp.csrf import origin_of
from idp.extensions import db
from tests.conftest import launch_chromium, page_with_screenshot
from tests.helpers import (
    Browser,
    bridge_command,
    create_databases,
    free_port,
    http_login,
    wait_for,
)
from tests.saml.zulip_sp import ZulipSP

from .peers import RelyingParty, ServiceProvider, TLSServer, peers_app
from .topology import (
    ROOT,
    Processes,
    TestPKI,
    chromium_home,
    make_pki,
    nginx_main_conf,
    nginx_site,
)

REPLICAS = 2


@dataclass
class Deployment:
    issuer: str                 # https://localhost:PORT, through nginx
    http_url: str               # nginx's plain-http server (redirects to https)
    replicas: list[str]         # http://127.0.0.1:PORT of each replica, bypassing nginx
    peers: str                  # https://127.0.0.1:PORT, the RP and the SP
    pki: TestPKI
    env: dict[str, str]
    rp: RelyingParty
    sp: ServiceProvider
    logs: Path
    metrics_dirs: list[Path]     # PROMETHEUS_MULTIPROC_DIR of each replica

    def get(self, path: str, **options) -> requests.Response:
        options.setdefault("allow_redirects", False)
        return requests.get(self.issuer + path, verify=str(self.pki.ca_pem), timeout=15,
                            **options)


def _require(tool: str) -> None:
    if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
        pytest.fail(f"{tool} is missing: ./scripts/test installs it (apt: nginx, "
                    f"libnss3-tools)")


@pytest.fixture(scope="session")
def deployment(pg, lms, env, tmp_path_factory):
    _require("nginx")
    _require("certutil")
    from flask_migrate import upgrade

    from idp import create_app
    from idp.oidc.clients import create_client
    from idp.saml.registry import SPDefinition, save_sp

    base = tmp_path_factory.mktemp("deployed")
    pki = make_pki(base)
    https_port, http_port, peers_port = free_port(), free_port(), free_port()
    replica_ports = [free_port() for _ in range(REPLICAS)]
    issuer = f"https://localhost:{https_port}"
    peers = f"https://127.0.0.1:{peers_port}"
    create_databases(pg, "bridge_deployed")
    bridge_env = {**env, "IDP_ISSUER": issuer, "IDP_TRUSTED_PROXY_COUNT": "1",
                  "IDP_DATABASE_URL": pg.get_uri("bridge_deployed"),
                  "IDP_KEYS_DIR": str(base / "keys"), "IDP_LOG_LEVEL": "INFO",
                  "IDP_LAUNCH_SERVICE_URLS": peers}

    # Schema, keys (made once, before any worker starts) and the registered peers.
    setup = create_app(bridge_env)
    sp = ZulipSP(idp_entity_id=setup.extensions["saml"].entity_id, idp_base_url=issuer,
                 idp_cert_b64=setup.extensions["signing_keys"].current().certificate_b64,
                 entity_id=peers, acs_url=peers + "/complete/saml/",
                 host=f"127.0.0.1:{peers_port}")
    rp = RelyingParty(issuer=issuer, base_url=peers, ca_file=str(pki.ca_pem))
    with setup.app_context():
        upgrade(revision="heads")
        save_sp(SPDefinition(entity_id=sp.entity_id, acs_urls=[sp.acs_url],
                             slo_url=sp.acs_url))
        for name, trusted in (("trusted", True), ("third", False)):
            made = create_client(name=f"RP {name}", redirect_uris=[rp.redirect_uri],
                                 trusted=trusted,
                                 post_logout_redirect_uris=[rp.post_logout_uri])
            rp.clients[name] = (made.client.client_id, made.secret)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    setup.extensions["autocommit_engine"].dispose()
    setup.extensions["lms_directory"].engine.dispose()

    processes = Processes()
    logs = base / "logs"
    logs.mkdir()
    try:
        replicas = []
        for index, port in enumerate(replica_ports):
            command, unit_env = bridge_command(port, base / f"metrics-{index}")
            processes.start(command, log=logs / f"replica-{index}.log", cwd=ROOT,
                            env={**os.environ, **bridge_env, **unit_env})
            replicas.append(f"http://127.0.0.1:{port}")
        site = base / "site.conf"
        site.write_text(nginx_site(host="localhost", https_port=https_port,
                                   http_port=http_port, pki=pki, upstreams=replica_ports))
        main = base / "nginx.conf"
        main.write_text(nginx_main_conf(base, site))
        processes.start(["nginx", "-p", str(base), "-c", str(main), "-e",
                         str(base / "error.log")], log=logs / "nginx.log")
        service_provider = ServiceProvider(sp)
        peers_server = TLSServer(peers_app(rp, service_provider), peers_port,
                                 str(pki.cert_pem), str(pki.key_pem))

        def answers(url: str, **options) -> bool:
            try:
                return requests.get(url + "/healthz", timeout=2, **options).status_code == 200
            except requests.RequestException:
                return False

        for url in replicas:
            wait_for(lambda url=url: answers(url), 90, f"replica at {url}")
        wait_for(lambda: answers(issuer, verify=str(pki.ca_pem)), 30, "nginx")
        yield Deployment(issuer=issuer, http_url=f"http://localhost:{http_port}",
                         replicas=replicas, peers=peers, pki=pki, env=bridge_env, rp=rp,
                         sp=service_provider, logs=logs,
                         metrics_dirs=[base / f"metrics-{i}" for i in range(REPLICAS)])
        peers_server.stop()
    finally:
        processes.stop_all()


@pytest.fixture(scope="session")
def https_browser(deployment, playwright, tmp_path_factory):
    """Headless Chromium whose HOME holds an NSS database trusting the test CA: certificates
    are verified for real (see tests/deployed/topology.py)."""
    home = chromium_home(tmp_path_factory.mktemp("chromium-home"), deployment.pki)
    chromium = launch_chromium(playwright, env={**os.environ, "HOME": str(home)})
    yield chromium
    chromium.close()


@pytest.fixture
def https_page(https_browser, request):
    """A fresh context (no cookies), no extra headers, certificate errors NOT ignored."""
    yield from page_with_screenshot(https_browser, f"https-{request.node.name}")


# -- the bridge over either transport ---------------------------------------------------------
@dataclass(frozen=True)
class Bridge:
    """The bridge as a test reaches it: over plain http the in-process server (``live_server``,
    clock movable); over https this topology, every client verifying the certificate against
    the test CA and time passing for real. ``app`` is for the CLI and database reads: over https
    an app on the deployed database, not one of the serving workers."""

    transport: str              # "http" or "https"
    issuer: str
    ca_file: str | None         # the test CA over https; None over plain http
    app: object

    def browser(self) -> Browser:
        """A browser with no cookies."""
        return Browser(origin_of(self.issuer), self.ca_file or True)

    def signed_in(self, login: str = "student1") -> Browser:
        return http_login(self.issuer, login, session=self.browser())

    def advance(self, seconds: int) -> None:
        """Let ``seconds`` pass on the bridge's clock: moved in-process over http; over https
        the server's workers read the real clock, so the test waits as a real peer would."""
        if self.transport == "http":
            clock.advance(seconds)
            return
        until = time.time() + seconds
        wait_for(lambda: time.time() >= until, seconds + 5, f"{seconds} s to pass")


@pytest.fixture(scope="session")
def deployed_app(deployment):
    """An app on the deployed bridge's database and keys (registrations, database reads)."""
    from idp import create_app

    app = create_app(deployment.env)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["autocommit_engine"].dispose()
    app.extensions["lms_directory"].engine.dispose()


@pytest.fixture(params=["http", "https"])
def bridge(request) -> Bridge:
    """The same test over plain http and over https through nginx and the shipped server."""
    if request.param == "http":
        return Bridge("http", request.getfixturevalue("live_server"), None,
                      request.getfixturevalue("app"))
    deployment = request.getfixturevalue("deployment")
    return Bridge("https", deployment.issuer, str(deployment.pki.ca_pem),
                  request.getfixturevalue("deployed_app"))
