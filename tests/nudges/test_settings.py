"""Nudge settings refuse what they do not understand, with one line naming the variable."""

from __future__ import annotations

import datetime as dt

import pytest

from idp.config import ConfigError
from idp.nudges.settings import load_nudge_settings

BOT = {"ZULIP_URL": "https://chat.example.edu", "ZULIP_NUDGE_BOT_EMAIL": "b@x.edu",
       "ZULIP_NUDGE_BOT_API_KEY": "k"}


@pytest.mark.parametrize("env,name", [
    ({"ZULIP_NUDGE_BOT_EMAIL": "b@x.edu"}, "ZULIP_NUDGE_BOT_EMAIL"),
    ({"ZULIP_NUDGE_BOT_EMAIL": "b@x.edu", "ZULIP_NUDGE_BOT_API_KEY": "k"},
     "ZULIP_NUDGE_BOT_EMAIL"),
    ({"IDP_NUDGE_PERIOD": "month"}, "IDP_NUDGE_PERIOD"),
    ({"IDP_NUDGE_DIGEST_PERIOD": "hourly"}, "IDP_NUDGE_DIGEST_PERIOD"),
    ({"IDP_NUDGE_QUIET_HOURS": "late"}, "IDP_NUDGE_QUIET_HOURS"),
    ({"IDP_NUDGE_QUIET_HOURS": "25:00-08:00"}, "IDP_NUDGE_QUIET_HOURS"),
    ({"IDP_NUDGE_QUIET_HOURS": "08:00-08:00"}, "IDP_NUDGE_QUIET_HOURS"),
    ({"IDP_NUDGE_CAP_PER_WEEK": "-1"}, "IDP_NUDGE_CAP_PER_WEEK"),
    ({"IDP_NUDGE_RATE_PER_MINUTE": "0"}, "IDP_NUDGE_RATE_PER_MINUTE"),
    ({"IDP_NUDGE_TEMPLATES_DIR": "/nonexistent/templates"}, "IDP_NUDGE_TEMPLATES_DIR"),
    ({**BOT, "ZULIP_URL": "javascript:alert(1)"}, "ZULIP_URL"),
])
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(ConfigError) as error:
        load_nudge_settings(env)
    assert str(error.value).startswith(name)


def test_quiet_hours_over_midnight_and_defaults():
    settings = load_nudge_settings(BOT)
    assert settings.sends and settings.period == "week" and settings.cap_per_week == 2
    assert settings.in_quiet_hours(dt.time(23, 0)) and settings.in_quiet_hours(dt.time(7, 59))
    assert not settings.in_quiet_hours(dt.time(8, 0)) and not settings.in_quiet_hours(
        dt.time(20, 59))
    day = load_nudge_settings({"IDP_NUDGE_QUIET_HOURS": "12:00-13:00"})
    assert day.in_quiet_hours(dt.time(12, 30)) and not day.in_quiet_hours(dt.time(13, 0))
    assert not load_nudge_settings({"IDP_NUDGE_QUIET_HOURS": "off"}).in_quiet_hours(
        dt.time(3, 0))
    assert not load_nudge_settings({}).sends
