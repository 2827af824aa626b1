"""A relying party built on pyoidc (pip ``oic``), a library the bridge does not use, driving
the live bridge the way the OpenID conformance suite's OP test modules do.

pyoidc discovers the provider, builds the requests, parses the redirects, exchanges codes, and
verifies ID tokens (signature with the published JWKS, ``iss``, ``aud``, ``exp``, ``iat``,
``nonce``). The "browser" is a requests session signed in to the bridge through its real form.

Over https every request the RP makes verifies the bridge's certificate against the test CA
(``ca_file``): pyoidc's ``settings.verify_ssl`` for discovery, token and userinfo, and its key
jar for the JWKS. pyoidc's ``KeyJar.add`` silently turns verification off for any URL on
``localhost`` (oic/utils/keyio.py), the very host of the test topology, so the key jar here
makes its key bundles with the CA whatever pyoidc asks for.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from oic.oic import Client as PyoidcClient
from oic.oic.message import (
    AccessTokenResponse,
    AuthorizationResponse,
    EndSessionRequest,
    OpenIDSchema,
    RegistrationResponse,
)
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from oic.utils.keyio import KeyBundle, KeyJar
from oic.utils.settings import OicClientSettings

from idp.csrf import origin_of
from tests.helpers import VerifyingSession
from tests.oidc.conftest import redirect_params


@dataclass
class Flow:
    """One authorization request and what came back."""

    state: str
    nonce: str | None
    response: requests.Response
    params: dict = field(default_factory=dict)

    @property
    def redirected(self) -> bool:
        return self.response.status_code == 302 and \
            not self.response.headers["Location"].startswith("/")


def verifying_key_jar(verify: bool | str) -> KeyJar:
    """A pyoidc key jar whose JWKS fetches always verify TLS with ``verify`` (True: the
    system's roots; a path: that CA bundle), ``localhost`` included."""

    def bundle(*args, **kwargs) -> KeyBundle:
        kwargs["verify_ssl"] = verify
        return KeyBundle(*args, **kwargs)

    return KeyJar(verify_ssl=verify, keybundle_cls=bundle)


class RelyingParty:
    def __init__(self, issuer: str, client, ca_file: str | None = None) -> None:
        self.client = client
        verify = ca_file or True
        self.http = VerifyingSession(verify)    # the RP's own back-channel calls
        self.oic = PyoidcClient(client_id=client.client_id,
                                client_authn_method=CLIENT_AUTHN_METHOD,
                                settings=OicClientSettings(verify_ssl=verify),
                                keyjar=verifying_key_jar(verify))
        self.config = self.oic.provider_config(issuer)
        self.oic.store_registration_info(RegistrationResponse(
            client_id=client.client_id, client_secret=client.secret,
            redirect_uris=[client.redirect_uri]))
        self.oic.redirect_uris = [client.redirect_uri]

    # -- authorization endpoint -------------------------------------------------------
    def authorize(self, browser: requests.Session, *, scope: str = "openid",
                  nonce: bool = True, method: str = "GET", **extra) -> Flow:
        state = "st-" + secrets.token_hex(6)
        args = {"response_type": "code", "client_id": self.client.client_id, "scope": scope,
                "redirect_uri": self.client.redirect_uri, "state": state}
        if nonce:
            args["nonce"] = "n-" + secrets.token_hex(8)
        args.update(extra)
        request = self.oic.construct_AuthorizationRequest(request_args=args)
        endpoint = self.config["authorization_endpoint"]
        if method == "POST":    # a form on the RP's page, posted by the browser
            response = browser.post(endpoint, data=request.to_dict(), allow_redirects=False,
                                    headers={"Origin": origin_of(self.client.redirect_uri)})
        else:
            response = browser.get(request.request(endpoint), allow_redirects=False)
        flow = Flow(state, args.get("nonce"), response)
        if flow.redirected or (response.status_code == 200 and "http-equiv" in response.text):
            flow.params = redirect_params(response)
        return flow

    def parse(self, flow: Flow) -> AuthorizationResponse:
        """pyoidc's parsing and checks of the redirect (state, code or error)."""
        query = urlsplit(flow.response.headers["Location"]).query
        return self.oic.parse_response(AuthorizationResponse, info=query, sformat="urlencoded")

    # -- token endpoint ------------------------------------------------------------------
    def token(self, flow: Flow, *, authn_method: str = "client_secret_basic",
              **request_args) -> AccessTokenResponse:
        """Exchange the code; pyoidc verifies the ID token (signature, iss, aud, nonce...)."""
        self.parse(flow)
        return self.oic.do_access_token_request(
            state=flow.state, request_args={"code": flow.params["code"], **request_args},
            authn_method=authn_method)

    def refresh(self, flow: Flow) -> AccessTokenResponse:
        return self.oic.do_access_token_refresh(state=flow.state,
                                                authn_method="client_secret_basic")

    def userinfo(self, flow: Flow, *, how: str = "get") -> OpenIDSchema:
        """``get`` (header), ``post_header`` or ``post_body`` (RFC 6750 §2.1, §2.2)."""
        method, behavior = {"get": ("GET", "use_authorization_header"),
                            "post_header": ("POST", "use_authorization_header"),
                            "post_body": ("POST", "token_in_message_body")}[how]
        return self.oic.do_user_info_request(method=method, state=flow.state,
                                             behavior=behavior)

    def raw(self, browser: requests.Session, **params) -> Flow:
        """An authorization request pyoidc would not build (a parameter missing, or one it
        reserves for itself such as ``request``), sent as the suite sends it."""
        state = "st-" + secrets.token_hex(6)
        query = {"response_type": "code", "client_id": self.client.client_id,
                 "scope": "openid", "redirect_uri": self.client.redirect_uri, "state": state,
                 **params}
        query = {k: v for k, v in query.items() if v is not None}
        response = browser.get(self.config["authorization_endpoint"], params=query,
                               allow_redirects=False)
        flow = Flow(state, None, response)
        if flow.redirected:
            flow.params = redirect_params(response)
        return flow

    # -- end session ---------------------------------------------------------------------
    def end_session_url(self, **args) -> str:
        return EndSessionRequest(**args).request(self.config["end_session_endpoint"])
