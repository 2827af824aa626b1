"""Bulkhead under a slow LMS (issue #11 item 6): with the LMS answering every query after 2 s,
work that does not need the LMS (/healthz, client-credentials grants) must stay within 3× its
normal p95, and LMS-bound requests beyond the concurrency limit must get a quick 503 with
``Retry-After`` instead of queueing.

Starts an embedded PostgreSQL with a demo LMS (fast hashes), puts a loopback TCP proxy between
the bridge and the LMS that holds every byte the LMS sends for ``--delay`` seconds (0 in the
baseline phase), serves the app with the shipped server (deploy/serve.py), 4 workers of 4
threads as the shipped unit runs it, and for each phase (LMS fast, then LMS slow):

- ``--clients`` threads sign in over and over (GET /login, POST /login with the real password:
  the POST reads the LMS), counting answers by status, 503s with ``Retry-After``, latencies;
- two probe threads time GET /healthz and a client-credentials grant, one after the other.

Prints p50/p95 per phase and the ratio slow ÷ normal p95. Everything is loopback, the run is
bounded (``--seconds`` per phase) and every process it starts is stopped at the end. The
throttle is lifted (one address signs in thousands of times); nothing else differs from the
defaults.

    .venv/bin/python bench/bulkhead.py [--clients 100] [--seconds 20] [--delay 2] [--append]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import http.client
import multiprocessing
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from urllib.parse import urlencode

from common import (
    ROOT,
    conditions,
    database,
    free_port,
    machine,
    percentile,
    record,
    shipped_server,
    wait_healthy,
)
from oidc import basic

TARGET_RATIO = 3.0
PASSWORD = "lms-demo-2026"


class DelayProxy:
    """A loopback TCP proxy, in a process of its own (the load generator's threads would starve
    it of the GIL), to PostgreSQL's Unix socket ``upstream`` (the embedded server listens on no
    TCP port); every chunk the server sends reaches the client ``delay`` seconds after it
    arrived (order kept), so each LMS query answers late."""

    def __init__(self, upstream: str):
        self.upstream, self.port = upstream, free_port()
        self._delay = multiprocessing.Value("d", 0.0)
        self.ready = multiprocessing.Event()
        self.process = multiprocessing.Process(target=self._run, daemon=True)

    @property
    def delay(self) -> float:
        return self._delay.value

    @delay.setter
    def delay(self, seconds: float) -> None:
        self._delay.value = seconds

    def __enter__(self) -> DelayProxy:
        self.process.start()
        if not self.ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.join(timeout=5)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1",
                                                          self.port))
        self.ready.set()
        self.loop.run_forever()

    async def _connection(self, client_reader, client_writer) -> None:
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(self.upstream)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(self._pipe(client_reader, up_writer, delayed=False),
                             self._pipe(up_reader, client_writer, delayed=True),
                             return_exceptions=True)

    async def _pipe(self, reader, writer, *, delayed: bool) -> None:
        queue: asyncio.Queue = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                if (wait := due - self.loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                await queue.put((self.loop.time() + (self.delay if delayed else 0.0), data))
        except OSError:
            pass
        await queue.put(None)
        await sender


def register_service(env: dict) -> tuple[str, str]:
    from idp import create_app
    from idp.extensions import db
    from idp.oidc.clients import create_client

    app = create_app(env)
    with app.app_context():
        service = create_client(name="bench-service", redirect_uris=[],
                                grant_types=["client_credentials"], scopes=["lms.context"])
        db.session.commit()
        return service.client.client_id, service.secret


def timed(port: int, method: str, path: str, body: str | None = None,
          headers: dict | None = None) -> tuple[int, float, bool]:
    """(status, seconds, has Retry-After) of one request on a fresh connection; status 0 for a
    connection failure or timeout."""
    t0 = time.perf_counter()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status, time.perf_counter() - t0, "Retry-After" in response.headers
    except OSError:
        return 0, time.perf_counter() - t0, False


def phase(port: int, clients: int, seconds: float, service: tuple[str, str]) -> dict:
    """Sign-in load from ``clients`` threads plus the two probes for ``seconds``."""
    import re

    import requests

    csrf = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
    stop = time.monotonic() + seconds
    lock = threading.Lock()
    logins: list[tuple[int, float, bool]] = []
    probes: dict[str, list[float]] = {"healthz": [], "client_credentials": []}
    probe_status: Counter = Counter()
    base = f"http://127.0.0.1:{port}"

    def sign_in(n: int) -> None:
        while time.monotonic() < stop:
            session = requests.Session()
            try:
                page = session.get(base + "/login", timeout=60)
                token = csrf.search(page.text).group(1)
                t0 = time.perf_counter()
                answer = session.post(base + "/login", allow_redirects=False, timeout=60, data={
                    "csrf_token": token, "login": f"student{1 + n % 4}", "password": PASSWORD,
                    "next": "/"})
                result = (answer.status_code, time.perf_counter() - t0,
                          "Retry-After" in answer.headers)
            except (requests.RequestException, AttributeError):
                result = (0, 0.0, False)
            finally:
                session.close()
            with lock:
                logins.append(result)

    grant = urlencode({"grant_type": "client_credentials", "scope": "lms.context"})
    grant_headers = {"Authorization": basic(*service),
                     "Content-Type": "application/x-www-form-urlencoded"}

    def probe(name: str, method: str, path: str, body, headers) -> None:
        while time.monotonic() < stop:
            status, took, _ = timed(port, method, path, body, headers)
            probe_status[(name, status)] += 1
            if status == 200:
                probes[name].append(took)
            time.sleep(0.05)

    threads = [threading.Thread(target=sign_in, args=(n,)) for n in range(clients)]
    threads += [threading.Thread(target=probe, args=("healthz", "GET", "/healthz", None, None)),
                threading.Thread(target=probe, args=("client_credentials", "POST",
                                                     "/oauth/token", grant, grant_headers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"logins": logins, "probes": probes, "probe_status": probe_status,
            "seconds": seconds}


def summary(result: dict) -> dict:
    logins = result["logins"]
    statuses = Counter(status for status, _t, _r in logins)
    busy = [t for status, t, retry in logins if status == 503 and retry]
    done = [t for status, t, _r in logins if status in (302, 401)]
    out = {"statuses": dict(sorted(statuses.items())),
           "busy_503": len(busy), "busy_503_without_retry_after":
           sum(1 for status, _t, retry in logins if status == 503 and not retry),
           "busy_p95": percentile(busy, 95) if busy else None,
           "answered_p50": percentile(done, 50) if done else None,
           "per_second": len(logins) / result["seconds"]}
    for name, values in result["probes"].items():
        out[name] = (percentile(values, 50), percentile(values, 95), len(values)) \
            if values else (float("inf"), float("inf"), 0)
    out["probe_failures"] = {f"{n} {s}": c for (n, s), c in result["probe_status"].items()
                             if s != 200}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--delay", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--append", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args()

    from sqlalchemy.engine import make_url

    with database(students=200) as (env, _counts):
        lms = make_url(env["LMS_DATABASE_URL"])
        socket_path = next(path for path in glob.glob(f"{lms.query['host']}/.s.PGSQL.*")
                           if not path.endswith(".lock"))
        env = {**env, "IDP_THROTTLE_ACCOUNT_FAILURES": "1000000",
               "IDP_THROTTLE_IP_FAILURES": "1000000", "IDP_LOG_LEVEL": "ERROR"}
        service = register_service(env)
        with DelayProxy(socket_path) as proxy:
            env["LMS_DATABASE_URL"] = lms.set(host="127.0.0.1", port=proxy.port, query={}) \
                .render_as_string(hide_password=False)
            port = int(env["BENCH_PORT"])
            errors = tempfile.TemporaryFile("w+")
            server = subprocess.Popen(shipped_server(port, workers=args.workers), cwd=ROOT,
                                      env=env, stdout=errors, stderr=subprocess.STDOUT)
            try:
                wait_healthy(port, server, "deploy/serve.py")
                print(f"baseline: LMS fast, {args.clients} clients, {args.seconds:.0f} s",
                      flush=True)
                normal = summary(phase(port, args.clients, args.seconds, service))
                proxy.delay = args.delay
                time.sleep(0.5)
                print(f"slow: every LMS reply {args.delay:.1f} s late", flush=True)
                slow = summary(phase(port, args.clients, args.seconds, service))
            finally:
                server.terminate()
                try:
                    server.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    server.kill()
                    server.wait()
                errors.seek(0)
                log = errors.read()
                respawns = log.count("Respawning worker")

    def ms(value) -> str:
        return "–" if value is None else f"{value * 1000:.0f} ms"

    lines = [f"- machine: {machine()}; {conditions()}",
             f"- command: `.venv/bin/python bench/bulkhead.py --clients {args.clients} "
             f"--seconds {args.seconds:.0f} --delay {args.delay:g} --workers {args.workers}` "
             f"(the shipped server, deploy/serve.py: {args.workers} granian workers of 4 "
             f"threads; throttle lifted; other settings default)"]
    verdict = True
    for name in ("healthz", "client_credentials"):
        ratio = slow[name][1] / normal[name][1]
        verdict &= ratio <= TARGET_RATIO
        lines.append(f"- {name}: LMS fast p50 {ms(normal[name][0])} p95 {ms(normal[name][1])} "
                     f"(n={normal[name][2]}); LMS slow p50 {ms(slow[name][0])} p95 "
                     f"{ms(slow[name][1])} (n={slow[name][2]}); slow ÷ normal p95 "
                     f"{ratio:.1f}× (target ≤ {TARGET_RATIO:g}×)")
    for label, figures in (("LMS fast", normal), ("LMS slow", slow)):
        lines.append(f"- POST /login, {label}: {figures['per_second']:.0f}/s, statuses "
                     f"{figures['statuses']}, 503 with Retry-After {figures['busy_503']} "
                     f"(p95 {ms(figures['busy_p95'])}), 503 without "
                     f"{figures['busy_503_without_retry_after']}, answered p50 "
                     f"{ms(figures['answered_p50'])}; probe failures "
                     f"{figures['probe_failures'] or 'none'}")
    lines.append(f"- workers that died and were respawned: {respawns}")
    verdict &= slow["busy_503"] > 0 and not slow["busy_503_without_retry_after"]
    lines.append(f"- verdict: {'met' if verdict else 'NOT met'}")
    record("Bulkhead under a slow LMS (bench/bulkhead.py)", args.append, lines)
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
