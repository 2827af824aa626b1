"""Over https the relying party really verifies the bridge's certificate: with a CA the
bridge's chain does not lead to, discovery and the JWKS fetch both fail. (pyoidc's own key jar
skips verification for any ``localhost`` URL - asserted below - which rp.py overrides.)"""

from __future__ import annotations

import pytest
import requests
from oic.oic import Client as PyoidcClient
from oic.utils.keyio import KeyJar, UpdateFailed
from oic.utils.settings import OicClientSettings

from tests.deployed.topology import make_pki
from tests.oidc.conformance.rp import RelyingParty, verifying_key_jar


def test_the_rp_refuses_a_certificate_its_ca_did_not_issue(deployment, tmp_path,
                                                          deployed_conformance_client):
    foreign = str(make_pki(tmp_path).ca_pem)
    with pytest.raises(requests.exceptions.SSLError):
        PyoidcClient(settings=OicClientSettings(verify_ssl=foreign)).provider_config(
            deployment.issuer)

    trusted = RelyingParty(deployment.issuer, deployed_conformance_client,
                           str(deployment.pki.ca_pem))
    jwks_uri = trusted.config["jwks_uri"]
    assert trusted.oic.keyjar.get_signing_key("RSA", owner=deployment.issuer)
    with pytest.raises(UpdateFailed, match="CERTIFICATE_VERIFY_FAILED"):
        verifying_key_jar(foreign).add(deployment.issuer, jwks_uri).do_remote()
    # Why rp.py builds its own key jar: pyoidc's would fetch this JWKS unverified.
    assert KeyJar(verify_ssl=foreign).add(deployment.issuer, jwks_uri).verify_ssl is False
