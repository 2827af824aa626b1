"""Fixtures of the conformance modules: the relying party (pyoidc) for a registered client,
with a logout URI, and a signed-in browser."""

from __future__ import annotations

import pytest

from tests.oidc.conformance.rp import RelyingParty

POST_LOGOUT = "https://app.example.edu/logged-out"


@pytest.fixture
def conformance_client(make_client):
    return make_client("conformance-rp", post_logout_redirect_uris=[POST_LOGOUT],
                       scopes=["openid", "profile", "email"])


@pytest.fixture
def relying_party(live_server, conformance_client, monkeypatch) -> RelyingParty:
    """The RP reads the same (test-movable) clock as the bridge, as two real parties would."""
    from oic.utils import time_util

    from idp import clock

    monkeypatch.setattr(time_util, "utc_time_sans_frac", clock.timestamp)
    return RelyingParty(live_server, conformance_client)
