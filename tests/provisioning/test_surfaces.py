"""What people and operators see: the login path, the status page, metrics and the CLI."""

from __future__ import annotations

from idp import clock
from idp.events import person_deprovisioned
from idp.extensions import db
from idp.outbox import OutboxMessage
from idp.provisioning.models import LedgerAccount, ProvisionRun

from ..helpers import client_login
from .conftest import adopt_all, ledger, outbox, provisioner, runs


def _seed_ledger(subject: str, email: str, *, active: bool = True) -> None:
    db.session.add(LedgerAccount(subject=subject, zulip_user_id=None, email=email,
                                 full_name="X", role="member", groups=[], active=active,
                                 origin="adopted", adopted_at=clock.now()))
    db.session.commit()


def test_inactive_person_signing_in_is_deprovisioned_at_once(app, client):
    seen = []

    def receiver(sender, subject, **_):
        seen.append(subject)

    person_deprovisioned.connect(receiver)
    try:
        with app.app_context():
            _seed_ledger("student:5", "student5@example.edu")
        response = client_login(client, "student5")
        assert response.status_code == 401  # the same answer as a wrong password
        response.close()  # the signal is sent once the response has gone out
        with app.app_context():
            assert ledger("student:5").active is False
            [action] = outbox()
            assert (action.subject, action.action, action.status) == (
                "student:5", "deactivate", "pending")
            assert runs()[-1].trigger == "login"
        assert seen == ["student:5"]
        # a second attempt queues nothing more
        client_login(client, "student5").close()
        with app.app_context():
            assert len(outbox()) == 1
    finally:
        person_deprovisioned.disconnect(receiver)


def test_login_path_ignores_people_outside_the_ledger(app, client):
    client_login(client, "student5").close()
    with app.app_context():
        assert outbox() == [] and runs() == []


def test_status_page_is_staff_only(app, client):
    response = client.get("/admin/provisioning")
    assert response.status_code == 302 and "/login?next=%2Fadmin%2Fprovisioning" in \
        response.headers["Location"]
    client_login(client, "student1")
    assert client.get("/admin/provisioning").status_code == 403
    client_login(client, "mentor1")
    assert client.get("/admin/provisioning").status_code == 403


def test_status_page_shows_runs_pending_held_failures_lag(app, client):
    with app.app_context():
        now = clock.now()
        db.session.add_all([
            ProvisionRun(id=7, started_at=now, trigger="poll", status="held", people_seen=60,
                         managed=60, deactivations=9, counts={"deactivate": 9},
                         reason="9 deactivations are 15.0% of 60 managed accounts"),
            OutboxMessage(batch_id=7, ordering_key="student:9", kind="provision.rename",
                          channel="zulip", priority=50, idempotency_key="t:1", payload={},
                          status="failed", attempts=1, next_attempt_at=now,
                          last_error="rename: HTTP 409 Email address already in use",
                          created_at=now, changed_at=now),
            OutboxMessage(batch_id=7, ordering_key="student:8", kind="provision.deactivate",
                          channel="zulip", priority=0, idempotency_key="t:2", payload={},
                          status="pending", attempts=2, next_attempt_at=now, created_at=now,
                          changed_at=now)])
        db.session.commit()
    client_login(client, "staff1")
    response = client.get("/admin/provisioning")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "provision approve 7" in page and "15.0%" in page
    assert "HTTP 409 Email address already in use" in page
    assert '<dd id="pending">1 (1 retrying)</dd>' in page


def test_metrics_count_actions_by_type_and_outcome(scim_app, realm, lms_admin):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = false WHERE id = 1")
        provisioner(scim_app).apply_once()
    text = scim_app.test_client().get("/metrics").get_data(as_text=True)
    assert 'idp_provision_actions_total{action="deactivate",outcome="delivered"}' in text
    assert 'idp_provision_lag_seconds_count{action="deactivate"}' in text
    assert 'idp_provision_runs_total{status="applied"}' in text


def test_cli_plan_prints_a_table_and_changes_nothing(scim_app, realm, lms_admin):
    with scim_app.app_context():
        adopt_all(scim_app, realm)
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = false WHERE id = 1; "
                        "UPDATE students SET email = 'new2@example.edu' WHERE id = 2")
        before = (len(runs()), len(outbox()), len(realm.requests))
        db.session.remove()
    result = scim_app.test_cli_runner().invoke(args=["provision", "plan"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split()[:2] == ["student:1", "deactivate"] for line in lines)
    assert any("student2@example.edu -> new2@example.edu" in line for line in lines)
    assert "total: 2 actions (deactivate=1, rename=1)" in result.output
    with scim_app.app_context():
        assert (len(runs()), len(outbox()), len(realm.requests)) == before
        assert ledger("student:1").active is True


def test_cli_plan_when_the_lms_is_down(make_app):
    down = make_app(LMS_DATABASE_URL="postgresql://idp_reader:@127.0.0.1:9/lms")
    result = down.test_cli_runner().invoke(args=["provision", "plan"])
    assert result.exit_code == 1 and "nothing planned" in result.output


def test_cli_apply_once_and_status(scim_app, realm):
    with scim_app.app_context():
        from .conftest import populate_from_lms

        populate_from_lms(realm)
    runner = scim_app.test_cli_runner()
    result = runner.invoke(args=["provision", "apply", "--once"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("adopted 62;")
    result = runner.invoke(args=["provision", "status"])
    assert result.exit_code == 0
    assert "target: scim; managed accounts: 62" in result.output
    assert "pending actions: 0" in result.output and "applied" in result.output


def test_cli_apply_needs_a_zulip(app):
    result = app.test_cli_runner().invoke(args=["provision", "apply", "--once"])
    assert result.exit_code == 1 and "no Zulip configured" in result.output
    result = app.test_cli_runner().invoke(args=["provision", "apply"])
    assert result.exit_code == 2


def test_worker_without_zulip_runs_plan_only(app, caplog):
    import logging
    import threading

    from .conftest import wait_for

    stop = threading.Event()

    def work():
        with app.app_context():
            provisioner(app).run(stop)

    caplog.set_level(logging.INFO, logger="idp.provisioning.worker")
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        wait_for(lambda: "plan-only: 62 people read" in caplog.text, 20, "a plan-only pass")
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive() and "runs plan-only" in caplog.text
    with app.app_context():
        # nothing queued; one "plan-only" run says what would be done
        assert [r.status for r in runs()] == ["plan-only"] and outbox() == []


def test_deprovisioning_ends_bridge_sessions_at_once(scim_app, realm, lms_admin):
    from idp.models import LoginSession

    browser = scim_app.test_client()
    assert client_login(browser, "student1").status_code == 302
    with scim_app.app_context():
        adopt_all(scim_app, realm)
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = false WHERE id = 1")
        realm.fail_next = [503] * 5  # Zulip struggling: local revocation must not wait for it
        worker = provisioner(scim_app)
        worker.poll()
        worker.deliver_all()
        assert outbox("pending")  # not yet in Zulip ...
        db.session.expire_all()
        sessions = db.session.scalars(db.select(LoginSession).where(
            LoginSession.subject == "student:1")).all()
        assert sessions and all(s.revoked_at is not None for s in sessions)  # ... but ended here


def test_plan_only_results_are_shown(app, client, lms_admin):
    import threading

    from idp.lms.directory import get_directory
    from idp.provisioning.worker import Provisioner
    from tests.helpers import client_login

    with lms_admin.cursor() as cur:
        cur.execute("UPDATE students SET is_active = false WHERE id = 1")
    with app.app_context():
        settings = app.extensions["provisioning"]["settings"]
        worker = Provisioner(session=db.session, directory=get_directory(), settings=settings,
                             target=None, engine=db.engine)
        stop = threading.Event()
        stop.set()  # one step only
        worker._step(stop)
        [run] = db.session.scalars(db.select(ProvisionRun)).all()
        assert run.status == "plan-only" and run.people_seen > 0
    client_login(client, "staff1")
    page = client.get("/admin/provisioning").get_data(as_text=True)
    assert "plan-only" in page and "nothing is sent" in page


def test_cli_names_an_unreachable_bridge_database_in_one_line(make_app):
    dead = make_app(IDP_DATABASE_URL="postgresql://idp@127.0.0.1:9/bridge",
                    IDP_DB_CONNECT_TIMEOUT="1")
    result = dead.test_cli_runner().invoke(args=["provision", "status"])
    assert result.exit_code == 1
    assert "bridge database unavailable: 127.0.0.1:9/bridge: OperationalError" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
