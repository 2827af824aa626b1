"""What the Zulip target supports, decided from ``GET /api/v1/server_settings`` (ZULIP.md,
"Versions"), never by retrying.

- SCIM ``/Groups`` exists only from Zulip 11.0 (before: 501); SCIM ``role`` from 8.0.
- An account's email can be changed only over SCIM (``userName``); the REST API cannot.
- REST group membership (``POST /api/v1/user_groups/{id}/members``) exists on every supported
  version.

A feature Zulip turns out not to have at delivery (501, or 404 on its endpoint) is switched off
as well, with one warning; it stays off until the next detection finds a version that has it.
The decision is stored on the outbox channel (``outbox_channels.capabilities``) so the status
page and ``provision status`` of every process show it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

import httpx2
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from .. import clock
from ..outbox import OutboxChannel
from .actions import CHANNEL, Feature

log = logging.getLogger(__name__)


def parse_version(version: str | None) -> tuple[int, int] | None:
    """``"11.0"``, ``"10.4-dev+git"`` → (11, 0); None when unreadable."""
    match = re.match(r"\s*(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass
class Capabilities:
    """The target's features: True (use it), False (switched off, ``reasons`` says why)."""

    target: str
    version: str | None = None
    feature_level: int | None = None
    reachable: bool | None = None  # None: not asked yet
    features: dict[str, bool] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    def allows(self, feature: str | None) -> bool:
        return feature is None or self.features.get(feature, True)

    def switch_off(self, feature: str, reason: str) -> bool:
        """Turn ``feature`` off; True when it was on (the caller warns once)."""
        was = self.allows(feature)
        self.features[feature], self.reasons[feature] = False, reason
        if was:
            log.warning("Zulip feature %r switched off: %s", feature, reason)
        return was

    @property
    def warnings(self) -> list[str]:
        return [f"{name}: {self.reasons.get(name, 'not supported')}"
                for name, on in sorted(self.features.items()) if not on]

    def as_json(self) -> dict:
        return {"target": self.target, "version": self.version,
                "feature_level": self.feature_level, "reachable": self.reachable,
                "features": self.features, "reasons": self.reasons}

    @classmethod
    def from_json(cls, data: dict | None, target: str) -> Capabilities:
        data = data or {}
        return cls(target=data.get("target") or target, version=data.get("version"),
                   feature_level=data.get("feature_level"), reachable=data.get("reachable"),
                   features=dict(data.get("features") or {}),
                   reasons=dict(data.get("reasons") or {}))


def decide(target: str, version: str | None, feature_level: int | None) -> Capabilities:
    """The features ``target`` ("scim" or "rest") has on Zulip ``version``."""
    caps = Capabilities(target=target, version=version, feature_level=feature_level,
                        reachable=version is not None)
    parsed = parse_version(version)
    if target == "scim":
        caps.features[Feature.EMAIL_CHANGE] = True
        if parsed is not None:
            caps.features[Feature.GROUPS] = parsed >= (11, 0)
            caps.features[Feature.ROLE] = parsed >= (8, 0)
            if parsed < (11, 0):
                caps.reasons[Feature.GROUPS] = (f"Zulip {version} has no SCIM /Groups (11.0+): "
                                                f"group changes are not sent")
            if parsed < (8, 0):
                caps.reasons[Feature.ROLE] = f"Zulip {version} has no SCIM role (8.0+)"
    elif target == "rest":
        caps.features[Feature.EMAIL_CHANGE] = False
        caps.reasons[Feature.EMAIL_CHANGE] = ("Zulip's REST API cannot change another user's "
                                              "email: use the SCIM target to follow LMS email "
                                              "changes")
        caps.features[Feature.GROUPS] = True
        caps.features[Feature.ROLE] = True
    return caps


def read_server_settings(zulip_url: str, timeout: float) -> tuple[str, int | None]:
    """``zulip_version`` and ``zulip_feature_level`` (no authentication needed). Raises
    httpx2.HTTPError or ValueError."""
    response = httpx2.get(zulip_url.rstrip("/") + "/api/v1/server_settings", timeout=timeout)
    response.raise_for_status()
    data = response.json()
    version = data.get("zulip_version")
    if not isinstance(version, str):
        raise ValueError("server_settings has no zulip_version")
    level = data.get("zulip_feature_level")
    return version, level if isinstance(level, int) else None


def detect(target: str, zulip_url: str, timeout: float,
           previous: Capabilities | None = None) -> Capabilities:
    """Ask Zulip; on failure keep what was known (marked unreachable). Logs each change."""
    try:
        version, level = read_server_settings(zulip_url, timeout)
    except (httpx2.HTTPError, ValueError) as exc:
        caps = previous or decide(target, None, None)
        if caps.reachable is not False:
            log.warning("Zulip server_settings unreadable (%s): keeping the last known "
                        "capabilities", type(exc).__name__)
        caps.reachable = False
        return caps
    caps = decide(target, version, level)
    if previous is None or previous.version != version:
        log.info("Zulip %s (feature level %s) over %s: %s", version, level, target,
                 ", ".join(f"{k}={'on' if v else 'off'}" for k, v in
                           sorted(caps.features.items())))
        for warning in caps.warnings:
            log.warning("Zulip feature switched off: %s", warning)
    elif previous is not None:  # same version: keep what delivery found out since
        for name, on in previous.features.items():
            if not on and caps.features.get(name, True):
                caps.features[name], caps.reasons[name] = False, previous.reasons.get(name, "")
    return caps


def store(session: Session, caps: Capabilities) -> None:
    """Write ``caps`` on the ``zulip`` outbox channel (the caller commits)."""
    session.execute(insert(OutboxChannel).values(channel=CHANNEL, capabilities={})
                    .on_conflict_do_nothing(index_elements=["channel"]))
    row = session.get(OutboxChannel, CHANNEL)
    row.capabilities, row.checked_at = caps.as_json(), clock.now()


def load(session: Session, target: str) -> tuple[Capabilities | None, dt.datetime | None]:
    """The stored capabilities and when they were detected."""
    row = session.get(OutboxChannel, CHANNEL)
    if row is None or not row.capabilities:
        return None, None
    return Capabilities.from_json(row.capabilities, target), row.checked_at
