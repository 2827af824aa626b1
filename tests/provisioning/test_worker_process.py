"""Real worker processes: one delivers, a second stands by; the deliverer is killed with
SIGKILL mid-batch; the other takes over. Nothing is lost, nothing is applied twice in effect.
Also the advisory lock in-process and the worker thread with LISTEN/NOTIFY."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from idp.extensions import db
from tests.helpers import stop_process

from .conftest import FAST_RETRY, adopt_all, outbox, provisioner, wait_for
from .test_versions import FLAVOURS
from .zulip_double import BOT_EMAIL, BOT_KEY, SCIM_TOKEN

ROOT = Path(__file__).resolve().parents[2]
LENIENT = {"PROVISION_GUARD_PERCENT": "100", "PROVISION_GUARD_MAX": "100000"}


def _start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "w")  # noqa: SIM115 - closed by the OS when the process ends
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "provision", "run"],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


@pytest.mark.parametrize("flavour", sorted(FLAVOURS))
def test_sigkill_mid_batch_then_standby_takes_over(app, make_app, env, zulip, realm,
                                                   lms_admin, tmp_path, flavour):
    target, realm.version = FLAVOURS[flavour]
    zulip_env = ({"ZULIP_SCIM_TOKEN": SCIM_TOKEN} if target == "scim" else
                 {"ZULIP_BOT_EMAIL": BOT_EMAIL, "ZULIP_BOT_API_KEY": BOT_KEY})
    zulip_env.update(ZULIP_URL=zulip.url, **FAST_RETRY)
    worker_env = {**os.environ, **env, **zulip_env, **LENIENT, "IDP_LOG_LEVEL": "INFO",
                  "PROVISION_INTERVAL": "3600", "PROVISION_ADOPT_INTERVAL": "3600"}
    lenient = make_app(**zulip_env, **LENIENT)
    with lenient.app_context():
        accounts = adopt_all(lenient, realm)
        targets = [accounts[f"student:{n}"] for n in range(20, 40)
                   if accounts[f"student:{n}"].is_active]
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = false WHERE id BETWEEN 20 AND 39")
        plan = provisioner(lenient).poll()
        assert plan.deactivations == len(targets) >= 10
        assert len(outbox("pending")) == len(targets)
        db.session.remove()
    realm.delay = 0.15  # each request takes a while, so the kill lands mid-batch
    first = _start_worker(worker_env, tmp_path / "first.log")
    second = None
    try:
        wait_for(lambda: "now delivers" in (tmp_path / "first.log").read_text(), 30,
                 "the first worker to take the lock")
        second = _start_worker(worker_env, tmp_path / "second.log")
        wait_for(lambda: len(realm.effects_of("deactivate")) >= 4, 30, "some deliveries")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        with lenient.app_context():
            assert outbox("pending"), "the kill should land mid-batch"
        assert "now delivers" not in (tmp_path / "second.log").read_text()
        wait_for(lambda: "now delivers" in (tmp_path / "second.log").read_text(), 30,
                 "the standby to take over")
        with lenient.app_context():
            def drained():
                db.session.remove()
                return not outbox("pending")
            wait_for(drained, 60, "the outbox to drain")
            statuses = {a.status for a in outbox() if a.action == "deactivate"}
            assert statuses == {"done"}
    finally:
        realm.delay = 0
        first.kill() if first.poll() is None else None
        if second is not None:
            stop_process(second)
    effects = [e[1] for e in realm.effects_of("deactivate")]
    assert sorted(effects) == sorted(a.id for a in targets)  # each exactly once in effect
    assert all(not a.is_active for a in targets)
    sent = [r for r in realm.requests if r[1] in ("PATCH", "DELETE")]
    assert len(sent) >= len(targets)


def test_only_one_worker_holds_the_delivery_lock(scim_app):
    with scim_app.app_context():
        first, second = provisioner(scim_app), provisioner(scim_app)
        assert first.lock.try_acquire()
        assert not second.lock.try_acquire()
        with pytest.raises(RuntimeError, match="another worker holds the delivery lock"):
            second.apply_once()
        first.lock.release()
        assert second.lock.try_acquire()
        second.lock.release()


def test_worker_thread_with_notify_delivers_within_seconds(app, make_app, scim_env, realm,
                                                           lms_admin):
    sql = (ROOT / "docs" / "sql" / "lms_notify.sql").read_text()
    with lms_admin.cursor() as cur:
        cur.execute(sql)
    fast = make_app(**scim_env, PROVISION_NOTIFY="true", PROVISION_INTERVAL="3600")
    with fast.app_context():
        accounts = adopt_all(fast, realm)
    stop = threading.Event()

    def work():
        with fast.app_context():
            provisioner(fast).run(stop)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        # the worker has read the LMS once (startup poll); now a change arrives by NOTIFY only
        wait_for(lambda: any(r.trigger == "poll" for r in _runs_in(fast)), 20,
                 "the worker's first poll")  # adopt_all's own run is "manual"
        wait_for(lambda: _listening(lms_admin), 20, "the worker to LISTEN")
        with lms_admin.cursor() as cur:
            cur.execute("UPDATE students SET is_active = false WHERE id = 1")
        wait_for(lambda: not accounts["student:1"].is_active, 10, "the NOTIFY fast path")
    finally:
        stop.set()
        thread.join(timeout=15)
    assert not thread.is_alive()
    with fast.app_context():
        assert [r.trigger for r in _runs() if r.status == "applied"][-1] == "notify"


def _runs_in(application) -> list:
    with application.app_context():
        return _runs()


def _listening(lms_admin) -> bool:
    with lms_admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                    "'lms-zulip-bridge' AND query LIKE 'LISTEN%%'")
        return cur.fetchone()[0] > 0


def _runs():
    from .conftest import runs

    db.session.remove()
    return runs()
