"""Metrics that add up across workers: one scrape of one replica counts the requests all of its
workers answered (prometheus_client multiprocess mode, set up by the shipped unit and
deploy/serve.py), also after a worker was killed and replaced. The shipped alert rules and
scrape config pass promtool."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.helpers import ShippedServer, wait_for

from .topology import DEPLOY

_HEALTHZ = re.compile(r'^idp_http_requests_total\{endpoint="ops.healthz",status="200"\} '
                      r'([0-9.e+]+)$', re.M)


def _healthz_count(replica: str) -> float:
    match = _HEALTHZ.search(requests.get(replica + "/metrics", timeout=10).text)
    return float(match.group(1)) if match else 0.0


def test_one_scrape_sees_the_requests_of_every_worker(deployment):
    replica = deployment.replicas[0]
    before = _healthz_count(replica)

    def hit(_n: int) -> int:
        # A new connection each time, so the kernel spreads them over the workers' sockets.
        return requests.get(replica + "/healthz", timeout=10,
                            headers={"Connection": "close"}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(hit, range(200))) == {200}
    assert _healthz_count(replica) - before == 200
    metric_dir = deployment.metrics_dirs[0]
    writers = {path.name.rsplit("_", 1)[-1] for path in metric_dir.glob("counter_*.db")}
    assert len(writers) >= 2, writers    # the 200 requests really were spread over workers


def test_a_killed_worker_is_replaced_its_requests_still_count_and_its_gauges_go(env, tmp_path):
    """SIGKILL (no hook runs, as after the OOM killer): granian starts another worker, the
    dead one's counters still add up in the next scrape, its live gauges are gone."""
    with ShippedServer(env, tmp_path) as server:
        wait_for(lambda: len(server.worker_pids()) == 4, 60, "four workers")
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(lambda _n: requests.get(
                server.base + "/healthz", timeout=10,
                headers={"Connection": "close"}).status_code, range(100))) == {200}
        before = _healthz_count(server.base)
        counted = {int(path.name.removesuffix(".db").rsplit("_", 1)[-1])
                   for path in server.metrics_dir.glob("counter_*.db")}
        victim = sorted(counted & set(server.worker_pids()))[0]
        assert (server.metrics_dir / f"gauge_livemax_{victim}.db").exists()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: victim not in server.worker_pids()
                 and len(server.worker_pids()) == 4, 60, "the killed worker replaced")
        assert _healthz_count(server.base) == before       # its requests still count
        assert (server.metrics_dir / f"counter_{victim}.db").exists()
        assert not (server.metrics_dir / f"gauge_livemax_{victim}.db").exists()
        assert requests.get(server.base + "/healthz", timeout=10).status_code == 200
    assert "Respawning worker" in server.output()


@pytest.mark.parametrize("kind, name", [("rules", "alerts.yml"), ("config", "prometheus.yml")])
def test_promtool_accepts_the_shipped_prometheus_files(kind, name):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: ./scripts/test installs it (apt: prometheus)")
    result = subprocess.run([promtool, "check", kind, name], cwd=DEPLOY / "prometheus",
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_metric_the_alert_rules_read_is_one_the_bridge_exports(app):
    """A renamed metric must not leave an alert that can never fire (it happened once: the
    LMS breaker's gauge changed name when the context API's own breaker went)."""
    import idp.provisioning.metrics  # noqa: F401  (the worker's metrics, scraped from the web app)
    from idp.metrics import REGISTRY

    exported = {sample_name for family in REGISTRY.collect()
                for sample_name in {family.name, *(s.name for s in family.samples)}}
    exported |= {name + suffix for name in exported
                 for suffix in ("_total", "_bucket", "_count", "_sum")}
    read = set(re.findall(r"\bidp_[a-z_]+", (DEPLOY / "prometheus" / "alerts.yml").read_text()))
    assert read and read <= exported, sorted(read - exported)
