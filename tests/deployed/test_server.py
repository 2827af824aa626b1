"""The shipped web server's own behaviour (deploy/serve.py under the unit's command line):
a reload replaces every worker while requests keep being answered."""

from __future__ import annotations

import signal

import requests

from tests.helpers import ShippedServer, wait_for


def test_reload_replaces_every_worker_and_never_stops_answering(env, tmp_path):
    with ShippedServer(env, tmp_path) as server:
        wait_for(lambda: len(server.worker_pids()) == 4, 60, "four workers")
        old = set(server.worker_pids())
        server.proc.send_signal(signal.SIGHUP)            # systemctl reload (ExecReload=)
        answers: list[int] = []

        def replaced() -> bool:
            answers.append(requests.get(server.base + "/healthz", timeout=10).status_code)
            current = set(server.worker_pids())
            return not current & old and len(current) == 4

        wait_for(replaced, 90, "every worker replaced")
        assert set(answers) == {200} and len(answers) > 1
        assert server.proc.poll() is None
    assert "HUP signal received" in server.output()
