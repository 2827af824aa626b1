"""Configuration is validated at start with one-line, actionable errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from idp.config import ConfigError, load_settings

GOOD = {"IDP_ISSUER": "https://sso.example.edu", "IDP_SECRET_KEY": "k" * 40,
        "IDP_DATABASE_URL": "postgresql://idp@db/idp", "LMS_DATABASE_URL": "postgres://r@lms/lms"}


def test_good_settings_load():
    settings = load_settings(GOOD)
    assert settings.https and settings.issuer == "https://sso.example.edu"
    assert settings.lms_database_url.startswith("postgresql+psycopg2://")
    assert settings.role_map == {"student": "member", "mentor": "moderator",
                                 "staff": "administrator"}


@pytest.mark.parametrize("changes,variable", [
    ({"IDP_ISSUER": ""}, "IDP_ISSUER"),
    ({"IDP_ISSUER": "sso.example.edu"}, "IDP_ISSUER"),
    ({"IDP_ISSUER": "https://sso.example.edu/?x=1"}, "IDP_ISSUER"),
    ({"IDP_SECRET_KEY": "short"}, "IDP_SECRET_KEY"),
    ({"IDP_DATABASE_URL": "mysql://x/y"}, "IDP_DATABASE_URL"),
    ({"LMS_DATABASE_URL": ""}, "LMS_DATABASE_URL"),
    ({"IDP_ROLE_MAP": "student=king"}, "IDP_ROLE_MAP"),
    ({"IDP_ROLE_MAP": "teacher=member"}, "IDP_ROLE_MAP"),
    ({"IDP_SESSION_LIFETIME": "soon"}, "IDP_SESSION_LIFETIME"),
    ({"IDP_THROTTLE_WINDOW": "5"}, "IDP_THROTTLE_WINDOW"),
    ({"IDP_LAUNCH_SECRET": "tiny"}, "IDP_LAUNCH_SECRET"),
    ({"IDP_LAUNCH_SERVICE_URLS": "zulip.example.edu"}, "IDP_LAUNCH_SERVICE_URLS"),
    ({"IDP_LOG_FORMAT": "xml"}, "IDP_LOG_FORMAT"),
])
def test_bad_settings_name_the_variable(changes, variable):
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, **changes})
    message = str(caught.value)
    assert message.startswith(variable) and "\n" not in message


def test_role_map_is_configurable():
    settings = load_settings({**GOOD, "IDP_ROLE_MAP": "mentor=member, student=guest"})
    assert settings.role_map["mentor"] == "member" and settings.role_map["student"] == "guest"


def test_wsgi_start_stops_with_one_line(tmp_path):
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=root,
                            env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    # Every missing setting at once, one line each.
    assert lines[0] == "configuration error: 4 settings need fixing:"
    assert [line.split()[0] for line in lines[1:]] == [
        "IDP_ISSUER", "IDP_SECRET_KEY", "IDP_DATABASE_URL", "LMS_DATABASE_URL"]
    assert lines[1] == ("  IDP_ISSUER is not set: set it to the bridge's public base URL, "
                        "e.g. https://sso.example.edu")


def test_several_malformed_settings_are_reported_together():
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, "IDP_SECRET_KEY": "short", "IDP_THROTTLE_WINDOW": "soon",
                       "IDP_ROLE_MAP": "student=king", "IDP_LOG_LEVEL": "loud"})
    lines = str(caught.value).splitlines()
    assert lines[0] == "4 settings need fixing:"
    assert sorted(line.split()[0].split("=")[0] for line in lines[1:]) == [
        "IDP_LOG_LEVEL", "IDP_ROLE_MAP", "IDP_SECRET_KEY", "IDP_THROTTLE_WINDOW"]


def test_bad_settings_of_several_features_are_reported_together(app, make_app):
    with pytest.raises(ConfigError) as caught:
        make_app(IDP_SAML_CLOCK_SKEW="soon", IDP_OIDC_CODE_LIFETIME="soon")
    lines = str(caught.value).splitlines()
    assert lines[0] == "2 settings need fixing:"
    assert [line.split("=")[0].strip() for line in lines[1:]] == [
        "IDP_SAML_CLOCK_SKEW", "IDP_OIDC_CODE_LIFETIME"]
