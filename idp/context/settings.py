"""Settings of the context API and mentor pages, read from the environment at start.

Cache lifetimes follow how often the LMS's data changes (profile 5 min, metrics 10 min, batch
information 30 min). The circuit breaker is the LMS adapter's (``IDP_LMS_BREAKER_*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..config import ConfigError, check_http_url, env_int, env_list, read_zulip_url


@dataclass(frozen=True)
class ContextSettings:
    profile_ttl: int
    metrics_ttl: int
    batch_ttl: int
    cache_size: int
    stale_max_age: int
    zulip_url: str | None
    redis_url: str | None = None  # the shared cache level (idp.context.shared); None: off


def load_context_settings(env: Mapping[str, str]) -> ContextSettings:
    """Read ``IDP_CONTEXT_*`` and ``ZULIP_URL``; raise ConfigError naming the variable."""
    zulip = read_zulip_url(env)
    if not zulip:
        # The Zulip server is also the first service LMS launch links may continue to.
        services = env_list(env, "IDP_LAUNCH_SERVICE_URLS")
        zulip = check_http_url("IDP_LAUNCH_SERVICE_URLS", services[0]) if services else ""
    return ContextSettings(
        profile_ttl=env_int(env, "IDP_CONTEXT_PROFILE_TTL", 300, minimum=1, maximum=86400),
        metrics_ttl=env_int(env, "IDP_CONTEXT_METRICS_TTL", 600, minimum=1, maximum=86400),
        batch_ttl=env_int(env, "IDP_CONTEXT_BATCH_TTL", 1800, minimum=1, maximum=86400),
        cache_size=env_int(env, "IDP_CONTEXT_CACHE_SIZE", 20000, minimum=10, maximum=5_000_000),
        stale_max_age=env_int(env, "IDP_CONTEXT_STALE_MAX_AGE", 86400, minimum=0,
                              maximum=30 * 86400),
        zulip_url=zulip or None,
        redis_url=_redis_url(env),
    )


def _redis_url(env: Mapping[str, str]) -> str | None:
    """``IDP_CONTEXT_REDIS_URL``: redis://, rediss:// or unix:// (redis-py's URL forms)."""
    url = env.get("IDP_CONTEXT_REDIS_URL", "").strip()
    if not url:
        return None
    if urlsplit(url).scheme not in ("redis", "rediss", "unix") or len(url) > 2048:
        raise ConfigError("IDP_CONTEXT_REDIS_URL must look like redis://host:6379/0, "
                          "rediss://host:6380/0 or unix:///run/redis.sock (or be empty for "
                          "the in-process cache only)")
    return url
