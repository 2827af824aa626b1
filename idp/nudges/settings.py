"""Nudge settings (docs/nudges.md), read from the environment at start.

The sender is a plain Zulip bot of its own (``ZULIP_NUDGE_BOT_EMAIL`` / ``ZULIP_NUDGE_BOT_API_KEY``,
Settings → Bots → "Generic bot"): it can send direct messages and nothing else, unlike the
administrator bot provisioning may use. Without it, nudges are planned and shown but never sent.
It needs no provisioning target: ``ZULIP_URL`` and this bot alone are a nudges-only deployment.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import ConfigError, env_float, env_int, read_zulip_url

PERIODS = ("day", "week")


@dataclass(frozen=True)
class NudgeSettings:
    zulip_url: str | None
    bot_email: str | None
    bot_api_key: str | None
    period: str                 # student nudges: one per rule, person and period
    digest_period: str          # mentor digests: one per mentor and period
    cap_per_week: int           # student nudges per person in any 7 days
    quiet_start: dt.time | None
    quiet_end: dt.time | None
    guard_percent: float        # a run nudging more than this share of students is held
    guard_minimum: int          # ...and more than this many
    rate_per_minute: int
    max_attempts: int
    retry_base: float
    http_timeout: float
    templates_dir: str | None
    interval: int

    @property
    def sends(self) -> bool:
        return bool(self.zulip_url and self.bot_email and self.bot_api_key)

    def in_quiet_hours(self, local: dt.time) -> bool:
        if self.quiet_start is None or self.quiet_end is None:
            return False
        if self.quiet_start <= self.quiet_end:
            return self.quiet_start <= local < self.quiet_end
        return local >= self.quiet_start or local < self.quiet_end  # over midnight


def _period(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip().lower() or default
    if value not in PERIODS:
        raise ConfigError(f"{name}={value!r} is not a period: use day or week")
    return value


def _quiet(env: Mapping[str, str]) -> tuple[dt.time | None, dt.time | None]:
    raw = env.get("IDP_NUDGE_QUIET_HOURS", "21:00-08:00").strip()
    if raw.lower() in ("", "none", "off"):
        return None, None
    try:
        start, end = (dt.time.fromisoformat(p.strip()) for p in raw.split("-"))
    except ValueError:
        raise ConfigError(f"IDP_NUDGE_QUIET_HOURS={raw!r} is not a range like 21:00-08:00 "
                          f"(school time zone), or off") from None
    if start == end:
        raise ConfigError("IDP_NUDGE_QUIET_HOURS: start and end are equal; use off instead")
    return start, end


def load_nudge_settings(env: Mapping[str, str]) -> NudgeSettings:
    """Read ``ZULIP_NUDGE_*`` and ``IDP_NUDGE_*``; raise ConfigError naming the variable."""
    email = env.get("ZULIP_NUDGE_BOT_EMAIL", "").strip() or None
    key = env.get("ZULIP_NUDGE_BOT_API_KEY", "").strip() or None
    if bool(email) != bool(key):
        raise ConfigError("ZULIP_NUDGE_BOT_EMAIL and ZULIP_NUDGE_BOT_API_KEY go together: set "
                          "both (a generic bot's email and API key) or neither")
    url = read_zulip_url(env)
    if email and not url:
        raise ConfigError("ZULIP_NUDGE_BOT_EMAIL is set but ZULIP_URL is not: set ZULIP_URL "
                          "to the Zulip server's address")
    templates = env.get("IDP_NUDGE_TEMPLATES_DIR", "").strip() or None
    if templates and not os.path.isdir(templates):
        raise ConfigError(f"IDP_NUDGE_TEMPLATES_DIR={templates!r} is not a directory")
    start, end = _quiet(env)
    return NudgeSettings(
        zulip_url=url,
        bot_email=email, bot_api_key=key,
        period=_period(env, "IDP_NUDGE_PERIOD", "week"),
        digest_period=_period(env, "IDP_NUDGE_DIGEST_PERIOD", "week"),
        cap_per_week=env_int(env, "IDP_NUDGE_CAP_PER_WEEK", 2, minimum=0, maximum=50),
        quiet_start=start, quiet_end=end,
        guard_percent=env_float(env, "IDP_NUDGE_GUARD_PERCENT", 20.0, minimum=0.0),
        guard_minimum=env_int(env, "IDP_NUDGE_GUARD_MINIMUM", 20, minimum=0),
        rate_per_minute=env_int(env, "IDP_NUDGE_RATE_PER_MINUTE", 120, minimum=1,
                                maximum=10_000),
        max_attempts=env_int(env, "IDP_NUDGE_MAX_ATTEMPTS", 8, minimum=1, maximum=100),
        retry_base=env_float(env, "IDP_NUDGE_RETRY_BASE", 30.0, minimum=0.0),
        http_timeout=env_float(env, "IDP_NUDGE_HTTP_TIMEOUT", 10.0, minimum=0.1),
        templates_dir=templates,
        interval=env_int(env, "IDP_NUDGE_INTERVAL", 60, minimum=1, maximum=86400),
    )
