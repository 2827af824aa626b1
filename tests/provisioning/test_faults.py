"""Faults between the bridge and Zulip: down then back, 5xx, timeouts, refusals, a restart.
Every action is delivered exactly once in effect, in order per person."""

from __future__ import annotations

from idp import clock
from idp.extensions import db

from .conftest import adopt_all, ledger, outbox, provisioner


def _sql(lms_admin, statement: str) -> None:
    with lms_admin.cursor() as cur:
        cur.execute(statement)


def _drain(application, rounds: int = 50, step: float = 1.0):
    """Deliver until nothing is pending, moving the clock past each backoff (bounded)."""
    worker = provisioner(application)
    for _ in range(rounds):
        worker.deliver_all()
        if not outbox("pending"):
            return
        clock.advance(step)
    raise AssertionError("outbox not drained")


def _deactivated_once(realm, accounts, subjects):
    ids = [accounts[s].id for s in subjects]
    effects = [e[1] for e in realm.effects_of("deactivate")]
    assert sorted(effects) == sorted(ids), effects
    assert all(not accounts[s].is_active for s in subjects)


def test_zulip_down_then_back(scim_app, realm, zulip, lms_admin):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id IN (1, 2)")
        zulip.stop()
        plan, _, report = provisioner(scim_app).apply_once()
        assert len(plan.actions) == 2 and report.blocked and report.retried == 1
        pending = outbox("pending")
        assert len(pending) == 2 and "unreachable" in pending[0].last_error
        zulip.start()
        _drain(scim_app)
        _deactivated_once(realm, accounts, ["student:1", "student:2"])
        assert all(a.status == "done" for a in outbox())


def test_server_errors_are_retried_with_backoff(scim_app, make_app, scim_env, realm,
                                                lms_admin):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
    patient = make_app(**{**scim_env, "PROVISION_RETRY_BASE": "10",
                          "PROVISION_RETRY_MAX": "40"})
    with patient.app_context():
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 1")
        worker = provisioner(patient)
        worker.detect_capabilities()  # server_settings read before Zulip starts failing
        realm.fail_next = [500, 502, 503]
        worker.poll()
        worker.deliver_all()
        action = outbox()[-1]
        assert action.status == "pending" and action.attempts == 1
        assert action.next_attempt_at > clock.now()  # backoff, not a busy loop
        assert 9 <= (action.next_attempt_at - clock.now()).total_seconds() <= 11
        worker.deliver_all()
        assert outbox()[-1].attempts == 1  # not yet due
        clock.advance(11)
        worker.deliver_all()
        action = outbox()[-1]
        assert action.attempts == 2  # the second wait doubles
        assert 18 <= (action.next_attempt_at - clock.now()).total_seconds() <= 22
        _drain(patient, step=45)
        action = outbox()[-1]
        assert action.status == "done" and action.attempts == 4
        _deactivated_once(realm, accounts, ["student:1"])


def test_timeouts_retry_and_apply_once(make_app, scim_app, scim_env, realm, lms_admin):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
    impatient = make_app(**{**scim_env, "PROVISION_HTTP_TIMEOUT": "0.2"})
    _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 1")
    with impatient.app_context():
        realm.delay = 0.5  # Zulip applies the change, but answers too late
        provisioner(impatient).apply_once()
        assert "timed out" in outbox()[-1].last_error
        realm.delay = 0
        _drain(impatient)
        _deactivated_once(realm, accounts, ["student:1"])


def test_refused_action_is_recorded_and_does_not_block_the_next(scim_app, realm, lms_admin):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
        realm.add("taken@example.edu", "Someone Else")
        _sql(lms_admin, "UPDATE students SET email = 'taken@example.edu' WHERE id = 1")
        provisioner(scim_app).apply_once()
        failed = outbox("failed")
        assert [(a.subject, a.action) for a in failed] == [("student:1", "rename")]
        assert "409" in failed[0].last_error
        runner = scim_app.test_cli_runner()
        assert f"provision retry {failed[0].id}" in runner.invoke(
            args=["provision", "status"]).output
        taken = realm.by_email("taken@example.edu")
        taken.email = "moved-away@example.edu"  # fixed in Zulip by an administrator
        result = runner.invoke(args=["provision", "retry", str(failed[0].id)])
        assert result.exit_code == 0, result.output
        provisioner(scim_app).deliver_all()
        assert accounts["student:1"].email == "taken@example.edu"
        result = runner.invoke(args=["provision", "retry", str(failed[0].id)])
        assert result.exit_code == 1 and "is done, not failed" in result.output
        assert "no outbox action 999" in runner.invoke(args=["provision", "retry",
                                                             "999"]).output
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 1")
        provisioner(scim_app).apply_once()
        _deactivated_once(realm, accounts, ["student:1"])


def test_gives_up_after_max_attempts(make_app, scim_app, scim_env, realm, lms_admin):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
    stubborn = make_app(**scim_env, PROVISION_MAX_ATTEMPTS="2")
    _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 1")
    with stubborn.app_context():
        realm.fail_next = [500] * 10
        provisioner(stubborn).apply_once()
        clock.advance(5)
        provisioner(stubborn).deliver_all()
        action = outbox()[-1]
        assert (action.status, action.attempts) == ("failed", 2)


def test_deactivation_first_and_a_restart_loses_nothing(make_app, scim_app, scim_env, realm,
                                                        zulip, lms_admin):
    """The name change was planned first, but the deactivation does not wait behind it
    (DESIGN.md: a security action never waits behind a cosmetic one); both arrive once."""
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
        _sql(lms_admin, "UPDATE students SET display_name = 'Zed Zulu' WHERE id = 1")
        zulip.stop()
        provisioner(scim_app).apply_once()
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 1")
        provisioner(scim_app).apply_once()
        assert [a.action for a in outbox("pending")] == ["name", "deactivate"]
        db.session.remove()
    zulip.start()
    restarted = make_app(**scim_env)  # a new process would see the same outbox
    with restarted.app_context():
        _drain(restarted)
        alice = accounts["student:1"]
        mine = [e[0] for e in realm.effects if e[1] == alice.id]
        assert mine[-2:] == ["deactivate", "name"]
        assert ledger("student:1").active is False
