"""Before and after a change, in one run: the bridge at git revision ``--before`` (exported
with ``git archive`` into a temporary folder) and the working tree, each under the same HTTP
server, both running at once on the same databases and pinned to the same core, driven in
alternation (short chunks, before/after order flipped every round) with

- GET /healthz (the floor every request pays),
- a client_credentials grant,
- a refresh grant (rotated, LMS checked),
- a cached context read over HTTP (GET /api/v1/lms/students/<id>/profile with a service token:
  bearer check, cached answer, audit row, JSON).

The cost per request is the CPU of the server's process tree plus PostgreSQL's (schedstat).
Both trees must share the schema (no migration in between).

    .venv/bin/python bench/before_after.py --before <rev> [--after <rev>] [--rounds 5] [--seconds 3]
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

from common import (
    ROOT,
    cluster_cpu,
    conditions,
    database,
    free_port,
    machine,
    percentile,
    record,
    split_cores,
)
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
    if response.status == 503 and response.getheader("Retry-After"):
        raise Shed(f"{path} answered 503: {body[:200]!r}")
    if response.status != 200:
        raise RuntimeError(f"{path} answered {response.status}: {body[:200]!r}")


class Shed(RuntimeError):
    """A 503 with Retry-After: the bridge shed the request (LMS bulkhead) on purpose."""


def side_works(port: int, auth: str, rp_auth: str, tokens: list[str]) -> dict[str, list]:
    """The four kinds of request against the server on ``port``, one step per client thread
    (each refresh thread rotates its own token family)."""
    token = post_token(port, auth, {"grant_type": "client_credentials",
                                    "scope": "lms.context"})["access_token"]

    def refresher(i):
        def step():
            tokens[i] = post_token(port, rp_auth, {
                "grant_type": "refresh_token", "refresh_token": tokens[i]})["refresh_token"]
        return step

    threads = len(tokens)
    return {
        "GET /healthz": [lambda: get_health(port)] * threads,
        "client_credentials": [lambda: post_token(port, auth, {
            "grant_type": "client_credentials", "scope": "lms.context"})] * threads,
        "refresh_token": [refresher(i) for i in range(threads)],
        "cached context read": [lambda: get_json(
            port, "/api/v1/lms/students/1/profile", token)] * threads,
    }


def before_flag(args) -> str:
    return f" --before-server '{args.before_server}'" if args.before_server else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision to compare against")
    parser.add_argument("--after", default="",
                        help="git revision to measure (default: the working tree); lets a "
                             "commit be measured while the tree changes")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--server", choices=list(SERVERS), default="gunicorn sync")
    parser.add_argument("--before-server", choices=list(SERVERS), default=None,
                        help="serve the --before tree under another server (default: --server)")
    parser.add_argument("--label", default="")
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    cores = split_cores()
    if cores:
        os.sched_setaffinity(0, cores[0])
    before_tree = export(args.before)
    after_tree = export(args.after) if args.after else ROOT
    try:
        with database(50) as (env, _counts):
            env = {**env, "IDP_OIDC_REFRESH_TOKEN_LIFETIME": str(30 * 86400)}
            service, rp, tokens = setup_clients(env, 2 * args.threads)
            auth, rp_auth = basic(*service), basic(*rp)
            pg_url = env["IDP_DATABASE_URL"]
            ports = {"before": int(env["BENCH_PORT"]), "after": free_port()}
            trees = {"before": before_tree, "after": after_tree}
            figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
            core = cores[1] if cores else None
            before_server = args.before_server or args.server
            with serve(env, before_server, ports["before"], core, root=before_tree) as before, \
                    serve(env, args.server, ports["after"], core, root=after_tree) as after:
                pids = {"before": before, "after": after}
                works = {side: side_works(port, auth, rp_auth,
                                          tokens[i * args.threads:(i + 1) * args.threads])
                         for i, (side, port) in enumerate(ports.items())}
                for side in trees:  # warm-up: imports, pools, caches
                    for steps in works[side].values():
                        drive(0.5, steps)
                for n in range(args.rounds):
                    for work in works["before"]:
                        for side in (["before", "after"] if n % 2 == 0 else ["after", "before"]):
                            cpu0, pg0 = tree_cpu(pids[side]), cluster_cpu(pg_url)
                            count, _elapsed = drive(args.seconds, works[side][work])
                            server = 1000 * (tree_cpu(pids[side]) - cpu0) / count
                            pg = 1000 * (cluster_cpu(pg_url) - pg0) / count
                            figures.setdefault((side, work), []).append((server, pg))
                    print(f"  round {n + 1} of {args.rounds} done", flush=True)
    finally:
        shutil.rmtree(before_tree, ignore_errors=True)
        if after_tree is not ROOT:
            shutil.rmtree(after_tree, ignore_errors=True)
    head = subprocess.run(["git", "rev-parse", "--short", args.after or "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    after_flag = f" --after {args.after}" if args.after else ""
    lines = [f"{args.label + '. ' if args.label else ''}Machine: {machine()}. Date: "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {conditions()}. Command: "
             f"`.venv/bin/python bench/before_after.py --before {args.before}{after_flag} --rounds "
             f"{args.rounds} --seconds {args.seconds:g} --server '{args.server}'"
             f"{before_flag(args)}` (after = "
             f"{'revision' if args.after else 'working tree at'} {head}).", "",
             "| request | before: server + PostgreSQL CPU ms (median) | after | "
             "after ÷ before, total CPU per request: median (range) |", "|---|---|---|---|"]
    for work in ("GET /healthz", "client_credentials", "refresh_token", "cached context read"):
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
