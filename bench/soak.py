"""Memory soak (issue 15): the shipped server with 4 workers, 20 client threads, a few minutes of
mixed traffic (context reads over many students, client-credentials grants, /healthz); prints
each worker's RSS once a minute, and the first worker's tracemalloc growth by allocation site
(bench/soak_app.py), to tell bounded caches filling from a leak.

Also measures, in this process, what one cached student costs (profile, owner, metrics and
batch entries, tracemalloc), from which the ceiling per worker at a given cache size follows.

    .venv/bin/python bench/soak.py [--minutes 4] [--clients 20] [--students 2000] [--append]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from before_after import Shed, get_json
from common import ROOT, conditions, database, machine, record, shipped_server, wait_healthy
from oidc import basic, get_health, post_token, setup_clients


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def workers_of(master: int) -> list[int]:
    with open(f"/proc/{master}/task/{master}/children") as fh:
        return sorted(int(pid) for pid in fh.read().split())


def bytes_per_student(env: dict, students: int) -> float:
    """tracemalloc growth of a ContextService after caching ``students`` profiles."""
    import tracemalloc

    from idp import create_app

    app = create_app(env)
    service = app.extensions["context"].service
    with app.app_context():
        service.profile(1)  # imports, pools
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for student in range(2, students + 2):
            service.owner(student)
            service.profile(student)
        used = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    return used / students


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=4)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    trace = Path(tempfile.mkdtemp(prefix="bench-soak-")) / "trace.txt"
    with database(args.students, attempts_per_student=5) as (env, _):
        service, _rp, _tokens = setup_clients(env, 0)
        auth = basic(*service)
        port = int(env["BENCH_PORT"])
        proc = subprocess.Popen(
            # Worker 1 runs tracemalloc, whose own traces would pass the shipped 512 MiB limit
            # and have it replaced mid-run: this run raises the limit (the only setting changed).
            [*shipped_server(port, workers=4, app="soak_app:app"), "--max-rss", "4096"], cwd=ROOT,
            env={**env, "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}", "SOAK_TRACE_FILE": str(trace)})
        rows: list[list[float]] = []
        try:
            wait_healthy(port, proc, "deploy/serve.py")
            token = post_token(port, auth, {"grant_type": "client_credentials",
                                            "scope": "lms.context"})["access_token"]
            stop = threading.Event()
            errors: list[BaseException] = []
            shed: list[int] = []

            def client(seed: int):
                rnd = random.Random(seed)
                try:
                    while not stop.is_set():
                        pick = rnd.random()
                        if pick < 0.8:
                            try:
                                get_json(port, f"/api/v1/lms/students/"
                                               f"{rnd.randint(1, args.students)}/profile", token)
                            except Shed:
                                shed.append(1)   # counted; a real client retries later
                        elif pick < 0.9:
                            post_token(port, auth, {"grant_type": "client_credentials",
                                                    "scope": "lms.context"})
                        else:
                            get_health(port)
                except BaseException as exc:  # noqa: BLE001  (reported after the run)
                    errors.append(exc)

            threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
            for t in threads:
                t.start()
            pids = workers_of(proc.pid)
            for minute in range(1, args.minutes + 1):
                time.sleep(60)
                rows.append([rss_mb(pid) for pid in pids])
                print(f"  minute {minute}: " + ", ".join(f"{mb:.1f}" for mb in rows[-1])
                      + " MB", flush=True)
            stop.set()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        per_student = bytes_per_student(env, 300)
    traced = trace.read_text() if trace.exists() else "(no trace written)"
    lines = [f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             f", {conditions()}. Command: `.venv/bin/python bench/soak.py --minutes "
             f"{args.minutes} --clients {args.clients} --students {args.students}` (the "
             f"shipped server, 4 workers of 4 threads, `--max-rss 4096` for the traced worker 1; "
             f"80 % context reads over "
             f"{args.students} students, 10 % client-credentials grants, 10 % /healthz).", "",
             "| minute | " + " | ".join(f"worker {n + 1} RSS MB" for n in range(len(rows[0])))
             + " |", "|---" * (len(rows[0]) + 1) + "|"]
    for minute, row in enumerate(rows, 1):
        lines.append(f"| {minute} | " + " | ".join(f"{mb:.1f}" for mb in row) + " |")
    lines += ["", f"Context reads shed by the LMS bulkhead (503 with Retry-After, counted, not "
                  f"retried): {len(shed)}."]
    lines += ["", f"One cached student (owner, profile, metrics, batch entries) costs "
                  f"{per_student / 1024:.1f} KiB of Python heap (tracemalloc, 300 students).",
              "", "First worker's tracemalloc growth since minute 1 (top sites, last snapshot):",
              "", "```", traced.strip().split("minute ")[-1][:3000], "```"]
    record("Memory soak (bench/soak.py)", args.append, lines)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    sys.exit(main())
