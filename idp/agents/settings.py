"""Settings of the agent surfaces (MCP, Zulip context bot, GraphQL), read at start.

``IDP_AGENTS_REGISTRATION``: ``open`` (RFC 7591 dynamic registration of public MCP clients),
``approval`` (registered clients wait for ``flask agents approve-client``) or ``off``.
``IDP_AGENTS_REGISTRATIONS_PER_HOUR``: registrations accepted per client address per hour.
``IDP_AGENTS_SHARE_DEFAULT``: whether a student who never chose shares their context with AI
agents and bots (the school-wide default). ``ZULIP_CONTEXT_BOT_TOKEN``: the outgoing-webhook
bot's token (unset: the bot endpoint is off). ``IDP_GRAPHQL_INTROSPECTION`` and the GraphQL
depth and cost limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import ConfigError, env_bool, env_int

REGISTRATION_MODES = ("open", "approval", "off")


@dataclass(frozen=True)
class AgentsSettings:
    registration: str
    registrations_per_hour: int
    share_default: bool
    zulip_bot_token: str | None
    graphql_introspection: bool
    graphql_max_depth: int
    graphql_max_cost: int


def load_agents_settings(env: Mapping[str, str]) -> AgentsSettings:
    mode = env.get("IDP_AGENTS_REGISTRATION", "open").strip().lower() or "open"
    if mode not in REGISTRATION_MODES:
        raise ConfigError(f"IDP_AGENTS_REGISTRATION is {mode!r}: use one of "
                          f"{', '.join(REGISTRATION_MODES)}")
    token = env.get("ZULIP_CONTEXT_BOT_TOKEN", "").strip() or None
    if token is not None and len(token) < 16:
        raise ConfigError("ZULIP_CONTEXT_BOT_TOKEN is too short: paste the outgoing-webhook "
                          "bot's token from Zulip (Settings → Bots)")
    return AgentsSettings(
        registration=mode,
        registrations_per_hour=env_int(env, "IDP_AGENTS_REGISTRATIONS_PER_HOUR", 10,
                                       minimum=1, maximum=10000),
        share_default=env_bool(env, "IDP_AGENTS_SHARE_DEFAULT", True),
        zulip_bot_token=token,
        graphql_introspection=env_bool(env, "IDP_GRAPHQL_INTROSPECTION", False),
        graphql_max_depth=env_int(env, "IDP_GRAPHQL_MAX_DEPTH", 6, minimum=2, maximum=20),
        graphql_max_cost=env_int(env, "IDP_GRAPHQL_MAX_COST", 200, minimum=10,
                                 maximum=100000),
    )
