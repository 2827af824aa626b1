"""The provisioning actions as a typed vocabulary: one class per action, each knowing its
outbox priority, what it does to the ledger, how it is delivered to a Zulip target, which Zulip
feature it needs, and how it reads in a table.

Kinds in the outbox are ``provision.<action>`` on channel ``zulip``. Priorities follow
DESIGN.md ("a security-critical action never waits behind a cosmetic one"): ``deactivate`` is
``REVOCATION``, ``create``/``reactivate`` are ``ACCOUNT``, the rest ``PROFILE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, clock
from ..outbox import Priority
from .models import LedgerAccount
from .targets.base import TargetError, ZulipAccount, ZulipTarget

CHANNEL = "zulip"


class Kind(StrEnum):
    CREATE = "create"
    REACTIVATE = "reactivate"
    RENAME = "rename"
    NAME = "name"
    ROLE = "role"
    GROUPS = "groups"
    DEACTIVATE = "deactivate"

    @property
    def outbox_kind(self) -> str:
        return f"provision.{self.value}"


class Feature(StrEnum):
    """What a Zulip target may or may not offer (capabilities.py decides)."""

    GROUPS = "groups"
    EMAIL_CHANGE = "email_change"
    ROLE = "role"


class AlreadyDone(Exception):
    """Nothing to change in Zulip (e.g. the account to deactivate no longer exists)."""


@dataclass
class Delivery:
    """What a delivery needs: the session (ledger writes commit with the message), the target
    and the ledger row of the person."""

    session: Session
    target: ZulipTarget
    ledger: LedgerAccount | None
    subject: str
    payload: dict

    def account_id(self, kind: Kind) -> str:
        """The person's Zulip user id: from the ledger, else looked up by email."""
        if self.ledger is not None and self.ledger.zulip_user_id:
            return self.ledger.zulip_user_id
        emails = [e for e in (self.payload.get("from"),
                              self.ledger.email if self.ledger else None) if e]
        for email in emails:
            account = self.target.find_by_email(email)
            if account is not None and account.manageable:
                if self.ledger is not None:
                    self.ledger.zulip_user_id = account.id
                return account.id
        if kind is Kind.DEACTIVATE:
            raise AlreadyDone("no Zulip account: nothing to deactivate")
        raise TargetError(f"{kind}: no Zulip account for {self.subject}", transient=False)


class Action:
    kind: ClassVar[Kind]
    priority: ClassVar[Priority] = Priority.PROFILE
    feature: ClassVar[Feature | None] = None
    supersedes: ClassVar[tuple[Kind, ...]] = ()

    def ledger_effect(self, row: LedgerAccount, payload: dict) -> None:
        """The state the ledger commits to once the action is queued."""

    def deliver(self, d: Delivery) -> str:
        raise NotImplementedError

    def describe(self, payload: dict) -> str:
        return ""


class Create(Action):
    kind, priority = Kind.CREATE, Priority.ACCOUNT

    def deliver(self, d: Delivery) -> str:
        """Create, or adopt the account that already has this ``userName`` (a retried create,
        or a person who signed in through SAML first). Owners and bots are never adopted, nor
        an account the ledger already gives to another person (two LMS people, one email)."""
        payload, target = d.payload, d.target
        account: ZulipAccount | None = target.find_by_email(payload["email"])
        if account is not None and not account.manageable:
            raise TargetError(f"create: {payload['email']} belongs to a Zulip owner or bot; the "
                              f"bridge does not manage it", transient=False)
        if account is not None:
            holder = d.session.scalar(select(LedgerAccount.subject).where(
                LedgerAccount.zulip_user_id == account.id, LedgerAccount.subject != d.subject))
            if holder is not None:
                raise TargetError(f"create: {payload['email']} is already the Zulip account of "
                                  f"{holder}: two LMS people share this email", transient=False)
        if account is None:
            account = target.create(payload["email"], payload["full_name"], payload["role"])
            note = "created"
        else:
            if not account.active:
                target.set_active(account.id, True)
            if account.full_name != payload["full_name"]:
                target.set_name(account.id, payload["full_name"])
            if account.role and account.role != payload["role"]:
                target.set_role(account.id, payload["role"])
            note = "adopted existing account"
            audit.record("provision.adopt", "ok", subject=d.subject, zulip_user_id=account.id,
                         match="email")
        if d.ledger is not None:
            d.ledger.zulip_user_id = account.id
        if payload.get("groups"):
            try:
                missing = target.set_groups(account.id, list(payload["groups"]), [])
            except TargetError as exc:
                if exc.feature is None:
                    raise
                return f"{note}; groups not set: {exc}"
            if missing:
                return f"{note}; groups Zulip does not have were skipped: {', '.join(missing)}"
        return note

    def describe(self, payload: dict) -> str:
        return f"{payload['email']} ({payload['role']})"


class Reactivate(Action):
    kind, priority = Kind.REACTIVATE, Priority.ACCOUNT

    def ledger_effect(self, row: LedgerAccount, payload: dict) -> None:
        row.active = True

    def deliver(self, d: Delivery) -> str:
        d.target.set_active(d.account_id(self.kind), True)
        return "ok"


class Deactivate(Action):
    kind, priority = Kind.DEACTIVATE, Priority.REVOCATION
    supersedes = (Kind.CREATE, Kind.REACTIVATE)  # not yet sent: they must not undo it

    def ledger_effect(self, row: LedgerAccount, payload: dict) -> None:
        row.active = False

    def deliver(self, d: Delivery) -> str:
        try:
            d.target.set_active(d.account_id(self.kind), False)
        except TargetError as exc:
            if exc.status == 404:
                raise AlreadyDone("the Zulip account no longer exists") from exc
            raise
        return "ok"

    def describe(self, payload: dict) -> str:
        return payload.get("reason", "")


class Rename(Action):
    kind, feature = Kind.RENAME, Feature.EMAIL_CHANGE

    def ledger_effect(self, row: LedgerAccount, payload: dict) -> None:
        row.email = payload["email"]

    def deliver(self, d: Delivery) -> str:
        d.target.rename(d.account_id(self.kind), d.payload["email"])
        return "ok"

    def describe(self, payload: dict) -> str:
        return f"{payload['from']} -> {payload['email']}"


class Name(Action):
    kind = Kind.NAME

    def ledger_effect(self, row: LedgerAccount, payload: dict) -> None:
        row.full_name = payload["full_name"]

    def deliver(self, d: Delivery) -> str:
        d.target.set_name(d.account_id(self.kind), d.payload["full_name"])
        return "ok"

    def describe(self, payload: dict) -> str:
        return payload["full_name"]


class Role(Action):
    kind, feature = Kind.ROLE, Feature.ROLE

    def ledger_effect(self, row: LedgerAccount, payload: dict) -> None:
        row.role = payload["role"]

    def deliver(self, d: Delivery) -> str:
        d.target.set_role(d.account_id(self.kind), d.payload["role"])
        return "ok"

    def describe(self, payload: dict) -> str:
        return payload["role"]


class Groups(Action):
    kind, feature = Kind.GROUPS, Feature.GROUPS

    def ledger_effect(self, row: LedgerAccount, payload: dict) -> None:
        row.groups = list(payload["groups"])

    def deliver(self, d: Delivery) -> str:
        missing = d.target.set_groups(d.account_id(self.kind), list(d.payload["add"]),
                                      list(d.payload["remove"]))
        if missing:
            return "groups Zulip does not have were skipped: " + ", ".join(missing)
        return "ok"

    def describe(self, payload: dict) -> str:
        return " ".join([f"+{g}" for g in payload["add"]] + [f"-{g}" for g in payload["remove"]])


ACTIONS: dict[Kind, Action] = {a.kind: a for a in (
    Create(), Reactivate(), Rename(), Name(), Role(), Groups(), Deactivate())}
BY_OUTBOX_KIND: dict[str, Action] = {a.kind.outbox_kind: a for a in ACTIONS.values()}
DEACTIVATE_KINDS = (Kind.DEACTIVATE.outbox_kind,)


def action(kind: str) -> Action:
    return ACTIONS[Kind(kind)]


def commit_to_ledger(session: Session, subject: str, kind: str, payload: dict) -> None:
    """Record in the ledger the state the action will give the account (same transaction as
    its outbox message, so the next diff does not plan it again)."""
    row = session.get(LedgerAccount, subject)
    if Kind(kind) is Kind.CREATE:
        if row is None:
            session.add(LedgerAccount(
                subject=subject, zulip_user_id=None, email=payload["email"],
                full_name=payload["full_name"], role=payload["role"],
                groups=list(payload["groups"]), active=True, origin="created",
                adopted_at=clock.now()))
        return
    if row is not None:
        action(kind).ledger_effect(row, payload)
