"""The bridge's web server as shipped: granian's WSGI mode, the one place its settings live.

    .venv/bin/python deploy/serve.py --workers 4 --bind 127.0.0.1:8000

deploy/systemd/lms-zulip-bridge.service runs this line; the https tests (tests/deployed/) run
the unit's ExecStart= with only paths and the port substituted, and every other test or
benchmark that needs "the bridge as deployed" starts it here too (tests/helpers.py
``ShippedServer``, bench/common.py). Why granian: docs/benchmarks.md, "HTTP server".

What the master (this process) does, which the workers cannot:

- sets ``LMS_MAX_CONCURRENT`` (unless set) to workers × threads − 1,
  ``LMS_MAX_CONCURRENT_PER_WORKER`` to threads − 1 and ``LMS_BULKHEAD_DIR`` (unless set) to a
  directory of this master shared by its workers and removed at exit, so a slow LMS never ties
  up every request thread of any worker: a request that needs no LMS (/healthz, client
  credentials) always finds a thread in the worker the kernel gave it to (idp/lms/db.py,
  ``Bulkhead``);
- with ``PROMETHEUS_MULTIPROC_DIR`` set, removes at start the metric files of processes that no
  longer run (a crash, an earlier start). Live gauges of a worker that dies later are dropped
  by the next scrape (idp/metrics.py, ``scrape_registry``): granian has no per-worker exit hook;
  its counters keep counting until the server restarts.

This process imports granian and the standard library only, never the app (``idp``): the
workers import it after they are spawned, so a reload (SIGHUP: granian respawns the workers one
by one) runs the code on disk, not a copy cached here.
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

THREADS = 4              # blocking (Python) threads per worker: overlap PostgreSQL waits
GRACEFUL_SECONDS = 30    # a stopping worker finishes its requests, else is killed (unit: 40 s)
IDLE_SECONDS = 30        # an idle keep-alive connection is closed (nginx closes first: 20 s)
MAX_RSS_MIB = 512        # a worker above this for RSS_SAMPLES samples is replaced gracefully
RSS_SAMPLES = 3          # ... taken every 30 s: a brief peak does not empty a worker's caches
# One line per request, never the query string (it can carry launch tokens, id_token_hint,
# SAMLRequest/RelayState): client address (nginx), method, path, protocol, status, duration.
ACCESS_FORMAT = '%(addr)s "%(method)s %(path)s %(protocol)s" %(status)d %(dt_ms).1fms'


def remove_dead_metric_files(directory: str) -> list[str]:
    """Delete prometheus_client's files (``<kind>_<pid>.db``) of processes that no longer run;
    returns the names removed."""
    os.makedirs(directory, exist_ok=True)
    removed = []
    for name in os.listdir(directory):
        pid = name.removesuffix(".db").rsplit("_", 1)[-1]
        if name.endswith(".db") and pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            os.remove(os.path.join(directory, name))
            removed.append(name)
    return removed


def share_lms_bulkhead(environ: dict, workers: int, threads: int) -> str | None:
    """Set the LMS bulkhead's defaults in ``environ``; returns the directory this master made
    (to remove at exit), or None when the operator chose one."""
    environ.setdefault("LMS_MAX_CONCURRENT", str(max(1, workers * threads - 1)))
    environ.setdefault("LMS_MAX_CONCURRENT_PER_WORKER", str(max(1, threads - 1)))
    if environ.get("LMS_BULKHEAD_DIR"):
        return None
    directory = os.path.join(tempfile.gettempdir(), f"lms-zulip-bridge-bulkhead-{os.getpid()}")
    environ["LMS_BULKHEAD_DIR"] = directory
    return directory


def access_log_config() -> dict:
    """granian's logging configuration with the worker's pid in front of each access line."""
    from granian.log import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["access"]["fmt"] = "[%(process)d] %(message)s"
    return config


def load_app(target: str):
    """The WSGI app of ``target`` (``module:name`` under ROOT), loaded in each worker.

    granian starts every request's environ from a copy of ``os.environ``: a variable such as
    ``HTTP_PROXY`` (set for outgoing calls) would reach the app as a request header the client
    never sent. Such values are removed from each request unless the request really carried
    that header with another value."""
    import importlib

    sys.path.insert(0, str(ROOT))
    module, _, name = target.partition(":")
    app = getattr(importlib.import_module(module), name or "app")
    inherited = {key: value for key, value in os.environ.items() if key.startswith("HTTP_")}
    if not inherited:
        return app

    def app_without_inherited_headers(environ, start_response):
        for key, value in inherited.items():
            if environ.get(key) == value:
                del environ[key]
        return app(environ, start_response)

    return app_without_inherited_headers


def check_configuration() -> int:
    """Build the app once in a child process before any worker starts: a bad setting stops the
    server at once with the app's one-line message (and the child's exit status) instead of
    workers dying and being respawned. A child, so that this process never imports the app."""
    import subprocess

    environ = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    return subprocess.run([sys.executable, "-c", "import wsgi"], cwd=ROOT, env=environ).returncode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, required=True, help="worker processes")
    parser.add_argument("--bind", required=True, metavar="HOST:PORT")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"request threads per worker (default {THREADS})")
    parser.add_argument("--max-rss", type=int, default=MAX_RSS_MIB, metavar="MIB",
                        help=f"replace a worker whose memory stays above this "
                             f"(default {MAX_RSS_MIB}; docs/operations.md, 'Memory per worker')")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--app", default="wsgi:app", metavar="MODULE:NAME",
                        help="the WSGI app (benchmarks serve wrapped apps; default wsgi:app)")
    args = parser.parse_args(argv)
    host, _, port = args.bind.rpartition(":")
    if not host or not port.isdigit() or args.workers < 1 or args.threads < 1:
        parser.error("--bind HOST:PORT, --workers and --threads of at least 1")
    args.host, args.port = host.strip("[]"), int(port)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if status := check_configuration():
        return status
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings
    from granian.server import Server

    made = share_lms_bulkhead(os.environ, args.workers, args.threads)
    metrics = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if metrics:
        remove_dead_metric_files(metrics)
    server = Server(
        args.app, address=args.host, port=args.port, interface=Interfaces.WSGI,
        workers=args.workers, blocking_threads=args.threads, websockets=False,
        http1_settings=HTTP1Settings(header_read_timeout=IDLE_SECONDS * 1000, keep_alive=True),
        log_access=not args.no_access_log, log_access_format=ACCESS_FORMAT,
        log_dictconfig=access_log_config(), respawn_failed_workers=True,
        workers_kill_timeout=GRACEFUL_SECONDS, workers_max_rss=args.max_rss,
        rss_samples=RSS_SAMPLES)
    try:
        server.serve(target_loader=load_app)
    finally:
        if made:
            shutil.rmtree(made, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
