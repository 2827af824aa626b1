"""Provisioning over SCIM into the Zulip double: deactivate, remove, reactivate, rename, role
and group changes; accounts outside the ledger untouched; Zulip's SCIM rules respected."""

from __future__ import annotations

import json

import pytest

from idp.events import person_deprovisioned
from idp.extensions import db
from idp.outbox import OutboxMessage
from idp.provisioning.models import LedgerAccount

from .conftest import adopt_all, ledger, outbox, provisioner, runs


@pytest.fixture
def deprovisioned():
    seen: list[str] = []

    def receiver(sender, subject, **_):
        seen.append(subject)

    person_deprovisioned.connect(receiver)
    yield seen
    person_deprovisioned.disconnect(receiver)


def _sql(lms_admin, statement: str, *args) -> None:
    with lms_admin.cursor() as cur:
        cur.execute(statement, args)


def test_deactivated_in_lms_is_deactivated_in_zulip_once(scim_app, realm, lms_admin,
                                                        deprovisioned):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 1")
        provisioner(scim_app).apply_once()
        alice = accounts["student:1"]
        assert alice.is_active is False
        assert realm.effects_of("deactivate") == [("deactivate", alice.id)]
        assert ledger("student:1").active is False and ledger("student:1").last_synced_at
        assert deprovisioned == ["student:1"]
        assert runs()[-1].counts == {"deactivate": 1} and runs()[-1].status == "applied"
        # a second run has nothing to do and changes nothing
        before = list(realm.effects)
        provisioner(scim_app).apply_once()
        assert realm.effects == before
        assert all(a.status == "done" for a in outbox())


def test_removed_from_lms_is_deactivated(scim_app, realm, lms_admin):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
        _sql(lms_admin, "DELETE FROM students WHERE id = 2")
        provisioner(scim_app).apply_once()
        assert accounts["student:2"].is_active is False
        action = outbox()[-1]
        assert (action.action, action.payload, action.status) == (
            "deactivate", {"reason": "removed"}, "done")


def test_reactivated_in_lms_is_reactivated(scim_app, realm, lms_admin):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 1")
        provisioner(scim_app).apply_once()
        _sql(lms_admin, "UPDATE students SET is_active = true WHERE id = 1")
        provisioner(scim_app).apply_once()
        alice = accounts["student:1"]
        assert alice.is_active is True
        assert [e[0] for e in realm.effects if e[1] == alice.id][-2:] == [
            "deactivate", "reactivate"]


def test_email_change_renames_the_same_account(scim_app, realm, lms_admin):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
        _sql(lms_admin, "UPDATE students SET email = 'alice.new@example.edu' WHERE id = 1")
        provisioner(scim_app).apply_once()
        alice = accounts["student:1"]
        assert alice.email == "alice.new@example.edu"
        assert realm.effects_of("rename") == [("rename", alice.id, "student1@example.edu",
                                               "alice.new@example.edu")]
        assert realm.effects_of("create") == []
        assert ledger("student:1").email == "alice.new@example.edu"


def test_role_and_group_changes(scim_app, make_app, scim_env, realm, lms_admin):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
        before = realm.groups_of(accounts["student:1"].id)
    promoted = make_app(**scim_env, IDP_STAFF_EMAILS="staff1@example.edu,student1@example.edu")
    with promoted.app_context():
        provisioner(promoted).apply_once()
        alice = accounts["student:1"]
        assert alice.role == "administrator"
        assert realm.effects_of("role") == [("role", alice.id, "administrator")]
        assert realm.groups_of(alice.id) == before | {"staff"}
    with scim_app.app_context():
        _sql(lms_admin, "UPDATE students SET batch_id = 2 WHERE id = 1")
        provisioner(scim_app).apply_once()
        from idp.lms.directory import get_directory

        wanted = set(get_directory().get("student:1").groups)
        assert realm.groups_of(alice.id) == wanted and wanted != before - {"staff"}
        assert alice.role == "member"
        removed = {e[2] for e in realm.effects_of("group_remove", alice.id)}
        assert "staff" in removed and removed - {"staff"}


def test_accounts_outside_the_ledger_are_never_touched(scim_app, realm, lms_admin):
    with scim_app.app_context():
        owner = realm.add("mentor1@example.edu", "The Owner", "owner")
        bot = realm.add("student3@example.edu", "A Bot", bot=True)
        stranger = realm.add("stranger@example.org", "Stranger")
        adopt_all(scim_app, realm, skip=lambda p: p.subject in ("mentor:1", "student:3"))
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 3")
        _sql(lms_admin, "UPDATE mentors SET display_name = 'Renamed Mentor' WHERE id = 1")
        provisioner(scim_app).apply_once()
        for account in (owner, bot, stranger):
            assert [e for e in realm.effects if e[1] == account.id] == []
        assert owner.role == "owner" and bot.is_active and stranger.is_active
        assert ledger("mentor:1") is None and ledger("student:3") is None


def test_wire_follows_zulips_scim_rules(scim_app, realm, lms_admin):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id IN (1, 2)")
        _sql(lms_admin, "UPDATE students SET email = 'x1@example.edu', display_name = 'Z' "
                        "WHERE id = 4")
        provisioner(scim_app).apply_once()
    paths = [(method, path) for _, method, path, _ in realm.requests]
    assert not [p for p in paths if any(d in p[1] for d in (
        "ServiceProviderConfig", "ResourceTypes", "Schemas", "Bulk", "/Me"))]
    assert not [p for p in paths if p[0] == "DELETE"]
    patches = [json.loads(body) for _, method, path, body in realm.requests
               if method == "PATCH" and "/Users/" in path]
    assert patches
    for body in patches:
        assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]
        for op in body["Operations"]:
            assert op["op"] == "replace"
            assert op["path"] in ("userName", "name.formatted", "active", "role")
            if op["path"] == "active":
                assert op["value"] is False or op["value"] is True
    assert not [r for r in realm.requests if "externalId" in r[2] + r[3]]


def test_create_when_enabled_then_a_retried_create_adopts(app, make_app, scim_env, realm):
    creating = make_app(**scim_env, PROVISION_CREATE="true")
    with creating.app_context():
        for name in ("students", "mentors", "staff"):
            realm.add_group(name)
        plan, adopted, report = provisioner(creating).apply_once()
        created = realm.effects_of("create")
        assert adopted == 0 and report.failed == 0 and len(created) == report.delivered
        assert {a.email for a in realm.accounts.values()} >= {"student1@example.edu",
                                                              "mentor1@example.edu"}
        assert realm.by_email("student5@example.edu") is None  # inactive: not created
        # as if the worker died after Zulip created the account but before the commit
        row = db.session.get(LedgerAccount, "student:1")
        account_id = row.zulip_user_id
        row.zulip_user_id = None
        action = db.session.scalars(db.select(OutboxMessage).where(
            OutboxMessage.ordering_key == "student:1",
            OutboxMessage.kind == "provision.create")).one()
        action.status = "pending"
        db.session.commit()
        provisioner(creating).apply_once()
        assert len(realm.effects_of("create")) == len(created)  # not created twice
        assert ledger("student:1").zulip_user_id == account_id


def test_two_lms_people_sharing_an_email_never_share_an_account(app, make_app, scim_env,
                                                                realm, lms_admin):
    _sql(lms_admin, "UPDATE students SET email = 'student1@example.edu' WHERE id = 2")
    creating = make_app(**scim_env, PROVISION_CREATE="true", PROVISION_SYNC_GROUPS="false")
    with creating.app_context():
        provisioner(creating).apply_once()
        [failed] = outbox("failed")
        assert failed.subject in ("student:1", "student:2")
        assert "two LMS people share this email" in failed.last_error
        ids = [row.zulip_user_id for row in db.session.scalars(db.select(LedgerAccount))
               if row.zulip_user_id]
        assert len(ids) == len(set(ids))
