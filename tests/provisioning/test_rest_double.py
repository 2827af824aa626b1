"""Provisioning over Zulip's REST API (the ``zulip`` client) into the REST double."""

from __future__ import annotations

import pytest

from .conftest import adopt_all, outbox, provisioner


@pytest.fixture
def rest_app(app, make_app, rest_env):
    return make_app(**rest_env)


def test_rest_deactivate_reactivate_name_role_groups(rest_app, make_app, rest_env, realm,
                                                     lms_admin):
    with rest_app.app_context():
        owner = realm.add("mentor1@example.edu", "Owner", "owner")
        bot = realm.add("student3@example.edu", "Bot", bot=True)
        accounts = adopt_all(rest_app, realm,
                             skip=lambda p: p.subject in ("mentor:1", "student:3"))
        alice = accounts["student:1"]
        assert "students" in realm.groups_of(alice.id)
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = false WHERE id = 1; "
                        "UPDATE students SET display_name = 'Renamed Four' WHERE id = 4; "
                        "UPDATE students SET is_active = false WHERE id = 3")
        provisioner(rest_app).apply_once()
        assert alice.is_active is False and realm.effects_of("deactivate") == [
            ("deactivate", alice.id)]
        assert accounts["student:4"].full_name == "Renamed Four"
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = true WHERE id = 1")
        provisioner(rest_app).apply_once()
        assert alice.is_active is True
    promoted = make_app(**rest_env, IDP_STAFF_EMAILS="staff1@example.edu,student1@example.edu")
    with promoted.app_context():
        provisioner(promoted).apply_once()
        assert alice.role == "administrator" and "staff" in realm.groups_of(alice.id)
        assert {a.status for a in outbox()} == {"done"}
    for account in (owner, bot):
        assert [e for e in realm.effects if e[1] == account.id] == []


def test_rest_cannot_rename_and_says_so(rest_app, realm, lms_admin):
    with rest_app.app_context():
        accounts = adopt_all(rest_app, realm)
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET email = 'new1@example.edu' WHERE id = 1")
        provisioner(rest_app).apply_once()
        [unsupported] = outbox("unsupported")  # switched off from the start, never sent
        assert unsupported.action == "rename" and "use the SCIM target" in unsupported.last_error
        assert not [r for r in realm.requests if r[1] == "PATCH" and "email" in r[3]]
        assert accounts["student:1"].email == "student1@example.edu"


def test_rest_zulip_down_at_start_then_back(rest_app, realm, zulip, lms_admin):
    with rest_app.app_context():
        accounts = adopt_all(rest_app, realm)
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = false WHERE id = 1")
        zulip.stop()
        down = provisioner(rest_app)  # a fresh client: its constructor cannot reach Zulip
        plan, _, report = down.apply_once()
        assert report.blocked and outbox("pending")
        zulip.start()
        from idp import clock

        clock.advance(2)
        down.deliver_all()
        assert not accounts["student:1"].is_active and outbox("pending") == []
        assert realm.effects_of("deactivate") == [("deactivate", accounts["student:1"].id)]
