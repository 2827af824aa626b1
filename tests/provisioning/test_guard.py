"""The safety guard: an emptied, unreachable, failing or shrunken LMS never reads as "these
people left"; a run deactivating too many is held until approved."""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.lms.db import LMSUnavailable
from idp.lms.directory import get_directory
from idp.provisioning.runs import ApprovalRefused, approve

from .conftest import adopt_all, ledger, outbox, provisioner, runs


def _sql(lms_admin, statement: str) -> None:
    with lms_admin.cursor() as cur:
        cur.execute(statement)


def test_emptied_lms_is_refused(scim_app, realm, lms_admin):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
        before = list(realm.effects)
        _sql(lms_admin, "DELETE FROM students; DELETE FROM mentors")
        plan, _, report = provisioner(scim_app).apply_once()
        assert plan.refused and report.touched == 0
        assert runs()[-1].status == "refused" and "no people" in runs()[-1].reason
        assert realm.effects == before
        assert ledger("student:1").active is True


def test_unreachable_lms_plans_nothing(scim_app, make_app, scim_env, realm, env):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
    before = list(realm.effects)
    down = make_app(**scim_env, LMS_DATABASE_URL="postgresql://idp_reader:@127.0.0.1:9/lms")
    with down.app_context():
        plan, _, report = provisioner(down).apply_once()
        assert plan is None and report.touched == 0
        assert runs()[-1].status == "failed" and "LMS" in runs()[-1].reason
        assert outbox("pending") == []
    assert realm.effects == before


def test_snapshot_failing_midway_plans_nothing(scim_app, realm, monkeypatch):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
        before = list(realm.effects)
        directory = get_directory()
        real = directory.iter_people

        def broken(*args, **kwargs):
            for n, person in enumerate(real(*args, **kwargs)):
                if n == 10:
                    raise LMSUnavailable("LMS query 'list_people' failed: OperationalError")
                yield person

        monkeypatch.setattr(directory, "iter_people", broken)
        plan, _, report = provisioner(scim_app).apply_once()
        assert plan is None and runs()[-1].status == "failed"
        assert outbox("pending") == [] and realm.effects == before


def test_ten_percent_deactivated_is_held_until_approved(scim_app, realm, lms_admin):
    with scim_app.app_context():
        accounts = adopt_all(scim_app, realm)
        managed = ledger("student:1") and runs()[-1].managed
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id BETWEEN 1 AND 7")
        provisioner(scim_app).apply_once()
        held = runs()[-1]
        assert held.status == "held" and held.deactivations == 6  # student5 already inactive
        assert "PROVISION_GUARD_PERCENT=5" in held.reason and managed
        assert realm.effects_of("deactivate") == []
        assert ledger("student:1").active is True
        # the same situation again keeps the same held run (the id an operator approves)
        provisioner(scim_app).apply_once()
        assert runs()[-1].id == held.id and [r.status for r in runs()].count("held") == 1
        result = scim_app.test_cli_runner().invoke(
            args=["provision", "approve", str(held.id), "--by", "ops"])
        assert result.exit_code == 0, result.output
        provisioner(scim_app).apply_once()
        deactivated = {e[1] for e in realm.effects_of("deactivate")}
        assert deactivated == {accounts[f"student:{n}"].id for n in (1, 2, 3, 4, 6, 7)}
        assert ledger("student:1").active is False
        with pytest.raises(ApprovalRefused, match="approved, not held"):
            approve(db.session, held.id, by="ops")


def test_held_run_superseded_when_the_lms_recovers(scim_app, realm, lms_admin):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
        _sql(lms_admin, "DELETE FROM students WHERE id > 20")
        provisioner(scim_app).apply_once()
        held = runs()[-1]
        assert held.status == "held" and "PROVISION_GUARD" in held.reason
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id = 1")
        # the LMS is still shrunken: a new held run replaces the old one
        provisioner(scim_app).apply_once()
        assert [r.status for r in runs()].count("held") == 1
        assert db.session.get(type(held), held.id).status == "superseded"
        with pytest.raises(ApprovalRefused, match="superseded"):
            approve(db.session, held.id, by="ops")
        assert realm.effects_of("deactivate") == []


def test_guard_limits_are_configurable(scim_app, make_app, scim_env, realm, lms_admin):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
    lenient = make_app(**scim_env, PROVISION_GUARD_PERCENT="50", PROVISION_GUARD_MAX="3")
    _sql(lms_admin, "UPDATE students SET is_active = false WHERE id IN (1, 2, 3)")
    with lenient.app_context():
        provisioner(lenient).apply_once()
        assert runs()[-1].status == "applied"
    _sql(lms_admin, "UPDATE students SET is_active = false WHERE id IN (6, 7, 8, 9)")
    with lenient.app_context():
        provisioner(lenient).apply_once()
        assert runs()[-1].status == "held" and "PROVISION_GUARD_MAX=3" in runs()[-1].reason


def test_approve_errors_are_clear(scim_app):
    result = scim_app.test_cli_runner().invoke(args=["provision", "approve", "999"])
    assert result.exit_code == 1 and "no provisioning run 999" in result.output
    result = scim_app.test_cli_runner().invoke(args=["provision", "approve", "abc"])
    assert result.exit_code == 2 and "not a valid integer" in result.output


def test_held_run_superseded_when_the_lms_comes_back_whole(scim_app, realm, lms_admin):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id BETWEEN 6 AND 12")
        provisioner(scim_app).apply_once()
        held = runs()[-1]
        assert held.status == "held"
        _sql(lms_admin, "UPDATE students SET is_active = true WHERE id BETWEEN 6 AND 12")
        provisioner(scim_app).apply_once()
        db.session.expire_all()
        assert db.session.get(type(held), held.id).status == "superseded"
        assert realm.effects_of("deactivate") == []


def test_many_small_notify_batches_add_up_in_the_guard(make_app, scim_app, scim_env, realm,
                                                      lms_admin):
    from idp.provisioning.notify import Change

    with scim_app.app_context():
        adopt_all(scim_app, realm)
    strict = make_app(**scim_env, PROVISION_GUARD_MAX="2", PROVISION_GUARD_PERCENT="100")
    _sql(lms_admin, "UPDATE students SET is_active = false WHERE id IN (1, 2, 3, 4)")
    with strict.app_context():
        worker = provisioner(strict)
        for n in (1, 2):
            worker.on_changes([Change(f"student:{n}", None)])
        assert [r.status for r in runs()][-2:] == ["applied", "applied"]
        worker.on_changes([Change("student:3", None)])
        assert runs()[-1].status == "held" and runs()[-1].trigger == "notify"
        # the next full snapshot counts the recent NOTIFY deactivations too
        worker.poll()
        assert runs()[-1].status == "held" and runs()[-1].trigger == "poll"
        assert "3 deactivations exceed" in runs()[-1].reason or "4 deactivations" in \
            runs()[-1].reason


def test_repeated_refusals_and_failures_do_not_pile_up(scim_app, make_app, scim_env, realm,
                                                       lms_admin):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
        _sql(lms_admin, "DELETE FROM students; DELETE FROM mentors")
        worker = provisioner(scim_app)
        for _ in range(3):
            worker.poll()
        assert [r.status for r in runs()].count("refused") == 1
        assert runs()[-1].counts == {"repeats": 3}
    down = make_app(**scim_env, LMS_DATABASE_URL="postgresql://idp_reader:@127.0.0.1:9/lms")
    with down.app_context():
        worker = provisioner(down)
        for _ in range(3):
            worker.poll()
        assert [r.status for r in runs()].count("failed") == 1


def test_held_runs_gauge_follows_the_database(scim_app, realm, lms_admin):
    from idp.provisioning.metrics import HELD_RUNS

    with scim_app.app_context():
        adopt_all(scim_app, realm)
        _sql(lms_admin, "UPDATE students SET is_active = false WHERE id BETWEEN 6 AND 12")
        provisioner(scim_app).apply_once()
        assert HELD_RUNS._value.get() == 1
        approve(db.session, runs()[-1].id, by="ops")
        assert HELD_RUNS._value.get() == 0
