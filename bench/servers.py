"""Which HTTP server to run the bridge under, chosen by figures (issue 15): the same app, one
worker process each, under the shipped launcher (deploy/serve.py: granian WSGI with its
settings), gunicorn's sync and gthread workers and plain granian WSGI, interleaved rounds of
GET /healthz (the floor every request pays) and a client_credentials grant. The cost is the CPU
of the whole server process tree (arbiter and worker; /proc/<pid>/task/*/schedstat) plus
PostgreSQL's, per request; each request opens its own connection, as a token client or a proxy
without upstream keep-alive does.

    .venv/bin/python bench/servers.py [--rounds 5] [--seconds 3] [--threads 4] [--append]
        [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from common import (
    ROOT,
    cluster_cpu,
    conditions,
    cpu_seconds,
    database,
    machine,
    percentile,
    pin_process,
    record,
    shipped_server,
    split_cores,
    wait_healthy,
)
from oidc import basic, drive, get_health, post_token, setup_clients

SHIPPED = "shipped: deploy/serve.py (granian WSGI, 4 threads)"
SERVERS = {
    SHIPPED: ["deploy/serve.py"],  # the unit's launcher and settings (bench/common.py)
    "gunicorn sync": ["-m", "gunicorn", "-w", "1", "--backlog", "256", "--log-level", "warning"],
    "gunicorn gthread (4 threads)": ["-m", "gunicorn", "-w", "1", "-k", "gthread",
                                     "--threads", "4", "--log-level", "warning"],
    "granian WSGI (1 blocking thread)": ["-m", "granian", "--interface", "wsgi",
                                         "--workers", "1", "--blocking-threads", "1",
                                         "--log-level", "warning", "--no-ws"],
    "granian WSGI (4 blocking threads)": ["-m", "granian", "--interface", "wsgi",
                                          "--workers", "1", "--blocking-threads", "4",
                                          "--log-level", "warning", "--no-ws"],
}


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children") as fh:
                todo.extend(int(child) for child in fh.read().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def tree_cpu(pid: int) -> float:
    total = 0.0
    for member in tree(pid):
        try:
            total += cpu_seconds(member)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


@contextmanager
def serve(env: dict, name: str, port: int, core: set | None, root: Path = ROOT):
    """The app from the source tree ``root`` under server ``name``; yields the server's pid
    once /healthz answers; its processes pinned to ``core``."""
    args = list(SERVERS[name])
    if name == SHIPPED:
        args = shipped_server(port, workers=1)[1:]
        args[0] = str(root / "deploy" / "serve.py")
    elif args[1] == "gunicorn":
        args += ["-b", f"127.0.0.1:{port}", "wsgi:app"]
    else:
        args += ["--host", "127.0.0.1", "--port", str(port), "wsgi:app"]
    proc = subprocess.Popen([sys.executable, *args], cwd=root,
                            env={**env, "PYTHONPATH": str(root)})
    try:
        wait_healthy(port, proc, name)
        if core:
            for member in tree(proc.pid):
                pin_process(member, core)
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=40)  # both servers give requests in flight 30 s to finish
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--append", action="store_true")
    parser.add_argument("--only", action="append", choices=list(SERVERS),
                        help="measure only these servers (repeatable; default all)")
    args = parser.parse_args()
    servers = args.only or list(SERVERS)
    cores = split_cores()
    if cores:
        os.sched_setaffinity(0, cores[0])
    with database(50) as (env, _counts):
        service, _rp, _tokens = setup_clients(env, 1)
        auth = basic(*service)
        pg_url = env["IDP_DATABASE_URL"]
        figures: dict[tuple[str, str], list[float]] = {}
        port = int(env["BENCH_PORT"])  # one port for every server, in turn
        works = {
            "GET /healthz": lambda: get_health(port),
            "client_credentials": lambda: post_token(
                port, auth, {"grant_type": "client_credentials", "scope": "lms.context"}),
        }
        for n in range(args.rounds):
            names = servers if n % 2 == 0 else list(reversed(servers))
            for name in names:
                with serve(env, name, port, cores[1] if cores else None) as pid:
                    for work, step in works.items():
                        drive(0.5, [step] * args.threads)  # warm-up
                        cpu0, pg0 = tree_cpu(pid), cluster_cpu(pg_url)
                        count, _elapsed = drive(args.seconds, [step] * args.threads)
                        server = 1000 * (tree_cpu(pid) - cpu0) / count
                        pg = 1000 * (cluster_cpu(pg_url) - pg0) / count
                        figures.setdefault((name, work), []).append(server)
                        figures.setdefault((name, work + " pg"), []).append(pg)
                        print(f"  round {n + 1} {name} {work}: {server:.3f} + {pg:.3f} ms",
                              flush=True)
    lines = [f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             f", {conditions()}. Command: `.venv/bin/python bench/servers.py --rounds "
             f"{args.rounds} --seconds {args.seconds:g} --threads {args.threads}"
             + "".join(f" --only '{name}'" for name in args.only or ()) + "`; one worker "
             "process per server, pinned to one core; a new connection per request.", "",
             "| server | GET /healthz, server CPU ms per request, median (range) | "
             "client_credentials, server + PostgreSQL CPU ms, median (range of server) |",
             "|---|---|---|"]
    for name in servers:
        health = figures[(name, "GET /healthz")]
        grant = figures[(name, "client_credentials")]
        pg = figures[(name, "client_credentials pg")]
        lines.append(f"| {name} | {percentile(health, 50):.3f} ({min(health):.3f}–"
                     f"{max(health):.3f}) | {percentile(grant, 50):.3f} + "
                     f"{percentile(pg, 50):.3f} ({min(grant):.3f}–{max(grant):.3f}) |")
    record("HTTP servers (bench/servers.py)", args.append, lines)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    sys.exit(main())
