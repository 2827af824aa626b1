"""What every Zulip target offers the delivery loop, and how it fails.

Each operation is idempotent in effect (ZULIP.md): setting ``active`` twice, replacing
``userName`` with the value it has, adding a member already in a group change nothing the
second time, so an action delivered again after a crash is harmless.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


class TargetError(Exception):
    """Zulip refused or could not be reached. ``transient`` errors (network, timeout, 5xx,
    429) are retried with backoff (at least ``retry_after`` seconds, Zulip's ``Retry-After``);
    the others are recorded as failures. ``feature`` is set when the call used an endpoint a
    Zulip version may lack (groups), so a 404/501 there means "not supported"."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None,
                 retry_after: float | None = None, feature: str | None = None):
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.retry_after = retry_after
        self.feature = feature

    @property
    def unsupported(self) -> bool:
        """Zulip says it does not offer this: 501, or 404 on a feature's endpoint."""
        return self.status == 501 or (self.feature is not None and self.status == 404)


@dataclass(frozen=True)
class ZulipAccount:
    """A Zulip account as the target reports it."""

    id: str
    email: str
    full_name: str
    role: str | None
    active: bool
    is_bot: bool = False

    @property
    def manageable(self) -> bool:
        """Bots and owners are never managed by the bridge."""
        return not self.is_bot and self.role != "owner"


class ZulipTarget(Protocol):
    name: str

    def check(self) -> None:
        """Reach Zulip once (credentials, URL); raise TargetError."""

    def find_by_email(self, email: str) -> ZulipAccount | None: ...

    def iter_accounts(self) -> Iterator[ZulipAccount]: ...

    def create(self, email: str, full_name: str, role: str) -> ZulipAccount: ...

    def set_active(self, user_id: str, active: bool) -> None: ...

    def rename(self, user_id: str, email: str) -> None: ...

    def set_name(self, user_id: str, full_name: str) -> None: ...

    def set_role(self, user_id: str, role: str) -> None: ...

    def set_groups(self, user_id: str, add: list[str], remove: list[str]) -> list[str]:
        """Add and remove memberships; returns the group names Zulip does not have."""
