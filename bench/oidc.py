"""OIDC token endpoint throughput on one worker, beside raw RS256 signing cost.

Starts its own embedded PostgreSQL with a demo LMS (fast hashes), registers a service client
(client credentials) and a relying party (code + refresh), serves the app with one worker of
the shipped server (deploy/serve.py), and drives it over HTTP from a few client threads:

- client-credentials grants/s (client auth by keyed hash, one opaque token stored as a hash);
- refresh grants/s (rotation: find the family, check the person in the LMS, new token pair);
- RS256 signatures/s in this process with the bridge's key (what a signed token would cost).

"per core" divides by the CPU seconds the worker process used (from /proc), so the figure does
not depend on how much of the machine the load generator takes. Target: >= 600 grants/s per
core for each grant type.

    .venv/bin/python bench/oidc.py [--seconds 10] [--threads 4] [--append]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

from common import ROOT, cpu_seconds, database, machine, one_worker

TARGET = 600


def setup_clients(env: dict, families: int) -> tuple[tuple[str, str], tuple[str, str], list]:
    """Register the clients in-process and run ``families`` real code flows (login form,
    authorization endpoint, token endpoint) with the Flask test client for refresh tokens."""
    sys.path.insert(0, str(ROOT))
    from idp import create_app
    from idp.extensions import db
    from idp.oidc.clients import create_client
    from tests.helpers import client_login

    app = create_app(env)
    with app.app_context():
        service = create_client(name="bench-service", redirect_uris=[],
                                grant_types=["client_credentials"], scopes=["lms.context"])
        relying = create_client(name="bench-rp", redirect_uris=["https://rp.example/cb"],
                                trusted=True)
        db.session.commit()
        service_creds = (service.client.client_id, service.secret)
        rp_creds = (relying.client.client_id, relying.secret)
    refresh_tokens = []
    for n in range(families):
        client = app.test_client()
        client_login(client, f"student{1 + n % 4}")
        response = client.get("/oauth/authorize", query_string={
            "response_type": "code", "client_id": rp_creds[0], "scope": "openid profile email",
            "redirect_uri": "https://rp.example/cb", "state": "s", "nonce": f"n{n}"})
        code = parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
        token = client.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": code,
            "redirect_uri": "https://rp.example/cb"},
            headers={"Authorization": basic(*rp_creds)}).get_json()
        refresh_tokens.append(token["refresh_token"])
    return service_creds, rp_creds, refresh_tokens


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def post_token(port: int, auth: str, form: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/oauth/token", body=urlencode(form), headers={
        "Authorization": auth, "Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    if response.status != 200:
        raise RuntimeError(f"token endpoint answered {response.status}: {body[:200]!r}")
    return json.loads(body)


def get_health(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    response.read()
    conn.close()


def drive(seconds: float, workers: list) -> tuple[int, float]:
    """Run each worker callable in its own thread until the time is up; returns (count,
    elapsed)."""
    stop = time.monotonic() + seconds
    counts = [0] * len(workers)
    errors: list[BaseException] = []

    def loop(i, step):
        try:
            while time.monotonic() < stop:
                step()
                counts[i] += 1
        except BaseException as exc:  # noqa: BLE001  (reported after the run)
            errors.append(exc)

    threads = [threading.Thread(target=loop, args=(i, w)) for i, w in enumerate(workers)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(counts), time.monotonic() - started


def measure(name: str, pid: int, seconds: float, workers: list, rounds: int) -> dict:
    """Best of ``rounds`` (least worker CPU per grant): other load on a shared machine only
    ever adds cost, so the best round is the closest to the code's own cost."""
    drive(min(2.0, seconds / 4), workers)  # warm-up (imports, pools, caches)
    best = None
    for _ in range(rounds):
        cpu0 = cpu_seconds(pid)
        count, elapsed = drive(seconds, workers)
        cpu = cpu_seconds(pid) - cpu0
        result = {"name": name, "count": count, "elapsed": elapsed, "cpu": cpu,
                  "per_second": count / elapsed,
                  "per_core": count / cpu if cpu else float("inf"),
                  "ms_cpu": 1000 * cpu / count if count else 0.0}
        if best is None or result["per_core"] > best["per_core"]:
            best = result
    return best


def signing_cost(env: dict, seconds: float = 3.0) -> dict:
    """RS256 signatures per second on one core with the bridge's current key, and a full
    joserfc JWT encode (what an ID token costs)."""
    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from idp.keys import KeyStore

    key = KeyStore(env["IDP_KEYS_DIR"]).current()
    payload = b"x" * 600
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        key.sign_rs256(payload)
        n += 1
    raw = n / (time.process_time() - start)
    jwk = RSAKey.import_key(key.private_pem)
    claims = {"iss": "https://sso.example.edu", "sub": "student:1", "aud": "x", "iat": 1,
              "exp": 2, "name": "A B", "email": "a@example.edu"}
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        jwt.encode({"alg": "RS256", "kid": key.kid}, claims, jwk)
        n += 1
    return {"raw": raw, "jwt": n / (time.process_time() - start)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--students", type=int, default=200)
    parser.add_argument("--append", action="store_true",
                        help="append the figures to docs/benchmarks.md")
    args = parser.parse_args()

    with database(args.students) as (env, _counts):
        env = {**env, "IDP_OIDC_REFRESH_TOKEN_LIFETIME": str(30 * 86400)}
        print("registering clients and running code flows ...", flush=True)
        service, _rp, refresh_tokens = setup_clients(env, args.threads)
        rp_auth = basic(*_rp)
        port = int(env["BENCH_PORT"])
        with one_worker(env) as (_base, pid):
            service_auth = basic(*service)

            def client_credentials():
                post_token(port, service_auth, {"grant_type": "client_credentials",
                                                "scope": "lms.context"})

            def refresher(i):
                def step():
                    token = post_token(port, rp_auth, {"grant_type": "refresh_token",
                                                       "refresh_token": refresh_tokens[i]})
                    refresh_tokens[i] = token["refresh_token"]
                return step

            results = [
                measure("client_credentials", pid, args.seconds,
                        [client_credentials] * args.threads, args.rounds),
                measure("refresh_token", pid, args.seconds,
                        [refresher(i) for i in range(args.threads)], args.rounds),
            ]
            floor = measure("GET /healthz (framework floor)", pid, args.seconds / 2,
                            [lambda: get_health(port)] * args.threads, args.rounds)
        signing = signing_cost(env)

    lines = [f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
             f" Command: `.venv/bin/python bench/oidc.py --seconds {args.seconds:g} "
             f"--threads {args.threads} --rounds {args.rounds}` (best round of {args.rounds}).",
             "",
             "| measure | grants | wall s | worker CPU s | grants/s (wall) | "
             "grants/s per core | worker CPU ms/grant | target |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        verdict = "met" if r["per_core"] >= TARGET else "MISSED"
        lines.append(f"| {r['name']} | {r['count']} | {r['elapsed']:.1f} | {r['cpu']:.2f} | "
                     f"{r['per_second']:.0f} | {r['per_core']:.0f} | {r['ms_cpu']:.2f} | "
                     f"≥ {TARGET}/core {verdict} |")
    lines.append(f"| {floor['name']} | {floor['count']} | {floor['elapsed']:.1f} | "
                 f"{floor['cpu']:.2f} | {floor['per_second']:.0f} | {floor['per_core']:.0f} | "
                 f"{floor['ms_cpu']:.2f} | - |")
    lines += ["", f"Raw RS256 (RSA-2048, PKCS#1 v1.5) on one core: {signing['raw']:.0f} "
                  f"signatures/s ({1000 / signing['raw']:.2f} ms each); a full joserfc ID-token "
                  f"encode: {signing['jwt']:.0f}/s ({1000 / signing['jwt']:.2f} ms each)."]
    text = "\n".join(lines)
    print(text)
    if args.append:
        with open(ROOT / "docs" / "benchmarks.md", "a") as fh:
            fh.write("\n" + text + "\n")
    return 0 if all(r["per_core"] >= TARGET for r in results) else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
