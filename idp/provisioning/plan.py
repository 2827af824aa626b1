"""The plan: LMS people diffed against the ledger (DESIGN.md, "How data flows").

Pure functions, no I/O: :func:`plan_changes` takes a stream of :class:`~idp.people.Person` and
the ledger (subject → :class:`LedgerEntry`) and returns the actions that bring Zulip in line
with the LMS. :func:`guard` decides whether a plan is too destructive to apply unattended.

Per person the order is fixed: ``reactivate`` before any update, ``deactivate`` alone (other
changes wait until the person comes back), ``rename`` before ``name``/``role``/``groups``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..people import Person
from .actions import Kind

ACTIONS = tuple(Kind)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the bridge has committed Zulip to hold for one managed account."""

    subject: str
    email: str
    full_name: str
    role: str
    groups: tuple[str, ...]
    active: bool


@dataclass(frozen=True, slots=True)
class PlannedAction:
    subject: str
    action: Kind
    payload: dict

    def key(self) -> tuple:
        return self.subject, self.action, tuple(sorted(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in self.payload.items()))


@dataclass
class Plan:
    actions: list[PlannedAction] = field(default_factory=list)
    people_seen: int = 0
    managed: int = 0  # active accounts in the ledger
    refused: str | None = None
    full_snapshot: bool = True  # False for a targeted (NOTIFY) diff

    @property
    def deactivations(self) -> int:
        return sum(1 for a in self.actions if a.action == Kind.DEACTIVATE)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for action in self.actions:
            counts[action.action] = counts.get(action.action, 0) + 1
        return counts


@dataclass(frozen=True)
class PlanOptions:
    create: bool = False
    sync_role: bool = True
    sync_groups: bool = True


def desired_name(person: Person) -> str:
    return person.full_name[:200]


def person_actions(person: Person | None, entry: LedgerEntry | None,
                   options: PlanOptions) -> list[PlannedAction]:
    """The actions for one subject: ``person`` is None when the LMS no longer has them."""
    if entry is None:
        if person is not None and options.create and person.active and person.email:
            groups = sorted(person.groups) if options.sync_groups else []
            return [PlannedAction(person.subject, Kind.CREATE, {
                "email": person.email, "full_name": desired_name(person),
                "role": person.zulip_role, "groups": groups})]
        return []
    subject = entry.subject
    if person is None or not person.active:
        if entry.active:
            return [PlannedAction(subject, Kind.DEACTIVATE,
                                  {"reason": "removed" if person is None else "inactive"})]
        return []
    actions: list[PlannedAction] = []
    if not entry.active:
        actions.append(PlannedAction(subject, Kind.REACTIVATE, {}))
    if person.email and person.email.lower() != entry.email.lower():
        actions.append(PlannedAction(subject, Kind.RENAME, {"from": entry.email,
                                                         "email": person.email}))
    name = desired_name(person)
    if name and name != entry.full_name:
        actions.append(PlannedAction(subject, Kind.NAME, {"full_name": name}))
    if options.sync_role and person.zulip_role != entry.role:
        actions.append(PlannedAction(subject, Kind.ROLE, {"role": person.zulip_role}))
    if options.sync_groups:
        wanted, held = set(person.groups), set(entry.groups)
        if wanted != held:
            actions.append(PlannedAction(subject, Kind.GROUPS, {
                "add": sorted(wanted - held), "remove": sorted(held - wanted),
                "groups": sorted(wanted)}))
    return actions


def plan_changes(people: Iterable[Person], ledger: dict[str, LedgerEntry],
                 options: PlanOptions, *, full_snapshot: bool = True) -> Plan:
    """Diff ``people`` with ``ledger``. With ``full_snapshot`` every ledger subject absent from
    ``people`` is read as removed from the LMS; otherwise (a targeted check) only the given
    people are considered. ``ledger`` is not modified."""
    plan = Plan(managed=sum(1 for e in ledger.values() if e.active), full_snapshot=full_snapshot)
    seen: set[str] = set()
    for person in people:
        plan.people_seen += 1
        seen.add(person.subject)
        plan.actions.extend(person_actions(person, ledger.get(person.subject), options))
    if full_snapshot:
        if plan.people_seen == 0 and plan.managed:
            plan.refused = ("the LMS returned no people at all while the ledger manages "
                            f"{plan.managed} active accounts: refusing to read that as "
                            "everybody left")
            plan.actions = []
            return plan
        for subject, entry in ledger.items():
            if subject not in seen:
                plan.actions.extend(person_actions(None, entry, options))
    return plan


def guard(plan: Plan, *, max_percent: float, max_count: int, recent: int = 0) -> str | None:
    """Why the plan must be held for approval, or None: more than ``max_count``
    deactivations, or more than ``max_percent`` % of the managed active accounts. ``recent``
    adds deactivations just applied by other targeted runs, so a mass change arriving as many
    small NOTIFY batches is held like one big run."""
    if plan.deactivations == 0:
        return None
    count = plan.deactivations + recent
    if count > max_count:
        return f"{count} deactivations exceed PROVISION_GUARD_MAX={max_count}"
    if plan.managed and count * 100.0 > max_percent * plan.managed:
        share = 100.0 * count / plan.managed
        return (f"{count} deactivations are {share:.1f}% of {plan.managed} managed accounts, "
                f"over PROVISION_GUARD_PERCENT={max_percent:g}")
    return None
