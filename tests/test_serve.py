"""deploy/serve.py, the shipped web server's launcher, and the metrics it leaves to /metrics:
defaults it sets, files it removes, and what a dead worker's metrics become (prometheus_client
multiprocess mode: counters keep counting, live gauges go)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from idp.metrics import drop_dead_gauges, scrape_registry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def serve():
    spec = importlib.util.spec_from_file_location("deploy_serve", ROOT / "deploy" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_bulkhead_defaults_to_every_thread_but_one_and_a_directory_of_the_master(serve):
    environ: dict[str, str] = {}
    made = serve.share_lms_bulkhead(environ, workers=4, threads=4)
    assert environ["LMS_MAX_CONCURRENT"] == "15"
    assert environ["LMS_MAX_CONCURRENT_PER_WORKER"] == "3"
    assert made == environ["LMS_BULKHEAD_DIR"] and made.endswith(f"-{os.getpid()}")
    chosen = {"LMS_MAX_CONCURRENT": "6", "LMS_BULKHEAD_DIR": "/run/x",
              "LMS_MAX_CONCURRENT_PER_WORKER": "2"}
    assert serve.share_lms_bulkhead(chosen, workers=4, threads=4) is None
    assert chosen == {"LMS_MAX_CONCURRENT": "6", "LMS_BULKHEAD_DIR": "/run/x",
                      "LMS_MAX_CONCURRENT_PER_WORKER": "2"}
    single: dict[str, str] = {}
    serve.share_lms_bulkhead(single, workers=1, threads=1)
    assert single["LMS_MAX_CONCURRENT"] == single["LMS_MAX_CONCURRENT_PER_WORKER"] == "1"


def test_metric_files_of_dead_processes_are_removed_at_start(serve, tmp_path):
    dead, alive = _dead_pid(), os.getpid()
    for name in (f"counter_{dead}.db", f"gauge_livemax_{dead}.db", f"counter_{alive}.db",
                 "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    removed = serve.remove_dead_metric_files(str(tmp_path))
    assert sorted(removed) == sorted([f"counter_{dead}.db", f"gauge_livemax_{dead}.db"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{alive}.db", "notes.txt"]


@pytest.mark.parametrize("bind", ["8000", ":8000", "127.0.0.1:x", "127.0.0.1"])
def test_a_bind_without_host_and_port_is_refused(serve, bind):
    with pytest.raises(SystemExit):
        serve.parse_args(["--workers", "1", "--bind", bind])


def test_the_shipped_unit_runs_the_launcher():
    unit = (ROOT / "deploy" / "systemd" / "lms-zulip-bridge.service").read_text()
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    assert start.split()[1:3] == ["/opt/lms-zulip-bridge/deploy/serve.py", "--workers"]


def test_a_dead_workers_live_gauge_goes_and_its_counter_still_counts(tmp_path, monkeypatch):
    """A worker sets the LMS breaker gauge to 2 (open) and counts 5 requests, then dies
    without any hook running (as under SIGKILL): the next scrape still counts its 5 requests
    but no longer reports its breaker as open."""
    worker = ("from idp.metrics import HTTP_REQUESTS, LMS_BREAKER_STATE\n"
              "LMS_BREAKER_STATE.set(2)\n"
              "HTTP_REQUESTS.labels('ops.healthz', '200').inc(5)\n"
              "import os; print(os.getpid())\n")
    proc = subprocess.run([sys.executable, "-c", worker], capture_output=True, text=True,
                          cwd=ROOT, check=True,
                          env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    pid = int(proc.stdout)
    assert (tmp_path / f"gauge_livemax_{pid}.db").exists()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = generate_latest(scrape_registry()).decode()
    assert 'idp_http_requests_total{endpoint="ops.healthz",status="200"} 5.0' in text
    assert not re.search(r"^idp_lms_breaker_state(\{[^}]*\})? 2\.0$", text, re.M)
    assert not (tmp_path / f"gauge_livemax_{pid}.db").exists()
    assert drop_dead_gauges(str(tmp_path)) == []    # nothing left to drop


def test_a_bad_configuration_stops_the_server_before_any_worker(env):
    """One clear message and a failed start, not workers dying and being respawned."""
    bad = {**os.environ, **env, "IDP_SECRET_KEY": "short"}
    bad.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.run([sys.executable, str(ROOT / "deploy" / "serve.py"), "--workers", "2",
                           "--bind", "127.0.0.1:1"], capture_output=True, text=True,
                          cwd=ROOT, env=bad, timeout=120)
    assert proc.returncode == 1
    assert "configuration error" in proc.stderr and "IDP_SECRET_KEY is too short" in proc.stderr
    assert "Spawning worker" not in proc.stdout + proc.stderr


def test_environment_variables_named_like_headers_do_not_reach_requests(serve, monkeypatch):
    """granian copies os.environ into every request's environ: HTTP_PROXY set for outgoing
    calls would otherwise look like a "Proxy" header the client sent."""
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    app = serve.load_app("wsgiref.simple_server:demo_app")   # echoes its environ

    def body(environ: dict) -> str:
        return b"".join(app(environ, lambda status, headers: None)).decode()

    inherited = {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://proxy.internal:3128"}
    assert "HTTP_PROXY" not in body(dict(inherited))
    sent = {**inherited, "HTTP_PROXY": "sent-by-the-client"}
    assert "HTTP_PROXY = 'sent-by-the-client'" in body(sent)
