"""The diff, the guard and the NOTIFY payload parser (pure functions)."""

from __future__ import annotations

import dataclasses

from idp.people import RoleMapping
from idp.provisioning.notify import parse_payload
from idp.provisioning.plan import LedgerEntry, PlanOptions, guard, plan_changes

MAPPING = RoleMapping({"student": "member", "mentor": "moderator", "staff": "administrator"},
                      frozenset({"boss@example.edu"}))


def person(n: int, *, active: bool = True, email: str | None = None, batch: str = "Batch A"):
    return MAPPING.build(kind="student", lms_id=n, username=f"s{n}",
                         email=email or f"s{n}@example.edu", first_name="S", last_name=str(n),
                         display_name="", active=active, batch_name=batch)


def entry(n: int, **changes) -> LedgerEntry:
    p = person(n)
    base = LedgerEntry(p.subject, p.email, p.full_name, p.zulip_role, tuple(sorted(p.groups)),
                       True)
    return dataclasses.replace(base, **changes)


def kinds(plan):
    return [(a.subject, a.action) for a in plan.actions]


def test_in_step_plans_nothing():
    plan = plan_changes([person(1), person(2)], {"student:1": entry(1), "student:2": entry(2)},
                        PlanOptions())
    assert plan.actions == [] and plan.people_seen == 2 and plan.managed == 2


def test_inactive_and_removed_people_are_deactivated():
    ledger = {"student:1": entry(1), "student:2": entry(2), "student:3": entry(3)}
    plan = plan_changes([person(1, active=False), person(3)], ledger, PlanOptions())
    assert kinds(plan) == [("student:1", "deactivate"), ("student:2", "deactivate")]
    assert [a.payload["reason"] for a in plan.actions] == ["inactive", "removed"]


def test_already_inactive_stays_quiet_and_comeback_reactivates_first():
    ledger = {"student:1": entry(1, active=False), "student:2": entry(2, active=False,
                                                                      full_name="Old")}
    plan = plan_changes([person(1, active=False), person(2)], ledger, PlanOptions())
    assert kinds(plan) == [("student:2", "reactivate"), ("student:2", "name")]


def test_rename_name_role_groups():
    ledger = {"student:1": entry(1, email="old@example.edu", role="guest",
                                 groups=("students",), full_name="Someone")}
    plan = plan_changes([person(1)], ledger, PlanOptions())
    assert [a.action for a in plan.actions] == ["rename", "name", "role", "groups"]
    rename, name, role, groups = (a.payload for a in plan.actions)
    assert rename == {"from": "old@example.edu", "email": "s1@example.edu"}
    assert name == {"full_name": "S 1"} and role == {"role": "member"}
    assert groups == {"add": ["batch-a"], "remove": [], "groups": ["batch-a", "students"]}


def test_email_case_change_is_not_a_rename():
    plan = plan_changes([person(1, email="S1@Example.edu")], {"student:1": entry(1)},
                        PlanOptions())
    assert plan.actions == []


def test_role_and_group_sync_can_be_switched_off():
    ledger = {"student:1": entry(1, role="guest", groups=())}
    plan = plan_changes([person(1)], ledger, PlanOptions(sync_role=False, sync_groups=False))
    assert plan.actions == []


def test_create_only_when_enabled_and_only_for_active_people():
    people = [person(1), person(2, active=False)]
    assert plan_changes(people, {}, PlanOptions()).actions == []
    plan = plan_changes(people, {}, PlanOptions(create=True))
    assert kinds(plan) == [("student:1", "create")]
    assert plan.actions[0].payload["email"] == "s1@example.edu"


def test_empty_snapshot_is_refused_while_ledger_is_not_empty():
    plan = plan_changes([], {"student:1": entry(1)}, PlanOptions())
    assert plan.refused and plan.actions == []
    assert plan_changes([], {}, PlanOptions()).refused is None


def test_targeted_diff_ignores_people_it_was_not_given():
    plan = plan_changes([person(1)], {"student:2": entry(2)}, PlanOptions(),
                        full_snapshot=False)
    assert plan.actions == []


def test_guard_by_share_and_by_count():
    ledger = {f"student:{n}": entry(n) for n in range(1, 101)}
    few = plan_changes([person(n) for n in range(1, 96)], ledger, PlanOptions())
    assert few.deactivations == 5 and guard(few, max_percent=5, max_count=50) is None
    many = plan_changes([person(n) for n in range(1, 91)], ledger, PlanOptions())
    assert "10.0% of 100" in guard(many, max_percent=5, max_count=50)
    assert "PROVISION_GUARD_MAX=3" in guard(many, max_percent=50, max_count=3)
    assert guard(many, max_percent=100, max_count=100) is None


def test_notify_payload_parsing():
    change = parse_payload("student:42 1732500000.5")
    assert change.subject == "student:42" and change.at.timestamp() == 1732500000.5
    assert parse_payload("mentor:7").at is None
    for bad in ("", "teacher:1", "student:x", "student:1 2 3", "'; DROP"):
        assert parse_payload(bad) is None
    assert parse_payload("student:1 not-a-time").at is None
