"""The shipped web server's own behaviour (deploy/serve.py under the unit's command line):
its access log leaves query strings out; a reload replaces every worker while requests keep
being answered; concurrent requests on
every thread of every worker each get their own answer."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import requests

from tests.helpers import ShippedServer, access_lines, stored_bearer, wait_for


def test_reload_replaces_every_worker_and_never_stops_answering(env, tmp_path):
    with ShippedServer(env, tmp_path) as server:
        wait_for(lambda: len(server.worker_pids()) == 4, 60, "four workers")
        old = set(server.worker_pids())
        assert requests.get(server.base + "/healthz?code=s3cr3t", timeout=10).ok
        wait_for(lambda: ("GET", "/healthz") in {
            (method, path) for _, method, path, _ in access_lines(server.output())}, 10,
            "the access log line")
        assert "s3cr3t" not in server.output()           # query strings are never logged
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


def test_concurrent_requests_on_every_thread_each_get_their_own_answer(deployment, deployed_app,
                                                                     lms):
    """Sixteen people at once on both replicas (4 workers × 4 threads each): every answer is
    the asker's own, and a person is still refused another's profile. (A read beyond a
    worker's LMS share may get the bulkhead's quick 503, never someone else's answer.)"""
    with psycopg2.connect(lms) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM students WHERE is_active ORDER BY id LIMIT 16")
        people = [row[0] for row in cur.fetchall()]
    conn.close()
    neighbour = dict(zip(people, people[1:] + people[:1], strict=True))
    tokens = {i: stored_bearer(deployed_app, "lms.context", f"student:{i}") for i in people}
    barrier = threading.Barrier(len(people))

    def read(i: int) -> tuple[int, str | None, int]:
        replica = deployment.replicas[i % len(deployment.replicas)]
        barrier.wait(timeout=30)
        own = requests.get(f"{replica}/api/v1/lms/students/{i}/profile", headers=tokens[i],
                           timeout=30)
        other = requests.get(f"{replica}/api/v1/lms/students/{neighbour[i]}/profile",
                             headers=tokens[i], timeout=30)
        if own.status_code == 503:
            assert int(own.headers["Retry-After"]) > 0
            return 503, None, other.status_code
        assert own.status_code == 200, own.text[:300]
        return 200, own.json()["student"]["subject"], other.status_code

    with ThreadPoolExecutor(len(people)) as pool:
        results = dict(zip(people, pool.map(read, people), strict=True))
    answered = {i: subject for i, (status, subject, _) in results.items() if status == 200}
    assert answered and all(subject == f"student:{i}" for i, subject in answered.items())
    assert {other for _, _, other in results.values()} <= {403, 404, 503}
