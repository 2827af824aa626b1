"""Two provisioning workers started with the shipped unit's command line (one per replica)
on one bridge database: one holds the delivery lock (PROVISION_LOCK_KEY) and delivers, the
other stands by, and takes over when the first stops."""

from __future__ import annotations

import os

import psycopg2

from tests.helpers import wait_for

from .topology import ROOT, Processes, unit_command

LOCK_KEY = 31022199


def _lock_holders(dsn: str) -> list[int]:
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND objid = %s", (LOCK_KEY,))
        return [row[0] for row in cur.fetchall()]


def _tried_in_vain(dsn: str) -> bool:
    """A backend other than the holder last ran pg_try_advisory_lock: a worker standing by."""
    holders = _lock_holders(dsn)
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE "
                    "'SELECT pg_try_advisory_lock%%'")
        return any(pid not in holders for (pid,) in cur.fetchall())


def test_one_worker_delivers_the_other_stands_by(deployment, tmp_path):
    command, unit_env = unit_command("lms-zulip-bridge-worker.service", port=0)
    env = {**os.environ, **deployment.env, **unit_env, "PROVISION_LOCK_KEY": str(LOCK_KEY),
           # A Zulip that does not answer: the workers still compete for the lock.
           "ZULIP_URL": "https://127.0.0.1:9", "ZULIP_SCIM_TOKEN": "t" * 32,
           "PROVISION_INTERVAL": "3600", "PROVISION_ADOPT_INTERVAL": "3600",
           "PROVISION_HTTP_TIMEOUT": "1"}
    dsn = deployment.env["IDP_DATABASE_URL"]
    processes = Processes()
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    try:
        first = processes.start(command, log=logs[0], cwd=ROOT, env=env)
        wait_for(lambda: "now delivers" in logs[0].read_text(), 60, "worker A to deliver")
        second = processes.start(command, log=logs[1], cwd=ROOT, env=env)
        wait_for(lambda: second.poll() is not None or _tried_in_vain(dsn), 60,
                 "worker B to try the lock")
        assert second.poll() is None and len(_lock_holders(dsn)) == 1
        assert "now delivers" not in logs[1].read_text()
        first.terminate()
        first.wait(timeout=30)
        wait_for(lambda: "now delivers" in logs[1].read_text(), 60, "worker B to take over")
        assert len(_lock_holders(dsn)) == 1
    finally:
        processes.stop_all()
