"""A delivering worker process killed with SIGKILL while Zulip is answering its send: the
message had reached Zulip; the next delivery finds it there and does not send it again. Then
the other case: killed before the send, the nudge is sent once after restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from idp.extensions import db
from idp.nudges.delivery import _claim
from idp.nudges.models import Nudge
from tests.nudges.test_nudges import run, send_all

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling a condition with a deadline


def test_sigkill_mid_send_neither_loses_nor_doubles(napp, env, nudge_env, findings, zulip,
                                                    tmp_path):
    realm, _ = zulip
    first = run(napp)
    assert first.nudges + first.digests == 4
    db.session.commit()
    realm.delay = 30.0  # Zulip records the first message, then is slow to answer
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "nudge", "deliver"],
        env={**os.environ, **env, **nudge_env}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(realm.messages) == 1, 60, "the worker's first send")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    realm.delay = 0.0
    killed = realm.messages[0]["to"]
    db.session.expire_all()
    claimed = [n for n in db.session.scalars(select(Nudge)) if n.claimed_at is not None]
    assert len(claimed) == 1 and claimed[0].status == "queued"
    for _ in range(3):  # after the kill: reconcile, then the rest
        send_all(napp)
    db.session.expire_all()
    assert {n.status for n in db.session.scalars(select(Nudge))} == {"sent"}
    assert len(realm.messages) == 4  # none doubled
    assert [m["to"] for m in realm.messages].count(killed) == 1
    nudge = db.session.get(Nudge, claimed[0].id)
    assert nudge.zulip_message_id == realm.messages[0]["id"]


def test_a_send_interrupted_before_zulip_got_it_goes_out_once(napp, findings, zulip):
    realm, _ = zulip
    run(napp)
    nudge = db.session.scalars(select(Nudge).order_by(Nudge.id)).first()
    send_all(napp, limit=0)  # releases into the outbox, sends nothing
    assert realm.messages == []
    _claim(nudge.id)  # what a worker killed between its claim and the HTTP call leaves
    for _ in range(3):
        send_all(napp)
    assert len(realm.messages) == 4
    assert len(realm.to(realm.messages[0]["to"])) == 1
