"""Configuration is validated at start, with one-line errors naming the variable."""

from __future__ import annotations

import pytest

from idp.config import ConfigError
from idp.provisioning.settings import load_provision_settings

TOKEN = "t" * 24


@pytest.mark.parametrize("env, variable", [
    ({"ZULIP_SCIM_TOKEN": TOKEN}, "ZULIP_URL"),
    ({"ZULIP_URL": "https://chat.example.edu"}, "ZULIP_URL"),  # nothing uses it
    ({"ZULIP_URL": "chat.example.edu", "ZULIP_SCIM_TOKEN": TOKEN}, "ZULIP_URL"),
    ({"ZULIP_URL": "https://chat.example.edu/x", "ZULIP_SCIM_TOKEN": TOKEN}, "ZULIP_URL"),
    ({"ZULIP_URL": "https://c.example.edu", "ZULIP_SCIM_TOKEN": "short"}, "ZULIP_SCIM_TOKEN"),
    ({"ZULIP_URL": "https://c.example.edu", "ZULIP_BOT_EMAIL": "b@x"}, "ZULIP_BOT_API_KEY"),
    ({"ZULIP_URL": "https://c.example.edu", "ZULIP_SCIM_TOKEN": TOKEN,
      "ZULIP_BOT_EMAIL": "b@x", "ZULIP_BOT_API_KEY": "k"}, "ZULIP_SCIM_TOKEN"),
    ({"PROVISION_GUARD_PERCENT": "150"}, "PROVISION_GUARD_PERCENT"),
    ({"PROVISION_GUARD_MAX": "-1"}, "PROVISION_GUARD_MAX"),
    ({"PROVISION_INTERVAL": "soon"}, "PROVISION_INTERVAL"),
    ({"PROVISION_CREATE": "maybe"}, "PROVISION_CREATE"),
    ({"PROVISION_NOTIFY_CHANNEL": "x; DROP"}, "PROVISION_NOTIFY_CHANNEL"),
])
def test_bad_configuration_names_the_variable(env, variable):
    with pytest.raises(ConfigError) as error:
        load_provision_settings(env)
    message = str(error.value)
    assert message.startswith(variable) and "\n" not in message


def test_targets_chosen_by_configuration():
    assert load_provision_settings({}).target == "none"
    scim = load_provision_settings({"ZULIP_URL": "https://chat.example.edu/",
                                    "ZULIP_SCIM_TOKEN": TOKEN})
    assert scim.target == "scim" and scim.scim_url == "https://chat.example.edu/scim/v2"
    assert TOKEN not in repr(scim)
    rest = load_provision_settings({"ZULIP_URL": "https://chat.example.edu",
                                    "ZULIP_BOT_EMAIL": "bot@chat.example.edu",
                                    "ZULIP_BOT_API_KEY": "key"})
    assert rest.target == "rest" and "key" not in repr(rest)


def test_defaults():
    settings = load_provision_settings({})
    assert (settings.interval, settings.create, settings.guard_percent, settings.guard_max,
            settings.notify) == (10.0, False, 5.0, 50, False)


def test_app_refuses_to_start_with_bad_provisioning_config(make_app):
    with pytest.raises(ConfigError, match="^ZULIP_URL is set but nothing reaches Zulip"):
        make_app(ZULIP_URL="https://chat.example.edu")
