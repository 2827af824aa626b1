"""Where a request's CPU goes inside the app, without any HTTP server: calls the WSGI app
in-process (werkzeug's EnvironBuilder) and prints CPU per call for GET /healthz, a
client_credentials grant and a refresh grant; ``--profile NAME`` prints a cProfile of one.

    .venv/bin/python bench/wsgi_profile.py [--calls 2000] [--profile client_credentials]
        [--dump FILE] [--only healthz,refresh_token]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from urllib.parse import urlencode

from common import ROOT, database
from oidc import basic, setup_clients


def call(app, method: str, path: str, headers: dict | None = None, body: str = "") -> tuple:
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(method=method, path=path, headers=headers or {}, data=body,
                             environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_environ()
    status = []
    chunks = app(environ, lambda s, h, exc_info=None: status.append(s))
    out = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    return status[0], out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--profile", default="")
    parser.add_argument("--dump", default="", help="also write the cProfile stats to this file")
    parser.add_argument("--only", default="", help="time only these works (comma-separated)")
    args = parser.parse_args()
    with database(50) as (env, _counts):
        env = {**env, "IDP_OIDC_REFRESH_TOKEN_LIFETIME": str(30 * 86400)}
        service, rp, tokens = setup_clients(env, 1)
        from idp import create_app

        app = create_app(env)
        form = urlencode({"grant_type": "client_credentials", "scope": "lms.context"})
        headers = {"Authorization": basic(*service),
                   "Content-Type": "application/x-www-form-urlencoded"}
        rp_headers = {**headers, "Authorization": basic(*rp)}

        def refresh():
            import json
            status, out = call(app, "POST", "/oauth/token", rp_headers, urlencode(
                {"grant_type": "refresh_token", "refresh_token": tokens[0]}))
            assert status.startswith("200"), (status, out)
            tokens[0] = json.loads(out)["refresh_token"]

        def client_credentials():
            status, out = call(app, "POST", "/oauth/token", headers, form)
            assert status.startswith("200"), (status, out)

        def healthz():
            status, _ = call(app, "GET", "/healthz")
            assert status.startswith("200")

        works = {"healthz": healthz, "client_credentials": client_credentials,
                 "refresh_token": refresh}
        for name, work in works.items():
            if args.only and name not in args.only.split(","):
                continue
            for _ in range(200):
                work()
            t0 = time.process_time()
            for _ in range(args.calls):
                work()
            print(f"{name}: {1000 * (time.process_time() - t0) / args.calls:.3f} ms CPU per "
                  f"call in-process (this process only; PostgreSQL not counted)", flush=True)
        if args.profile:
            profiler = cProfile.Profile(time.process_time)  # CPU, not waits on PostgreSQL
            profiler.enable()
            for _ in range(args.calls):
                works[args.profile]()
            profiler.disable()
            if args.dump:
                profiler.dump_stats(args.dump)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    sys.exit(main())
