"""LMS queries per 1,000 context reads across 2 replicas × 4 workers, with and without the
shared (Redis) cache level (issue 15).

Two shipped servers (deploy/serve.py), 4 workers each, stand for two replicas; 8 client threads send
1,000 cached-or-not context reads (GET /api/v1/lms/students/<id>/profile with a service token)
over ``--students`` distinct students, alternating between the replicas. The LMS's work is
counted as the transactions its database committed meanwhile (pg_stat_database; the bridge
reads the LMS in autocommit, one statement per transaction). Both modes start from empty caches;
Debian's redis-server runs on a loopback port in a temporary folder.

    .venv/bin/python bench/replicas.py [--reads 1000] [--students 100] [--append]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager

import psycopg2
from before_after import get_json
from common import (
    ROOT,
    conditions,
    database,
    free_port,
    machine,
    record,
    shipped_server,
    wait_healthy,
)
from oidc import basic, post_token, setup_clients


@contextmanager
def redis_server():
    folder = tempfile.mkdtemp(prefix="bench-redis-")
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", folder, "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def replica(env: dict, port: int, workers: int):
    proc = subprocess.Popen(shipped_server(port, workers=workers), cwd=ROOT,
                            env={**env, "PYTHONPATH": str(ROOT)})
    try:
        wait_healthy(port, proc, "deploy/serve.py")
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def lms_transactions(admin_url: str) -> int:
    """Committed transactions of the LMS database, once the counters stop moving (backends
    report their statistics about once a second)."""
    from urllib.parse import urlsplit, urlunsplit

    monitor = urlunsplit(urlsplit(admin_url)._replace(path="/postgres"))  # not counted itself
    previous = None
    while True:
        conn = psycopg2.connect(monitor)
        with conn.cursor() as cur:
            cur.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = 'lms'")
            value = cur.fetchone()[0]
        conn.close()
        if value == previous:
            return value
        previous = value
        time.sleep(1.5)


def run(env: dict, token: str, reads: int, students: int, threads: int) -> int:
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        for port in ports:
            stack.enter_context(replica(env, port, 4))
        admin = env["LMS_ADMIN_DATABASE_URL"]
        before = lms_transactions(admin)
        targets = itertools.cycle(
            [(ports[n % 2], 1 + n % students) for n in range(2 * students)])
        lock = threading.Lock()
        left = [reads]

        def client():
            while True:
                with lock:
                    if left[0] == 0:
                        return
                    left[0] -= 1
                    port, student = next(targets)
                get_json(port, f"/api/v1/lms/students/{student}/profile", token)

        pool = [threading.Thread(target=client) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    # Counted once the replicas have stopped: a backend reports its statistics when it exits,
    # while an idle one may hold them back for up to 10 s (PostgreSQL 15+).
    return lms_transactions(admin) - before


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    with database(max(args.students, 200), attempts_per_student=5) as (env, _), \
            redis_server() as redis_url:
        service, _rp, _tokens = setup_clients(env, 0)
        env.pop("IDP_CONTEXT_REDIS_URL", None)
        results = {}
        for mode, extra in (("in-process only", {}),
                            ("with the shared Redis level", {"IDP_CONTEXT_REDIS_URL":
                                                             redis_url})):
            mode_env = {**env, **extra}
            port = int(env["BENCH_PORT"])
            with replica(mode_env, port, 1):
                token = post_token(port, basic(*service), {
                    "grant_type": "client_credentials", "scope": "lms.context"})["access_token"]
            results[mode] = run(mode_env, token, args.reads, args.students, args.threads)
            print(f"  {mode}: {results[mode]} LMS transactions", flush=True)
    lines = [f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             f", {conditions()}. Command: `.venv/bin/python bench/replicas.py --reads "
             f"{args.reads} --students {args.students} --threads {args.threads}`: 2 replicas × 4 "
             f"shipped-server workers, {args.reads} profile reads over {args.students} students, "
             f"empty caches at the start.", "",
             "| cache | LMS queries (transactions) for the reads | per 1,000 reads |",
             "|---|---|---|"]
    for mode, count in results.items():
        lines.append(f"| {mode} | {count} | {1000 * count / args.reads:.0f} |")
    record("Replicas and the shared cache (bench/replicas.py)", args.append, lines)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    sys.exit(main())
