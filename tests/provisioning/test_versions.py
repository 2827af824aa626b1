"""The same scenarios against three Zulip doubles (ZULIP.md): SCIM on Zulip 10.x (``/Groups``
answers 501), SCIM on 11.x (with ``/Groups``) and the REST API. Every deactivation arrives,
nothing is applied twice in effect, and no deactivation waits behind another action."""

from __future__ import annotations

import pytest

from idp import clock
from idp.extensions import db
from idp.outbox import OutboxChannel

from .conftest import FAST_RETRY, adopt_all, ledger, outbox, provisioner
from .zulip_double import BOT_EMAIL, BOT_KEY, SCIM_TOKEN

FLAVOURS = {"scim-10": ("scim", "10.4"), "scim-11": ("scim", "11.2"), "rest": ("rest", "11.2")}


@pytest.fixture(params=sorted(FLAVOURS))
def flavour(request) -> str:
    return request.param


@pytest.fixture
def zapp(app, make_app, zulip, realm, flavour):
    """An app provisioning into the double of ``flavour``."""
    target, realm.version = FLAVOURS[flavour]
    env = ({"ZULIP_SCIM_TOKEN": SCIM_TOKEN} if target == "scim" else
           {"ZULIP_BOT_EMAIL": BOT_EMAIL, "ZULIP_BOT_API_KEY": BOT_KEY})
    return make_app(ZULIP_URL=zulip.url, **env, **FAST_RETRY)


def _sql(lms_admin, statement: str) -> None:
    with lms_admin.cursor() as cur:
        cur.execute(statement)


def _drain(application, rounds: int = 80, step: float = 0.5, *, plan: bool = True):
    """Plan once (a poll), then deliver until nothing is pending (clock moved past backoffs)."""
    worker = provisioner(application)
    if plan:
        worker.poll()
    for _ in range(rounds):
        worker.deliver_all()
        if not outbox("pending"):
            return worker
        clock.advance(step)
    raise AssertionError("outbox not drained: " + repr([(m.kind, m.last_error)
                                                        for m in outbox("pending")][:5]))


def _effects(realm, kind):
    return [e for e in realm.effects if e[0] == kind]


def _no_double_effects(realm):
    """Nothing applied twice in effect: each (kind, user, value) change happens once."""
    changes = [e for e in realm.effects if e[0] in ("deactivate", "reactivate", "name", "role",
                                                    "rename", "create")]
    assert len(changes) == len(set(changes)), changes


def test_deactivations_go_first_and_unsupported_groups_are_switched_off_once(
        zapp, realm, lms_admin, flavour):
    with zapp.app_context():
        accounts = adopt_all(zapp, realm)
        realm.effects.clear()
        # many cosmetic changes planned in the same run as two deactivations
        _sql(lms_admin, "UPDATE students SET batch_id = 2 WHERE id BETWEEN 10 AND 40")
        _sql(lms_admin, "UPDATE students SET display_name = 'Renamed ' || id "
                        "WHERE id BETWEEN 10 AND 40")
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id IN (39, 40)")
        requests_before = len(realm.requests)
        _drain(zapp)
        kinds = [e[0] for e in realm.effects]
        deactivated = {e[1] for e in _effects(realm, "deactivate")}
        assert deactivated == {accounts["student:39"].id, accounts["student:40"].id}
        assert kinds[:2] == ["deactivate", "deactivate"]  # before any other change
        _no_double_effects(realm)
        group_requests = [r for r in realm.requests[requests_before:]
                          if "/Groups" in r[2] or "user_groups" in r[2]]
        channel = db.session.get(OutboxChannel, "zulip")
        if flavour == "scim-10":
            assert len(group_requests) <= 1  # asked once, 501, then never again
            assert channel.capabilities["features"]["groups"] is False
            assert "11.0" in channel.capabilities["reasons"]["groups"]
            assert outbox("unsupported") and not outbox("failed")
        else:
            assert group_requests and channel.capabilities["features"]["groups"] is True
            assert not outbox("failed")


def test_removal_reactivation_rename_role(zapp, realm, lms_admin, flavour):
    with zapp.app_context():
        accounts = adopt_all(zapp, realm)
        realm.effects.clear()
        _sql(lms_admin, "DELETE FROM students WHERE id = 2")
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 3")
        _drain(zapp)
        _sql(lms_admin, "UPDATE students SET is_active = true WHERE id = 3")
        _sql(lms_admin, "UPDATE students SET email = 'moved4@example.edu' WHERE id = 4")
        _drain(zapp)
        assert not accounts["student:2"].is_active
        assert accounts["student:3"].is_active and ledger("student:3").active
        assert [e[0] for e in realm.effects if e[1] == accounts["student:3"].id] == [
            "deactivate", "reactivate"]
        if flavour == "rest":  # REST cannot change an email: unsupported, said once
            assert accounts["student:4"].email == "student4@example.edu"
            assert [m.action for m in outbox("unsupported")] == ["rename"]
        else:
            assert accounts["student:4"].email == "moved4@example.edu"
        _no_double_effects(realm)


def test_forty_failed_requests_mid_run_and_a_restart(zapp, make_app, realm, lms_admin,
                                                     zulip, flavour):
    with zapp.app_context():
        accounts = adopt_all(zapp, realm)
        realm.effects.clear()
        _sql(lms_admin, "UPDATE students SET batch_id = CASE WHEN batch_id = 1 THEN 2 ELSE 1 END "
                        "WHERE id BETWEEN 1 AND 30")
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id IN (6, 7)")
        worker = provisioner(zapp)
        worker.poll()
        realm.fail_next = [503] * 40
        for _ in range(5):
            worker.deliver_all()
            clock.advance(0.3)
        db.session.remove()
    restarted = make_app(**{k: v for k, v in zapp.config["IDP_ENV"].items()})
    with restarted.app_context():
        for _ in range(200):
            if not realm.fail_next:
                break
            provisioner(restarted).deliver_all()
            clock.advance(1.0)
        _drain(restarted, plan=False)
        deactivated = [e[1] for e in _effects(realm, "deactivate")]
        assert sorted(deactivated) == sorted(accounts[f"student:{i}"].id for i in (6, 7))
        first_other = next((i for i, e in enumerate(realm.effects) if e[0] != "deactivate"),
                           len(realm.effects))
        assert first_other >= 2  # the two deactivations arrived before any other change
        _no_double_effects(realm)


def test_rate_limit_retry_after_is_honoured(zapp, realm, lms_admin):
    with zapp.app_context():
        accounts = adopt_all(zapp, realm)
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 8")
        worker = provisioner(zapp)
        worker.poll()
        worker.detect_capabilities()
        worker.target.check()  # the REST client reads server_settings once, when built
        realm.rate_limit_next = [7]
        report = worker.deliver_all()
        assert report.retried == 1 and report.blocked
        [pending] = outbox("pending")
        assert (pending.next_attempt_at - clock.now()).total_seconds() >= 6.5
        sent = len(realm.requests)
        clock.advance(3)
        worker.deliver_all()
        assert len(realm.requests) == sent  # still paused: nothing sent
        clock.advance(5)
        _drain(zapp, plan=False)
        assert not accounts["student:8"].is_active
        assert len(_effects(realm, "deactivate")) == 1
