"""Provisioning settings from environment variables, validated at start.

The target is chosen by configuration: ``ZULIP_URL`` plus ``ZULIP_SCIM_TOKEN`` (SCIM 2.0,
RFC 7644) or ``ZULIP_URL`` plus ``ZULIP_BOT_EMAIL`` and ``ZULIP_BOT_API_KEY`` (Zulip's REST API).
Without a target (no ``ZULIP_URL``, or a nudges-only deployment: ``ZULIP_URL`` with the nudge
bot only) the worker runs plan-only, and every surface says why (:attr:`plan_only_reason`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import (
    ConfigError,
    check_http_url,
    env_bool,
    env_float,
    env_int,
    env_str,
    read_zulip_url,
)


@dataclass(frozen=True)
class ProvisionSettings:
    """Everything the provisioning package reads from the environment (docs/provisioning.md)."""

    target: str  # "scim", "rest" or "none" (plan-only)
    zulip_url: str | None
    scim_url: str | None
    scim_token: str | None
    bot_email: str | None
    bot_api_key: str | None
    interval: float
    create: bool
    guard_percent: float
    guard_max: int
    notify: bool
    notify_channel: str
    http_timeout: float
    retry_base: float
    retry_max: float
    max_attempts: int
    batch_size: int
    sync_role: bool
    sync_groups: bool
    adopt_interval: float
    lock_key: int
    breaker_failures: int = 3
    breaker_cooldown: float = 5.0
    capability_interval: float = 300.0

    @property
    def plan_only(self) -> bool:
        return self.target == "none"

    @property
    def plan_only_reason(self) -> str | None:
        """Why nothing is sent to Zulip, in the words every surface uses; None with a target."""
        if not self.plan_only:
            return None
        if self.zulip_url is None:
            return "no Zulip configured (ZULIP_URL unset)"
        return ("no provisioning target (ZULIP_SCIM_TOKEN, or ZULIP_BOT_EMAIL and "
                "ZULIP_BOT_API_KEY, unset)")

    def __repr__(self) -> str:  # never show the token or API key
        return f"ProvisionSettings(target={self.target!r}, zulip_url={self.zulip_url!r})"


def load_provision_settings(env: Mapping[str, str]) -> ProvisionSettings:
    """Read and check the provisioning variables; raise ConfigError naming the variable.

    ``ZULIP_URL`` without a target is a nudges-only deployment: provisioning plans only."""
    url = read_zulip_url(env)
    token = env.get("ZULIP_SCIM_TOKEN", "").strip() or None
    bot_email = env.get("ZULIP_BOT_EMAIL", "").strip() or None
    bot_key = env.get("ZULIP_BOT_API_KEY", "").strip() or None
    if url is None and (token or bot_email or bot_key):
        raise ConfigError("ZULIP_URL is not set: set it to Zulip's base URL, e.g. "
                          "https://chat.example.edu (or unset the ZULIP_SCIM_TOKEN/ZULIP_BOT_* "
                          "variables)")
    if token and (bot_email or bot_key):
        raise ConfigError("ZULIP_SCIM_TOKEN and ZULIP_BOT_EMAIL/ZULIP_BOT_API_KEY are both "
                          "set: keep one target (SCIM or REST)")
    if not token and bool(bot_email) != bool(bot_key):
        missing = "ZULIP_BOT_API_KEY" if bot_email else "ZULIP_BOT_EMAIL"
        raise ConfigError(f"{missing} is not set: the REST target needs both the bot's "
                          f"email and its API key")
    if token is not None and len(token) < 16:
        raise ConfigError("ZULIP_SCIM_TOKEN is too short: copy the bearer_token of "
                          "SCIM_CONFIG in Zulip's settings (16+ characters)")
    target = "scim" if token else "rest" if bot_email else "none"
    scim_url = None
    if target == "scim":
        scim_url = check_http_url("ZULIP_SCIM_URL", env_str(env, "ZULIP_SCIM_URL",
                                                            f"{url}/scim/v2", fix=""))
    guard_percent = env_float(env, "PROVISION_GUARD_PERCENT", 5.0, minimum=0.0)
    if guard_percent > 100:
        raise ConfigError(f"PROVISION_GUARD_PERCENT={guard_percent} is out of range: use a "
                          f"percentage between 0 and 100")
    channel = env_str(env, "PROVISION_NOTIFY_CHANNEL", "lms_people_changed", fix="")
    if not channel.replace("_", "").isalnum() or len(channel) > 63:
        raise ConfigError(f"PROVISION_NOTIFY_CHANNEL={channel!r} is not a plain identifier: "
                          f"use letters, digits and underscores, e.g. lms_people_changed")
    return ProvisionSettings(
        target=target, zulip_url=url, scim_url=scim_url, scim_token=token,
        bot_email=bot_email, bot_api_key=bot_key,
        interval=env_float(env, "PROVISION_INTERVAL", 10.0, minimum=0.5),
        create=env_bool(env, "PROVISION_CREATE", False),
        guard_percent=guard_percent,
        guard_max=env_int(env, "PROVISION_GUARD_MAX", 50, minimum=0),
        notify=env_bool(env, "PROVISION_NOTIFY", False),
        notify_channel=channel,
        http_timeout=env_float(env, "PROVISION_HTTP_TIMEOUT", 10.0, minimum=0.1),
        retry_base=env_float(env, "PROVISION_RETRY_BASE", 1.0, minimum=0.01),
        retry_max=env_float(env, "PROVISION_RETRY_MAX", 60.0, minimum=0.01),
        max_attempts=env_int(env, "PROVISION_MAX_ATTEMPTS", 1000, minimum=1),
        batch_size=env_int(env, "PROVISION_BATCH", 100, minimum=1, maximum=10_000),
        sync_role=env_bool(env, "PROVISION_SYNC_ROLE", True),
        sync_groups=env_bool(env, "PROVISION_SYNC_GROUPS", True),
        adopt_interval=env_float(env, "PROVISION_ADOPT_INTERVAL", 300.0, minimum=1.0),
        lock_key=env_int(env, "PROVISION_LOCK_KEY", 0x1D9_5C1A, minimum=1, maximum=2**62),
        breaker_failures=env_int(env, "PROVISION_BREAKER_FAILURES", 3, minimum=1,
                                 maximum=1000),
        breaker_cooldown=env_float(env, "PROVISION_BREAKER_COOLDOWN", 5.0, minimum=0.1),
        capability_interval=env_float(env, "PROVISION_CAPABILITY_INTERVAL", 300.0,
                                      minimum=1.0),
    )
