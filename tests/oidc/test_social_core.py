"""social-core's OpenIdConnectAuth (what Zulip's generic OIDC backend runs) against the live
bridge: discovery, authorization URL with state and nonce, code exchange, ID-token validation
with the JWKS (signature, kid, iss, aud, nonce, iat, at_hash) and userinfo. Only the Django
plumbing is stubbed: settings, session, request data and nonce/association storage."""

from __future__ import annotations

import itertools
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from social_core.backends.open_id_connect import OpenIdConnectAuth
from social_core.exceptions import AuthException
from social_core.strategy import BaseStrategy

from tests.oidc.conftest import ZULIP_REDIRECT

_ids = itertools.count(1)


class MemoryStorage:
    """The nonce and association tables social-core expects (Django models in Zulip)."""

    class nonce:  # noqa: N801  (social-core's attribute name)
        used: set = set()

        @classmethod
        def use(cls, server_url, timestamp, salt):
            key = (server_url, timestamp, salt)
            if key in cls.used:
                return False
            cls.used.add(key)
            return True

        @classmethod
        def consume(cls, server_url, timestamp, salt):
            key = (server_url, timestamp, salt)
            if key in cls.used:
                cls.used.discard(key)
                return True
            return False

    class association:  # noqa: N801
        rows: dict = {}

        @classmethod
        def store(cls, server_url, association):
            association.id = next(_ids)
            association.server_url = server_url
            association.is_expired = lambda: time.time() >= association.issued + \
                association.lifetime
            cls.rows[association.id] = association

        @classmethod
        def get(cls, server_url=None, handle=None):
            return [a for a in cls.rows.values()
                    if a.server_url == server_url and a.handle == handle]

        @classmethod
        def remove(cls, ids):
            for i in ids:
                cls.rows.pop(i, None)


class ZulipLikeStrategy(BaseStrategy):
    """Settings as Zulip's SOCIAL_AUTH_OIDC_ENABLED_IDPS would give them; a dict session."""

    def __init__(self, settings: dict):
        super().__init__(storage=MemoryStorage)
        self.settings, self.session, self.data = settings, {}, {}

    def get_setting(self, name):
        return self.settings[name]

    def get_request_data(self, merge=True):
        return dict(self.data)

    def session_get(self, name, default=None):
        return self.session.get(name, default)

    def session_set(self, name, value):
        self.session[name] = value

    def session_pop(self, name):
        return self.session.pop(name, None)

    def build_absolute_uri(self, path=None):
        return "https://zulip.example.edu" + (path or "/")

    def request_is_secure(self):
        return True

    def authenticate(self, backend, *args, **kwargs):
        """Zulip's pipeline starts here; hand back what it would receive."""
        return kwargs


def zulip_backend(live_server, client, **extra) -> tuple[OpenIdConnectAuth,
                                                         ZulipLikeStrategy]:
    strategy = ZulipLikeStrategy({
        "SOCIAL_AUTH_OIDC_OIDC_ENDPOINT": live_server,
        "SOCIAL_AUTH_OIDC_KEY": client.client_id,
        "SOCIAL_AUTH_OIDC_SECRET": client.secret,
        **{f"SOCIAL_AUTH_OIDC_{k}": v for k, v in extra.items()},
    })
    return OpenIdConnectAuth(strategy, redirect_uri="/complete/oidc/"), strategy


def run_login(live_server, client, browser_session, **extra):
    backend, strategy = zulip_backend(live_server, client, **extra)
    url = backend.auth_url()
    query = parse_qs(urlsplit(url).query)
    assert query["scope"] == ["openid profile email"] and "nonce" in query
    response = browser_session.get(url, allow_redirects=False)
    assert response.status_code == 302, response.text[:300]
    location = response.headers["Location"]
    assert location.startswith(ZULIP_REDIRECT)
    strategy.data = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    callback = OpenIdConnectAuth(strategy, redirect_uri="/complete/oidc/")  # a new request
    return callback, callback.auth_complete()


def test_social_core_validates_id_token_and_reads_claims(live_server, rp, browser_session):
    backend, result = run_login(live_server, rp, browser_session)
    id_token = backend.id_token
    assert id_token["sub"] == "student:1" and id_token["aud"] == rp.client_id
    assert id_token["iss"] == live_server
    userinfo = result["response"]
    assert userinfo["email"] == "student1@example.edu" and userinfo["email_verified"] is True
    details = backend.get_user_details(userinfo)
    assert details == {"username": "student1", "email": "student1@example.edu",
                       "fullname": "Meera Rossi", "first_name": "Meera",
                       "last_name": "Rossi"}
    assert backend.get_user_id(details, userinfo) == "student:1"
    assert userinfo["zulip_role"] == "member"
    assert userinfo["zulip_groups"][0] == "students"


def test_social_core_with_pkce_staff_gets_administrator_role(live_server, rp):
    from tests.helpers import http_login

    _backend, result = run_login(live_server, rp, http_login(live_server, "staff1"),
                                 USE_PKCE=True)
    assert result["response"]["zulip_role"] == "administrator"
    assert "staff" in result["response"]["zulip_groups"]
    assert result["response"]["lms_kind"] == "mentor"


def test_social_core_refuses_a_code_replayed_into_another_login(live_server, rp,
                                                               browser_session):
    """A second completion with the same callback is refused by social-core (its state and
    nonce are spent); the bridge's own single-use rule is tested in test_negative.py."""
    backend, strategy = zulip_backend(live_server, rp)
    url = backend.auth_url()
    location = browser_session.get(url, allow_redirects=False).headers["Location"]
    strategy.data = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    OpenIdConnectAuth(strategy, redirect_uri="/complete/oidc/").auth_complete()
    with pytest.raises(AuthException):
        OpenIdConnectAuth(strategy, redirect_uri="/complete/oidc/").auth_complete()
