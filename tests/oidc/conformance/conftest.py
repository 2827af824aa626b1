"""Fixtures of the conformance modules: the OpenID provider under test over each transport,
the relying party (pyoidc) for a registered client with a logout URI, and signed-in browsers.

Every module runs twice (the ``bridge`` fixture, tests/deployed/fixtures.py): over plain http
against the in-process server, and over https through nginx terminating TLS with the test CA
and replicas of the shipped server started from deploy/, every client verifying the certificate.
"""

from __future__ import annotations

import pytest

from idp import clock
from idp.extensions import db
from idp.oidc.clients import create_client
from tests.deployed.fixtures import Bridge
from tests.oidc.conformance.rp import RelyingParty
from tests.oidc.conftest import APP_REDIRECT, Client

POST_LOGOUT = "https://app.example.edu/logged-out"
CLIENT = {"post_logout_redirect_uris": [POST_LOGOUT], "scopes": ["openid", "profile", "email"]}


@pytest.fixture(scope="session")
def deployed_conformance_client(deployed_app) -> Client:
    """The conformance RP registered once in the deployed bridge's own database."""
    with deployed_app.app_context():
        made = create_client(name="conformance-rp", redirect_uris=[APP_REDIRECT],
                             trusted=True, **CLIENT)
        db.session.commit()
        return Client(made.client.client_id, made.secret, APP_REDIRECT)


@pytest.fixture
def op(bridge) -> Bridge:
    """The OpenID provider under test: the bridge over http, then over https."""
    return bridge


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
