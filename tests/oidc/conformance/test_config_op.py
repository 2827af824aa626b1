"""OpenID certification plan "Config OP" (oidcc-config-certification-test-plan): its one
module, oidcc-discovery-endpoint-verification, against the live bridge; pyoidc reads and
verifies the discovery document (issuer equal to the URL it was fetched from, required
members), the rest are the suite's checks on the metadata and the JWKS. Over http and over
https (the ``op`` fixture, conftest.py)."""

from __future__ import annotations

import pytest

from tests.oidc.conformance.rp import RelyingParty

REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri",
            "response_types_supported", "subject_types_supported",
            "id_token_signing_alg_values_supported")


@pytest.mark.parametrize("module", ["oidcc-discovery-endpoint-verification"])
def test_config_op_plan(module, op, conformance_client):
    rp = RelyingParty(op.issuer, conformance_client, op.ca_file)
    config = rp.config.to_dict()
    for member in REQUIRED:
        assert config.get(member), member
    assert config["issuer"] == op.issuer
    assert "code" in config["response_types_supported"]
    assert "RS256" in config["id_token_signing_alg_values_supported"]
    assert "none" not in config["id_token_signing_alg_values_supported"]
    assert "openid" in config["scopes_supported"]
    assert {"sub", "iss", "aud", "exp", "iat"} <= set(config["claims_supported"])
    assert config["claims_parameter_supported"] is True
    assert config["userinfo_endpoint"] and config["end_session_endpoint"]
    assert set(config["grant_types_supported"]) >= {"authorization_code"}
    for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert config[key].startswith(config["issuer"] + "/"), key   # same origin and scheme
    jwks = rp.http.get(config["jwks_uri"]).json()
    assert jwks["keys"] and all(k["kty"] == "RSA" and k.get("kid") and "d" not in k
                                for k in jwks["keys"])
    assert rp.oic.keyjar.get_signing_key("RSA", owner=op.issuer)
