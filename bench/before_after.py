"""Before and after a change, in one run: the bridge at git revision ``--before`` (exported
with ``git archive`` into a temporary folder) and the working tree, each under the same HTTP
server, started in turn on the same databases, interleaved rounds of

- GET /healthz (the floor every request pays),
- a client_credentials grant,
- a refresh grant (rotated, LMS checked),
- a cached context read over HTTP (GET /api/v1/lms/students/<id>/profile with a service token:
  bearer check, cached answer, audit row, JSON).

The cost per request is the CPU of the server's process tree plus PostgreSQL's (schedstat).
Both trees must share the schema (no migration in between).

    .venv/bin/python bench/before_after.py --before <rev> [--rounds 5] [--seconds 3]
        [--server 'gunicorn sync'] [--label 'what changed'] [--append]
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, cluster_cpu, database, machine, percentile, record, split_cores
from oidc import basic, drive, get_health, post_token, setup_clients
from servers import SERVERS, serve, tree_cpu


def export(revision: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-before-"))
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def get_json(port: int, path: str, token: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}: {body[:200]!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--server", choices=list(SERVERS), default="gunicorn sync")
    parser.add_argument("--label", default="")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    cores = split_cores()
    if cores:
        os.sched_setaffinity(0, cores[0])
    before_tree = export(args.before)
    try:
        with database(50) as (env, _counts):
            env = {**env, "IDP_OIDC_REFRESH_TOKEN_LIFETIME": str(30 * 86400)}
            service, rp, tokens = setup_clients(env, args.threads)
            auth, rp_auth = basic(*service), basic(*rp)
            port = int(env["BENCH_PORT"])
            pg_url = env["IDP_DATABASE_URL"]
            bearer: list[str] = []

            def refresher(i):
                def step():
                    tokens[i] = post_token(port, rp_auth, {
                        "grant_type": "refresh_token",
                        "refresh_token": tokens[i]})["refresh_token"]
                return step

            works = {
                "GET /healthz": [lambda: get_health(port)] * args.threads,
                "client_credentials": [lambda: post_token(port, auth, {
                    "grant_type": "client_credentials", "scope": "lms.context"})] * args.threads,
                "refresh_token": [refresher(i) for i in range(args.threads)],
                "cached context read": [lambda: get_json(
                    port, "/api/v1/lms/students/1/profile", bearer[0])] * args.threads,
            }
            trees = {"before": before_tree, "after": ROOT}
            figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for n in range(args.rounds):
                for side in (["before", "after"] if n % 2 == 0 else ["after", "before"]):
                    with serve(env, args.server, port, cores[1] if cores else None,
                               root=trees[side]) as pid:
                        bearer[:] = [post_token(port, auth, {
                            "grant_type": "client_credentials",
                            "scope": "lms.context"})["access_token"]]
                        for work, steps in works.items():
                            drive(0.5, steps)  # warm-up: imports, pools, caches
                            cpu0, pg0 = tree_cpu(pid), cluster_cpu(pg_url)
                            count, _elapsed = drive(args.seconds, steps)
                            server = 1000 * (tree_cpu(pid) - cpu0) / count
                            pg = 1000 * (cluster_cpu(pg_url) - pg0) / count
                            figures.setdefault((side, work), []).append((server, pg))
                            print(f"  round {n + 1} {side} {work}: {server:.3f} + {pg:.3f} ms",
                                  flush=True)
    finally:
        shutil.rmtree(before_tree, ignore_errors=True)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    lines = [f"{args.label + '. ' if args.label else ''}Machine: {machine()}. Date: "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, taken under load. Command: "
             f"`.venv/bin/python bench/before_after.py --before {args.before} --rounds "
             f"{args.rounds} --seconds {args.seconds:g} --server '{args.server}'` (after = "
             f"working tree at {head}).", "",
             "| request | before: server + PostgreSQL CPU ms (median) | after | "
             "after ÷ before, total CPU per request: median (range) |", "|---|---|---|---|"]
    for work in works:
        before, after = figures[("before", work)], figures[("after", work)]
        ratios = [(a[0] + a[1]) / (b[0] + b[1]) for b, a in zip(before, after, strict=True)]

        def med(side, i):
            return percentile([x[i] for x in side], 50)

        lines.append(f"| {work} | {med(before, 0):.3f} + {med(before, 1):.3f} | "
                     f"{med(after, 0):.3f} + {med(after, 1):.3f} | {percentile(ratios, 50):.2f} "
                     f"({min(ratios):.2f}–{max(ratios):.2f}) |")
    record("Before and after (bench/before_after.py)", args.append, lines)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    sys.exit(main())
