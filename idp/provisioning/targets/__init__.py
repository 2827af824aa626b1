"""Zulip targets: SCIM 2.0 (RFC 7643/7644, ``scim2-client``) or Zulip's REST API (``zulip``).

:func:`build_target` picks one from :class:`~idp.provisioning.settings.ProvisionSettings`.
"""

from __future__ import annotations

from ..settings import ProvisionSettings
from .base import TargetError, ZulipAccount, ZulipTarget

__all__ = ["TargetError", "ZulipAccount", "ZulipTarget", "build_target"]


def build_target(settings: ProvisionSettings) -> ZulipTarget | None:
    """The configured target, or None in plan-only mode. Builds no connection yet."""
    if settings.target == "scim":
        from .scim import ScimTarget

        return ScimTarget(settings.scim_url, settings.scim_token, timeout=settings.http_timeout,
                          sync_role=settings.sync_role)
    if settings.target == "rest":
        from .rest import RestTarget

        return RestTarget(settings.zulip_url, settings.bot_email, settings.bot_api_key,
                          timeout=settings.http_timeout)
    return None
