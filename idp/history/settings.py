"""Learning-history settings (docs/history.md), read from the environment at start.

``IDP_SCHOOL_TIMEZONE`` is the school's IANA time zone: a day's snapshot is taken after
midnight there, and nudges' quiet hours are counted there too."""

from __future__ import annotations

import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import ConfigError, env_int


@dataclass(frozen=True)
class HistorySettings:
    timezone: zoneinfo.ZoneInfo
    retention_days: int
    interval: int  # seconds between the worker's checks


def school_timezone(env: Mapping[str, str]) -> zoneinfo.ZoneInfo:
    name = env.get("IDP_SCHOOL_TIMEZONE", "").strip() or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"IDP_SCHOOL_TIMEZONE={name!r} is not a known time zone: use an IANA "
                          f"name such as Asia/Kolkata or UTC") from None


def load_history_settings(env: Mapping[str, str]) -> HistorySettings:
    """Read ``IDP_SCHOOL_TIMEZONE`` and ``IDP_HISTORY_*``; raise ConfigError naming the variable."""
    return HistorySettings(
        timezone=school_timezone(env),
        retention_days=env_int(env, "IDP_HISTORY_RETENTION_DAYS", 400, minimum=30,
                               maximum=3660),
        interval=env_int(env, "IDP_HISTORY_INTERVAL", 300, minimum=10, maximum=86400),
    )
