"""A school may connect Zulip for nudges only, for provisioning only, or for both.

Nudges only: ``ZULIP_URL`` and the nudge bot (``ZULIP_NUDGE_BOT_*``) without a provisioning
target (no ``ZULIP_SCIM_TOKEN``, no ``ZULIP_BOT_*``): the bridge starts, provisioning plans
only and says why, nudges are sent (user ids asked from Zulip by email, as no ledger row
knows them), and every surface (``provision status``, ``/admin/provisioning``,
``/admin/nudges``, ``flask nudge run``, ``flask provision run``) works and tells the truth.
Provisioning only is the same the other way round. Real misconfigurations stop start-up with
one line each.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from idp.config import ConfigError
from idp.extensions import db
from idp.nudges.models import Nudge
from idp.nudges.settings import load_nudge_settings
from idp.provisioning.models import ProvisionRun
from idp.provisioning.settings import load_provision_settings
from tests.helpers import stop_process, stored_bearer, wait_for

from .conftest import STUDENT_IDS
from .messages_double import BOT_EMAIL, BOT_KEY
from .test_nudges import run, send_all
from .test_pages import signed_in

ROOT = Path(__file__).resolve().parents[2]
SCIM_TOKEN = "scim-token-for-tests-0123456789"
URL = "https://chat.example.edu"
NUDGE_BOT = {"ZULIP_NUDGE_BOT_EMAIL": BOT_EMAIL, "ZULIP_NUDGE_BOT_API_KEY": BOT_KEY}


@pytest.fixture
def nudge_env(zulip) -> dict[str, str]:
    """Nudges only: no provisioning target at all."""
    _, server = zulip
    return {"ZULIP_URL": server.url, **NUDGE_BOT, "IDP_NUDGE_QUIET_HOURS": "off",
            "IDP_NUDGE_RETRY_BASE": "1"}


# -- the settings of each combination ----------------------------------------------------

@pytest.mark.parametrize("env, target, sends", [
    ({}, "none", False),                                                   # neither
    ({"ZULIP_URL": URL, **NUDGE_BOT}, "none", True),                       # nudges only
    ({"ZULIP_URL": URL, "ZULIP_SCIM_TOKEN": SCIM_TOKEN}, "scim", False),   # provisioning only
    ({"ZULIP_URL": URL, "ZULIP_BOT_EMAIL": "admin-bot@x.edu",
      "ZULIP_BOT_API_KEY": "k"}, "rest", False),                           # provisioning (REST)
    ({"ZULIP_URL": URL, "ZULIP_SCIM_TOKEN": SCIM_TOKEN, **NUDGE_BOT}, "scim", True),  # both
])
def test_each_combination_is_read(env, target, sends):
    assert load_provision_settings(env).target == target
    assert load_nudge_settings(env).sends is sends


@pytest.mark.parametrize("changes, first_word", [
    # ZULIP_URL with nothing that uses it: neither a provisioning target nor a nudge bot
    ({"ZULIP_URL": URL}, "ZULIP_URL"),
    # half a nudge bot, with or without a provisioning target
    ({"ZULIP_URL": URL, "ZULIP_NUDGE_BOT_EMAIL": BOT_EMAIL}, "ZULIP_NUDGE_BOT_EMAIL"),
    ({"ZULIP_URL": URL, "ZULIP_SCIM_TOKEN": SCIM_TOKEN, "ZULIP_NUDGE_BOT_API_KEY": BOT_KEY},
     "ZULIP_NUDGE_BOT_EMAIL"),
    # half a REST target beside a nudge bot is still half a target
    ({"ZULIP_URL": URL, **NUDGE_BOT, "ZULIP_BOT_EMAIL": "admin-bot@x.edu"},
     "ZULIP_BOT_API_KEY"),
    # credentials without the server
    ({**NUDGE_BOT}, "ZULIP_NUDGE_BOT_EMAIL"),
    ({"ZULIP_SCIM_TOKEN": SCIM_TOKEN}, "ZULIP_URL"),
    # a bad ZULIP_URL is named once, although three features read it
    ({"ZULIP_URL": "javascript:alert(1)", **NUDGE_BOT}, "ZULIP_URL"),
    ({"ZULIP_URL": "https://chat.example.edu/zulip", **NUDGE_BOT}, "ZULIP_URL"),
])
def test_each_misconfiguration_stops_start_with_one_line(make_app, changes, first_word):
    with pytest.raises(ConfigError) as error:
        make_app(**changes)
    message = str(error.value)
    assert message.startswith(first_word) and "\n" not in message, message


# -- nudges only, end to end ---------------------------------------------------------------

def test_nudges_only_sends_nudges_and_provisioning_plans_only(napp, findings, zulip):
    realm, _ = zulip
    settings = napp.extensions["provisioning"]["settings"]
    assert settings.plan_only and settings.target == "none"
    first = run(napp)
    assert first.status == "released" and (first.nudges, first.digests) == (3, 1)
    report = send_all(napp)
    assert (report.delivered, report.failed) == (4, 0)
    # no ledger row: the recipient's user id came from Zulip, by email
    assert len(realm.to(STUDENT_IDS + 2)) == 1


def test_nudges_only_status_surfaces_tell_the_truth(napp, findings):
    out = napp.test_cli_runner().invoke(args=["provision", "status"])
    assert out.exit_code == 0, out.output
    assert "target: none" in out.output
    assert "no provisioning target" in out.output and "ZULIP_SCIM_TOKEN" in out.output
    assert "ZULIP_URL unset" not in out.output and "no Zulip configured" not in out.output
    apply = napp.test_cli_runner().invoke(args=["provision", "apply", "--once"])
    assert apply.exit_code == 1 and "no provisioning target" in apply.output
    staff = signed_in(napp, "staff1")
    page = staff.get("/admin/provisioning")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "no provisioning target" in text and "no Zulip configured" not in text
    nudges = staff.get("/admin/nudges")
    assert nudges.status_code == 200 and BOT_EMAIL in nudges.get_data(as_text=True)
    sync = staff.post("/api/v1/lms/sync/students", json={"apply": True},
                      headers=stored_bearer(napp, "lms.sync"))
    assert sync.status_code == 409 and sync.json["error"] == "plan_only"
    assert "no provisioning target" in sync.json["error_description"]


def test_nudges_only_plan_only_run_says_why(napp, findings):
    import threading

    from tests.provisioning.conftest import provisioner

    worker = provisioner(napp)
    assert worker.target is None
    stop = threading.Event()
    stop.set()  # one step only
    worker._step(stop)
    [plan_run] = db.session.scalars(db.select(ProvisionRun)).all()
    assert plan_run.status == "plan-only"
    assert "no provisioning target" in plan_run.reason and "ZULIP_URL" not in plan_run.reason


def _worker(args: list[str], env: dict, nudge_env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", *args],
                            env={**os.environ, **env, **nudge_env}, cwd=ROOT,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)  # noqa: SIM115


def test_nudges_only_workers_run(napp, env, nudge_env, findings, zulip, tmp_path):
    """``flask nudge run`` sends; ``flask provision run`` plans only and says why; both stop
    cleanly on SIGTERM."""
    realm, _ = zulip
    nudger = _worker(["nudge", "run"], env, nudge_env, tmp_path / "nudge.log")
    provisioner = _worker(["provision", "run"], env, nudge_env, tmp_path / "provision.log")
    try:
        wait_for(lambda: len(realm.messages) == 4, 60, "the nudge worker's four messages")
        wait_for(lambda: "plan-only" in (tmp_path / "provision.log").read_text(), 60,
                 "the provisioning worker's plan-only pass")
    finally:
        for process in (nudger, provisioner):
            stop_process(process)  # SIGTERM
    assert nudger.returncode == 0, (tmp_path / "nudge.log").read_text()
    assert provisioner.returncode == 0, (tmp_path / "provision.log").read_text()
    log = (tmp_path / "provision.log").read_text()
    assert "no provisioning target" in log and "ZULIP_URL unset" not in log
    db.session.expire_all()
    assert {n.status for n in db.session.scalars(db.select(Nudge))} == {"sent"}


# -- provisioning only ---------------------------------------------------------------------

def test_provisioning_only_plans_nudges_without_sending(make_app, app, zulip):
    _, server = zulip
    built = make_app(ZULIP_URL=server.url, ZULIP_SCIM_TOKEN=SCIM_TOKEN)
    assert built.extensions["provisioning"]["settings"].target == "scim"
    assert built.extensions["nudges"].sender is None
    with built.app_context():
        out = built.test_cli_runner().invoke(args=["nudge", "plan"])
        assert out.exit_code == 0, out.output
        assert "no nudge bot configured" in out.output
        deliver = built.test_cli_runner().invoke(args=["nudge", "deliver"])
        assert deliver.exit_code == 1 and "ZULIP_NUDGE_BOT_EMAIL" in deliver.output
        staff = signed_in(built, "staff1")
        page = staff.get("/admin/nudges").get_data(as_text=True)
        assert "none configured" in page
        status = built.test_cli_runner().invoke(args=["provision", "status"])
        assert status.exit_code == 0 and "target: scim" in status.output
