"""Settings from environment variables, validated once at start.

A missing or malformed value raises :class:`ConfigError` whose message is one line naming the
variable and the fix; ``wsgi.py`` prints it and exits. Feature packages (saml, oidc, provisioning,
context) read their own variables with the same ``env_*`` helpers in their ``init_app``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

ZULIP_ROLES = ("owner", "administrator", "moderator", "member", "guest")


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable and the fix."""


def env_str(env: Mapping[str, str], name: str, default: str | None = None, *, fix: str) -> str:
    value = env.get(name, "").strip()
    if value:
        return value
    if default is not None:
        return default
    raise ConfigError(f"{name} is not set: {fix}")


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0,
            maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number: set it to an integer "
                          f"such as {default}") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ConfigError(f"{name}={value} is out of range: use at least {minimum}{upper}")
    return value


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number: set it to e.g. {default}") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is out of range: use at least {minimum}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean: use true or false")


def env_list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, "").split(",") if item.strip())


def check_http_url(name: str, value: str, *, allow_path: bool = True) -> str:
    """An absolute http(s) URL without query or fragment; trailing slash removed."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name}={value!r} is not an absolute http(s) URL: "
                          f"use e.g. https://sso.example.edu")
    if parts.query or parts.fragment or (not allow_path and parts.path not in ("", "/")):
        carried = "a path, query or fragment" if not allow_path else "a query or fragment"
        raise ConfigError(f"{name}={value!r} must not carry {carried}: "
                          f"give the bare base URL")
    return value.rstrip("/")


# What reaches Zulip server to server with ZULIP_URL: a provisioning target (SCIM token, or
# the REST administrator bot) and the nudge bot (docs/provisioning.md, docs/nudges.md).
ZULIP_CREDENTIALS = ("ZULIP_SCIM_TOKEN", "ZULIP_BOT_EMAIL", "ZULIP_BOT_API_KEY",
                     "ZULIP_NUDGE_BOT_EMAIL", "ZULIP_NUDGE_BOT_API_KEY")


def read_zulip_url(env: Mapping[str, str]) -> str | None:
    """``ZULIP_URL``, read the one way by every feature that uses it (provisioning, nudges, the
    mentor pages' links): Zulip's base URL, without a path (Zulip serves an organization at
    the root of its host). Set, something must reach Zulip with it: a provisioning target, the
    nudge bot, or both; each alone is a whole deployment."""
    url = env.get("ZULIP_URL", "").strip()
    if not url:
        return None
    url = check_http_url("ZULIP_URL", url, allow_path=False)
    if not any(env.get(name, "").strip() for name in ZULIP_CREDENTIALS):
        raise ConfigError("ZULIP_URL is set but nothing reaches Zulip with it: set "
                          "ZULIP_SCIM_TOKEN (or ZULIP_BOT_EMAIL and ZULIP_BOT_API_KEY) to "
                          "provision accounts, and/or ZULIP_NUDGE_BOT_EMAIL and "
                          "ZULIP_NUDGE_BOT_API_KEY to send nudges; or unset ZULIP_URL")
    return url


def check_postgres_url(name: str, value: str) -> str:
    if not re.match(r"^postgres(ql)?(\+psycopg2)?://", value):
        raise ConfigError(f"{name} must be a PostgreSQL URL: use "
                          f"postgresql://USER:PASSWORD@HOST:5432/DBNAME")
    return re.sub(r"^postgres(ql)?(\+psycopg2)?://", "postgresql+psycopg2://", value)


def parse_role_map(raw: str) -> dict[str, str]:
    """``student=member,mentor=moderator,staff=administrator`` → dict, roles checked."""
    mapping = {"student": "member", "mentor": "moderator", "staff": "administrator"}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        kind, sep, role = item.partition("=")
        kind, role = kind.strip(), role.strip()
        if not sep or kind not in mapping:
            raise ConfigError(f"IDP_ROLE_MAP entry {item!r} is malformed: use "
                              f"student=ROLE,mentor=ROLE,staff=ROLE")
        if role not in ZULIP_ROLES:
            raise ConfigError(f"IDP_ROLE_MAP gives {kind} the role {role!r}: use one of "
                              f"{', '.join(ZULIP_ROLES)}")
        mapping[kind] = role
    return mapping


@dataclass(frozen=True)
class Settings:
    """Foundation settings (README, "Configuration")."""

    issuer: str
    database_url: str
    lms_database_url: str
    secret_key: str
    keys_dir: str
    staff_emails: frozenset[str]
    role_map: dict[str, str]
    launch_secret: str | None
    launch_issuer: str
    launch_service_urls: tuple[str, ...]
    session_lifetime: int
    throttle_window: int
    throttle_account_failures: int
    throttle_ip_failures: int
    throttle_max_delay: int
    lms_statement_timeout_ms: int
    lms_connect_timeout: int
    trusted_proxy_count: int
    log_format: str
    log_level: str

    @property
    def https(self) -> bool:
        return self.issuer.startswith("https://")


class ProblemList:
    """Collects every ConfigError of a group of settings, so that start-up reports all of them
    at once (one line each) instead of one per attempt."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def check(self, read, *args, fallback=None, **kwargs):
        """``read(*args, **kwargs)``, or ``fallback`` after recording its ConfigError."""
        try:
            return read(*args, **kwargs)
        except ConfigError as error:
            if str(error) not in self.messages:  # a variable several features read: once
                self.messages.append(str(error))
            return fallback

    def raise_if_any(self) -> None:
        if len(self.messages) == 1:
            raise ConfigError(self.messages[0])
        if self.messages:
            raise ConfigError(f"{len(self.messages)} settings need fixing:\n  "
                              + "\n  ".join(self.messages))


def _check_secret_key(env: Mapping[str, str]) -> str:
    secret = env_str(env, "IDP_SECRET_KEY",
                     fix="set it to a random string of 32+ characters (python3 -c "
                         "'import secrets; print(secrets.token_urlsafe(48))')")
    if len(secret) < 32:
        raise ConfigError("IDP_SECRET_KEY is too short: use a random string of 32+ characters")
    return secret


def _check_launch_secret(env: Mapping[str, str]) -> str | None:
    launch_secret = env.get("IDP_LAUNCH_SECRET", "").strip() or None
    if launch_secret is not None and len(launch_secret) < 32:
        raise ConfigError("IDP_LAUNCH_SECRET is too short: share a random string of 32+ "
                          "characters with the LMS (or unset it to disable launch links)")
    return launch_secret


def _check_log_format(env: Mapping[str, str]) -> str:
    log_format = env_str(env, "IDP_LOG_FORMAT", "json", fix="")
    if log_format not in ("json", "text"):
        raise ConfigError(f"IDP_LOG_FORMAT={log_format!r} is unknown: use json or text")
    return log_format


def _check_log_level(env: Mapping[str, str]) -> str:
    log_level = env_str(env, "IDP_LOG_LEVEL", "INFO", fix="").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"IDP_LOG_LEVEL={log_level!r} is unknown: use DEBUG, INFO, WARNING "
                          f"or ERROR")
    return log_level


def _check_url(env: Mapping[str, str], name: str, fix: str) -> str:
    return check_postgres_url(name, env_str(env, name, fix=fix))


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every foundation variable; raise one ConfigError listing every
    problem (one line each)."""
    env = os.environ if env is None else env
    problems = ProblemList()
    check = problems.check
    issuer = check(lambda: check_http_url("IDP_ISSUER", env_str(
        env, "IDP_ISSUER",
        fix="set it to the bridge's public base URL, e.g. https://sso.example.edu")))
    secret = check(_check_secret_key, env)
    launch_secret = check(_check_launch_secret, env)
    log_format = check(_check_log_format, env)
    log_level = check(_check_log_level, env)
    values = dict(
        database_url=check(_check_url, env, "IDP_DATABASE_URL",
                           "set it to the bridge's own PostgreSQL database URL, "
                           "e.g. postgresql://idp:PASSWORD@localhost/idp"),
        lms_database_url=check(_check_url, env, "LMS_DATABASE_URL",
                               "set it to the LMS database URL of a read-only role, "
                               "e.g. postgresql://idp_reader:PASSWORD@lms-db/lms"),
        keys_dir=env_str(env, "IDP_KEYS_DIR", os.path.join(os.getcwd(), "keys"), fix=""),
        staff_emails=frozenset(e.lower() for e in env_list(env, "IDP_STAFF_EMAILS")),
        role_map=check(parse_role_map, env.get("IDP_ROLE_MAP", "")),
        launch_issuer=env_str(env, "IDP_LAUNCH_ISSUER", "lms", fix=""),
        launch_service_urls=check(lambda: tuple(
            check_http_url("IDP_LAUNCH_SERVICE_URLS", u)
            for u in env_list(env, "IDP_LAUNCH_SERVICE_URLS"))),
        session_lifetime=check(env_int, env, "IDP_SESSION_LIFETIME", 8 * 3600, minimum=60),
        throttle_window=check(env_int, env, "IDP_THROTTLE_WINDOW", 900, minimum=60),
        throttle_account_failures=check(env_int, env, "IDP_THROTTLE_ACCOUNT_FAILURES", 5,
                                        minimum=1),
        throttle_ip_failures=check(env_int, env, "IDP_THROTTLE_IP_FAILURES", 30, minimum=1),
        throttle_max_delay=check(env_int, env, "IDP_THROTTLE_MAX_DELAY", 300, minimum=1),
        lms_statement_timeout_ms=check(env_int, env, "LMS_STATEMENT_TIMEOUT_MS", 5000,
                                       minimum=100),
        lms_connect_timeout=check(env_int, env, "LMS_CONNECT_TIMEOUT", 3, minimum=1),
        trusted_proxy_count=check(env_int, env, "IDP_TRUSTED_PROXY_COUNT", 0, minimum=0,
                                  maximum=5),
    )
    problems.raise_if_any()
    return Settings(issuer=issuer, secret_key=secret, launch_secret=launch_secret,
                    log_format=log_format, log_level=log_level, **values)
