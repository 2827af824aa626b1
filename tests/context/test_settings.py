"""Context settings from the environment: defaults, the Zulip link base, clear errors."""

from __future__ import annotations

import pytest

from idp.config import ConfigError
from idp.context.settings import load_context_settings


def test_defaults_follow_the_lms_data_lifetimes():
    settings = load_context_settings({})
    assert (settings.profile_ttl, settings.metrics_ttl, settings.batch_ttl) == (300, 600, 1800)
    assert settings.zulip_url is None


def test_zulip_url_or_the_first_launch_service():
    assert load_context_settings({"ZULIP_URL": "https://chat.example.edu/",
                                  "ZULIP_SCIM_TOKEN": "t" * 24}).zulip_url == \
        "https://chat.example.edu"
    assert load_context_settings({"IDP_LAUNCH_SERVICE_URLS": "https://z.example.edu, "
                                                             "https://other.example.edu"}
                                 ).zulip_url == "https://z.example.edu"


@pytest.mark.parametrize("name,value", [
    ("IDP_CONTEXT_PROFILE_TTL", "five"), ("IDP_CONTEXT_METRICS_TTL", "0"),
    ("IDP_CONTEXT_BATCH_TTL", "999999"), ("IDP_CONTEXT_CACHE_SIZE", "3"),
    ("IDP_CONTEXT_STALE_MAX_AGE", "99999999"), ("ZULIP_URL", "chat.example.edu"),
    ("ZULIP_URL", "https://chat.example.edu/#x"),
])
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError) as error:
        load_context_settings({name: value})
    assert str(error.value).startswith(name)
