"""SAML settings: defaults and one-line errors naming the variable."""

from __future__ import annotations

import pytest

from idp.config import ConfigError


def test_defaults(app):
    saml = app.extensions["saml"]
    issuer = app.config["IDP"].issuer
    assert saml.entity_id == issuer + "/saml/metadata"
    assert (saml.sso_url, saml.slo_url) == (issuer + "/saml/sso", issuer + "/saml/slo")
    assert saml.zulip_subdomain == "" and saml.clock_skew == 180


def test_overrides(make_app):
    app = make_app(IDP_SAML_ENTITY_ID="urn:lms:bridge", IDP_SAML_ZULIP_SUBDOMAIN="physics",
                   IDP_SAML_CLOCK_SKEW="60")
    saml = app.extensions["saml"]
    assert (saml.entity_id, saml.zulip_subdomain, saml.clock_skew) == \
        ("urn:lms:bridge", "physics", 60)


@pytest.mark.parametrize("name, value", [
    ("IDP_SAML_ENTITY_ID", "has spaces in it"),
    ("IDP_SAML_ZULIP_SUBDOMAIN", "Not A Realm"),
    ("IDP_SAML_CLOCK_SKEW", "soon"),
    ("IDP_SAML_CLOCK_SKEW", "3600"),
])
def test_bad_values_name_the_variable(make_app, name, value):
    with pytest.raises(ConfigError) as error:
        make_app(**{name: value})
    assert name in str(error.value) and "\n" not in str(error.value)
