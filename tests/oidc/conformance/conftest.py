"""Fixtures of the conformance modules: the OpenID provider under test over each transport,
the relying party (pyoidc) for a registered client with a logout URI, and signed-in browsers.

Every module runs twice: over plain http against the in-process server (``live_server``, the
clock movable), and over https through the deployed topology (tests/deployed/fixtures.py:
nginx terminating TLS with the test CA, gunicorn replicas started from deploy/), where every
client verifies the certificate against that CA and time passes for real.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from idp import clock
from idp.csrf import origin_of
from tests.helpers import http_login, wait_for
from tests.oidc.conformance.rp import RelyingParty, VerifyingSession
from tests.oidc.conftest import APP_REDIRECT, Client

POST_LOGOUT = "https://app.example.edu/logged-out"
CLIENT = {"post_logout_redirect_uris": [POST_LOGOUT], "scopes": ["openid", "profile", "email"]}


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


@dataclass(frozen=True)
class OpenIDProvider:
    """The bridge as the modules see it: its issuer URL and how to reach it."""

    transport: str              # "http" or "https"
    issuer: str
    ca_file: str | None         # the test CA over https; None over plain http

    def browser(self) -> Browser:
        """A browser with no cookies."""
        return Browser(origin_of(self.issuer), self.ca_file or True)

    def signed_in(self, login: str = "student1") -> Browser:
        return http_login(self.issuer, login, session=self.browser())

    def advance(self, seconds: int) -> None:
        """Let ``seconds`` pass on the bridge's clock: moved in-process over http; over https
        the gunicorn workers read the real clock, so the module waits as the suite does."""
        if self.transport == "http":
            clock.advance(seconds)
            return
        until = time.time() + seconds
        wait_for(lambda: time.time() >= until, seconds + 5, f"{seconds} s to pass")


@pytest.fixture(scope="session")
def deployed_conformance_client(deployment) -> Client:
    """The conformance RP registered once in the deployed bridge's own database."""
    from idp import create_app
    from idp.extensions import db
    from idp.oidc.clients import create_client

    app = create_app(deployment.env)
    with app.app_context():
        made = create_client(name="conformance-rp", redirect_uris=[APP_REDIRECT],
                             trusted=True, **CLIENT)
        db.session.commit()
        client = Client(made.client.client_id, made.secret, APP_REDIRECT)
        db.session.remove()
        db.engine.dispose()
    app.extensions["autocommit_engine"].dispose()
    app.extensions["lms_directory"].engine.dispose()
    return client


@pytest.fixture(params=["http", "https"])
def op(request) -> OpenIDProvider:
    if request.param == "http":
        return OpenIDProvider("http", request.getfixturevalue("live_server"), None)
    deployment = request.getfixturevalue("deployment")
    return OpenIDProvider("https", deployment.issuer, str(deployment.pki.ca_pem))


@pytest.fixture
def conformance_client(op, request) -> Client:
    if op.transport == "https":
        return request.getfixturevalue("deployed_conformance_client")
    return request.getfixturevalue("make_client")("conformance-rp", **CLIENT)


@pytest.fixture
def relying_party(op, conformance_client, monkeypatch) -> RelyingParty:
    """The RP reads the same (test-movable) clock as the bridge, as two real parties would."""
    from oic.utils import time_util

    monkeypatch.setattr(time_util, "utc_time_sans_frac", clock.timestamp)
    return RelyingParty(op.issuer, conformance_client, op.ca_file)
