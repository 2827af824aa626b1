"""The bridge's peers over https, at another site than the bridge (``https://127.0.0.1:PORT``
while the bridge is ``https://localhost:PORT``): an OIDC relying party (Authlib's client, code
flow with PKCE, state and nonce, RP-initiated logout) and a SAML service provider configured as
Zulip configures python3-saml (tests/saml/zulip_sp.py). Each page says what the peer concluded,
so a browser test reads the outcome from the page.
"""

from __future__ import annotations

import base64
import secrets
import threading
from dataclasses import dataclass, field
from html import escape
from urllib.parse import urlencode

import requests
from authlib.integrations.requests_client import OAuth2Session
from flask import Flask, redirect, request
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.serving import make_server

from tests.saml.zulip_sp import ZulipSP


@dataclass
class RelyingParty:
    issuer: str
    base_url: str
    ca_file: str
    clients: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (id, secret)
    pending: dict[str, dict] = field(default_factory=dict)             # state -> request
    signed_in: dict[str, dict] = field(default_factory=dict)           # "last" -> claims

    @property
    def redirect_uri(self) -> str:
        return self.base_url + "/oidc/callback"

    @property
    def post_logout_uri(self) -> str:
        return self.base_url + "/oidc/logged-out"

    def start(self, client: str, prompt: str | None) -> str:
        client_id, secret = self.clients[client]
        session = OAuth2Session(client_id, secret, scope="openid profile email",
                                redirect_uri=self.redirect_uri, code_challenge_method="S256")
        verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(16)
        extra = {"prompt": prompt} if prompt else {}
        url, state = session.create_authorization_url(
            self.issuer + "/oauth/authorize", code_verifier=verifier, nonce=nonce, **extra)
        self.pending[state] = {"client": client, "verifier": verifier, "nonce": nonce}
        return url

    def callback(self) -> str:
        state = request.args.get("state", "")
        started = self.pending.pop(state, None)
        if started is None:
            return "RP: unknown state"
        if "error" in request.args:
            return f"RP: error {escape(request.args['error'])}"
        client_id, secret = self.clients[started["client"]]
        token = requests.post(self.issuer + "/oauth/token", verify=self.ca_file, timeout=10,
                              auth=(client_id, secret), data={
                                  "grant_type": "authorization_code",
                                  "code": request.args["code"],
                                  "redirect_uri": self.redirect_uri,
                                  "code_verifier": started["verifier"]})
        if token.status_code != 200:
            return f"RP: token endpoint answered {token.status_code}"
        id_token = token.json()["id_token"]
        config = requests.get(self.issuer + "/.well-known/openid-configuration",
                              verify=self.ca_file, timeout=10).json()
        keys = KeySet.import_key_set(requests.get(config["jwks_uri"], verify=self.ca_file,
                                                  timeout=10).json())
        claims = jwt.decode(id_token, keys, algorithms=["RS256"]).claims
        if claims["iss"] != self.issuer or claims["aud"] != client_id or \
                claims.get("nonce") != started["nonce"]:
            return "RP: id_token refused"
        self.signed_in["last"] = {**claims, "id_token": id_token}
        return f"RP: signed in as {escape(claims['email'])}"

    def logout(self) -> str:
        claims = self.signed_in["last"]
        return self.issuer + "/oauth/logout?" + urlencode({
            "id_token_hint": claims["id_token"], "post_logout_redirect_uri":
                self.post_logout_uri, "state": "bye"})


@dataclass
class ServiceProvider:
    sp: ZulipSP
    last: dict = field(default_factory=dict)

    def acs(self) -> str:
        auth = self.sp.process_response(request.form["SAMLResponse"],
                                        request.form.get("RelayState"), None)
        if not auth.is_authenticated():
            return "SP: refused " + escape(", ".join(auth.get_errors()) + " " +
                                           (auth.get_last_error_reason() or ""))
        self.last = {"name_id": auth.get_nameid(), "session_index": auth.get_session_index()}
        return f"SP: signed in as {escape(auth.get_nameid())}"

    def slo(self):
        url = request.url
        if "SAMLRequest" in request.args:           # IdP-initiated: answer the IdP
            auth, answer = self.sp.process_slo(url)
            if auth.get_errors():
                return "SP: logout request refused " + escape(", ".join(auth.get_errors()))
            self.last = {}
            return redirect(answer)
        auth, _ = self.sp.process_slo(url, request_id=self.sp.last_request_id)
        if auth.get_errors():
            return "SP: logout response refused " + escape(", ".join(auth.get_errors()))
        return "SP: signed out at the IdP too"


def peers_app(rp: RelyingParty, sp: ServiceProvider) -> Flask:
    app = Flask("deployed-peers")

    @app.get("/oidc/start/<client>")
    def oidc_start(client: str):
        return redirect(rp.start(client, request.args.get("prompt")))

    app.add_url_rule("/oidc/callback", "oidc_callback", rp.callback)
    app.add_url_rule("/oidc/logout", "oidc_logout", lambda: redirect(rp.logout()))
    app.add_url_rule("/oidc/logged-out", "oidc_logged_out",
                     lambda: f"RP: signed out (state {escape(request.args.get('state', ''))})")

    @app.get("/saml/login")
    def saml_login():
        return redirect(sp.sp.login_url("/"))

    @app.get("/saml/login-post")
    def saml_login_post():
        """SP-initiated sign-on over the HTTP-POST binding (SAML bindings §3.5): a page of
        this site that POSTs the AuthnRequest to the bridge, a cross-site top-level POST."""
        from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
        from onelogin.saml2.settings import OneLogin_Saml2_Settings

        settings = OneLogin_Saml2_Settings(sp.sp.config(), sp_validation_only=True)
        authn = OneLogin_Saml2_Authn_Request(settings)
        message = base64.b64encode(authn.get_xml().encode()).decode()
        return (f'<form id="f" method="post" action="{escape(rp.issuer)}/saml/sso">'
                f'<input type="hidden" name="SAMLRequest" value="{message}">'
                f'<input type="hidden" name="RelayState" value="post-binding">'
                f'<button>Sign in</button></form>'
                f'<script>document.getElementById("f").submit()</script>')

    @app.get("/saml/logout")
    def saml_logout():
        return redirect(sp.sp.logout_url(sp.last["name_id"], sp.last["session_index"]))

    app.add_url_rule("/complete/saml/", "acs", sp.acs, methods=["POST"])
    app.add_url_rule("/complete/saml/", "slo", sp.slo, methods=["GET"])
    return app


class TLSServer:
    """A threaded werkzeug server with the test certificate, on a loopback port."""

    def __init__(self, app, port: int, cert: str, key: str) -> None:
        self.server = make_server("127.0.0.1", port, app, threaded=True,
                                  ssl_context=(cert, key))
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
