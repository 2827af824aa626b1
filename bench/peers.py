"""The bridge side by side with the leading certified provider (issue 15).

- OIDC token endpoint: the bridge (one worker process of the server ``--server`` names, by
  default the shipped launcher as bench/oidc.py runs it; CPU of its whole process tree) against
  panva's ``oidc-provider`` for Node (one process) with a PostgreSQL adapter
  (bench/peers/pg_adapter.mjs: one durable row per artefact, looked up by a digest of the
  token, synchronous commit as the server's default), both on loopback, both storing in the
  same embedded PostgreSQL cluster, both checking the LMS ``students`` table on refresh.
  Rounds are interleaved (bridge, peer, peer, bridge, ...) for client_credentials and for
  refresh_token (rotated on both sides, no ID token on either); each side's cost is its
  server's CPU plus the CPU every PostgreSQL process used meanwhile (read from
  /proc/<pid>/task/*/schedstat). The figure compared is requests per core-second =
  requests / (server CPU + PostgreSQL CPU); the ratio bridge ÷ peer is taken per round.
- SAML: a Response for Zulip built and signed in-process (Assertion and Response signed,
  RSA-SHA256, the same attributes), the bridge's build_response against samlify, interleaved.

The npm packages are installed into a temporary folder (never into the project), at the
versions pinned below. Both servers share one core; the client and PostgreSQL the others.

    .venv/bin/python bench/peers.py [--rounds 5] [--seconds 4] [--threads 4] [--append]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
from oidc import basic, drive, post_token, setup_clients
from servers import SERVERS, SHIPPED, serve, tree_cpu

NPM_PINS = ["oidc-provider@9.13.3", "samlify@2.13.1", "pg@8.23.1"]
PEERS = Path(__file__).resolve().parent / "peers"
PEER_SERVICE = ("bench-service", "bench-service-secret-0123456789abcdef0123")
PEER_RP = ("bench-rp", "bench-rp-secret-0123456789abcdef0123456789")


@contextmanager
def node_modules():
    """A temporary folder with the pinned npm packages; removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    try:
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--no-save",
                        "--prefix", str(folder), *NPM_PINS],
                       check=True, capture_output=True)
        yield folder / "node_modules"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def create_database(admin_url: str, name: str) -> str:
    import psycopg2

    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


@contextmanager
def peer_server(modules: Path, env: dict, families: int):
    """oidc-provider on loopback; yields (port, pid, seeded refresh tokens)."""
    port = free_port()
    peer_env = {**os.environ, "NODE_PATH": str(modules), "PEER_PORT": str(port),
                "PEER_DATABASE_URL": create_database(env["IDP_DATABASE_URL"], "peer"),
                "LMS_DATABASE_URL": env["LMS_ADMIN_DATABASE_URL"],
                "PEER_FAMILIES": str(families), "PEER_SUBJECTS": "1,2,3,4",
                "NODE_ENV": "production"}
    proc = subprocess.Popen(["node", str(PEERS / "oidc_server.mjs")], env=peer_env,
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError("oidc-provider did not start")
        yield port, proc.pid, json.loads(line)["refresh_tokens"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def one_round(pid: int, pg_url: str, seconds: float, steps: list) -> dict:
    server0, pg0 = tree_cpu(pid), cluster_cpu(pg_url)
    count, elapsed = drive(seconds, steps)
    server, pg = tree_cpu(pid) - server0, cluster_cpu(pg_url) - pg0
    return {"count": count, "server_ms": 1000 * server / count, "pg_ms": 1000 * pg / count,
            "per_core": count / (server + pg), "per_second": count / elapsed}


def refresher(port: int, auth: str, tokens: list, i: int):
    def step():
        tokens[i] = post_token(port, auth, {"grant_type": "refresh_token",
                                            "refresh_token": tokens[i]})["refresh_token"]
    return step


def saml_rounds(env: dict, modules: Path, rounds: int, count: int, core: set | None) -> list:
    """Per round: (bridge CPU ms, samlify CPU ms) per signed Response, one after the other."""
    from saml import signing_inputs

    from idp import clock, create_app
    from idp.saml.messages import build_response

    app = create_app(env)
    facts, key, _document = signing_inputs(app)
    folder = Path(tempfile.mkdtemp(prefix="bench-saml-"))
    (folder / "key.pem").write_text(key.private_pem)
    (folder / "cert.pem").write_text(key.certificate_pem)
    node_env = {**os.environ, "NODE_PATH": str(modules)}
    saved = os.sched_getaffinity(0)
    results = []
    try:
        for _ in range(30):  # warm-up
            build_response(facts, key, now=clock.now())
        for _ in range(rounds):
            if core:
                os.sched_setaffinity(0, core)
            t0 = time.process_time()
            for _ in range(count):
                build_response(facts, key, now=clock.now())
            bridge = 1000 * (time.process_time() - t0) / count
            os.sched_setaffinity(0, saved)
            out = subprocess.run(
                ["taskset", "-c", ",".join(map(str, core or saved)), "node",
                 str(PEERS / "saml_sign.mjs"), str(count), str(folder / "key.pem"),
                 str(folder / "cert.pem")], env=node_env, check=True, capture_output=True,
                text=True).stdout
            peer = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
            if peer["signatures"] != 2:
                raise RuntimeError(f"samlify signed {peer['signatures']} elements, not 2")
            results.append((bridge, peer["cpu_ms"]))
    finally:
        os.sched_setaffinity(0, saved)
        shutil.rmtree(folder, ignore_errors=True)
    return results


def summary(name: str, bridge: list[dict], peer: list[dict]) -> str:
    ratios = [b["per_core"] / p["per_core"] for b, p in zip(bridge, peer, strict=True)]

    def med(side, key):
        return percentile([r[key] for r in side], 50)

    return (f"| {name} | {med(bridge, 'server_ms'):.2f} + {med(bridge, 'pg_ms'):.2f} ms | "
            f"{med(peer, 'server_ms'):.2f} + {med(peer, 'pg_ms'):.2f} ms | "
            f"{med(bridge, 'per_core'):.0f} / {med(peer, 'per_core'):.0f} | "
            f"**{percentile(ratios, 50):.2f}** ({min(ratios):.2f}–{max(ratios):.2f}) |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=4.0, help="per side, grant and round")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--saml-responses", type=int, default=200, help="per side and round")
    parser.add_argument("--server", choices=list(SERVERS), default=SHIPPED,
                        help="the HTTP server the bridge runs under (bench/servers.py)")
    parser.add_argument("--append", action="store_true",
                        help="append the figures to docs/benchmarks.md")
    args = parser.parse_args()

    cores = split_cores()
    if cores:  # before PostgreSQL starts, so that it inherits the client's cores
        os.sched_setaffinity(0, cores[0])
    print("installing the pinned npm packages into a temporary folder ...", flush=True)
    with node_modules() as modules, database(200) as (env, _counts):
        env = {**env, "IDP_OIDC_REFRESH_TOKEN_LIFETIME": str(30 * 86400)}
        pg_url = env["IDP_DATABASE_URL"]
        print("registering clients and running code flows ...", flush=True)
        service, rp, bridge_tokens = setup_clients(env, args.threads)
        bridge_port = int(env["BENCH_PORT"])
        results = {"client_credentials": ([], []), "refresh_token": ([], [])}
        with serve(env, args.server, bridge_port, cores[1] if cores else None) as bridge_pid, \
                peer_server(modules, env, args.threads) as (peer_port, peer_pid, peer_tokens):
            if cores:
                os.sched_setaffinity(peer_pid, cores[1])
            sides = {
                "bridge": (bridge_pid, {
                    "client_credentials": [lambda: post_token(
                        bridge_port, basic(*service),
                        {"grant_type": "client_credentials", "scope": "lms.context"})]
                    * args.threads,
                    "refresh_token": [refresher(bridge_port, basic(*rp), bridge_tokens, i)
                                      for i in range(args.threads)]}),
                "peer": (peer_pid, {
                    "client_credentials": [lambda: post_token(
                        peer_port, basic(*PEER_SERVICE),
                        {"grant_type": "client_credentials", "scope": "lms.context"})]
                    * args.threads,
                    "refresh_token": [refresher(peer_port, basic(*PEER_RP), peer_tokens, i)
                                      for i in range(args.threads)]}),
            }
            for _pid, steps in sides.values():  # warm-up: JIT, imports, pools
                for grant in results:
                    drive(1.0, steps[grant])
            for n in range(args.rounds):
                order = ["bridge", "peer"] if n % 2 == 0 else ["peer", "bridge"]
                for grant, (bridge_runs, peer_runs) in results.items():
                    for side in order:
                        pid, steps = sides[side]
                        run = one_round(pid, pg_url, args.seconds, steps[grant])
                        (bridge_runs if side == "bridge" else peer_runs).append(run)
                        print(f"  round {n + 1} {grant} {side}: {run['per_core']:.0f}/core-s "
                              f"({run['server_ms']:.2f} + {run['pg_ms']:.2f} ms)", flush=True)
        saml = saml_rounds(env, modules, args.rounds, args.saml_responses,
                           cores[1] if cores else None)

    saml_ratios = [peer / bridge for bridge, peer in saml]
    lines = [
        f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{conditions()}. Command: `.venv/bin/python "
        f"bench/peers.py --rounds {args.rounds} --seconds {args.seconds:g} --threads "
        f"{args.threads} --server '{args.server}'`. Peers: {', '.join(NPM_PINS)}, "
        f"Node {node_version()}.",
        "",
        "| work | bridge CPU per request (server + PostgreSQL), median | peer | "
        "requests per core-second, bridge / peer (median) | bridge ÷ peer, median (range) |",
        "|---|---|---|---|---|",
        summary("client_credentials grant", *results["client_credentials"]),
        summary("refresh_token grant (rotated, LMS checked)", *results["refresh_token"]),
        "",
        f"SAML Response built and signed in-process (both signatures, RSA-SHA256): bridge "
        f"{percentile([b for b, _ in saml], 50):.2f} ms CPU, samlify "
        f"{percentile([p for _, p in saml], 50):.2f} ms; the bridge is "
        f"**{percentile(saml_ratios, 50):.1f}× cheaper** (range {min(saml_ratios):.1f}–"
        f"{max(saml_ratios):.1f}×, {args.rounds} interleaved rounds of "
        f"{args.saml_responses}).",
    ]
    record("Side by side with oidc-provider and samlify (bench/peers.py)", args.append, lines)
    return 0


def node_version() -> str:
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    sys.exit(main())
