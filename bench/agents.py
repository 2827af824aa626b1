"""Agents benchmark (issue 14).

Over HTTP on one shipped-server worker (bench/common.py), after a warm-up that fills the
context caches, the three requests taking turns so that they meet the same load:

- a cached ``get_student_profile`` MCP tool call (JSON-RPC ``tools/call`` over Streamable
  HTTP, stateless, JSON response; bearer token bound to /mcp): p50/p95 latency and the
  worker's CPU per call (target p50 ≤ 5 ms);
- the same profile from the JSON API (``GET /api/v1/lms/students/1/profile``), beside it;
- the Zulip context bot answering "@**LMS** student1" for mentor1 (target p95 ≤ 50 ms).

Run: .venv/bin/python bench/agents.py [--students 2000] [--calls 500] [--record]

``--profile`` instead calls the WSGI app in-process (no HTTP server) and prints the CPU per call
of the MCP tool call and of the JSON API, then a cProfile of the MCP call merged over every
thread it touches, summed by package. The calls are sequential, so a thread works only while
the others wait: the profile's own time of every function except the waits (locks, selectors,
PostgreSQL round trips, listed apart) is the call's CPU, plus the profiler's overhead.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import os
import pstats
import threading
import time

from common import (
    ROOT,
    conditions,
    cpu_seconds,
    database,
    machine,
    one_worker,
    percentile,
    pin_process,
    record,
    split_cores,
)

BOT_TOKEN = "bench-bot-token-0123456789abcdef"


def mint_tokens(env: dict) -> tuple[str, str]:
    """(token bound to /mcp, unbound token) for mentor1, through the bridge's own
    registration, sign-in, consent and token endpoints (in-process, same databases)."""
    from idp import create_app
    from tests.agents.conftest import bound_token

    app = create_app(env, TESTING=True)
    mcp = bound_token(app, "mentor1", resource=env["IDP_ISSUER"] + "/mcp")["access_token"]
    api = bound_token(app, "mentor1", resource=None)["access_token"]
    return mcp, api


def timed_rounds(port: int, kinds: dict, calls: int, worker: int) -> dict:
    """``calls`` rounds in which each kind of request (name → (method, path, body, headers,
    check)) is sent once, in turn, each kind on its own keep-alive connection, so all kinds
    meet the same load; per kind: (latencies in s, the worker's CPU seconds per request, read
    around each request)."""
    conns = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for name in kinds}
    latencies: dict[str, list[float]] = {name: [] for name in kinds}
    cpu = dict.fromkeys(kinds, 0.0)
    for _ in range(calls):
        for name, (method, path, body, headers, check) in kinds.items():
            cpu_before = cpu_seconds(worker)
            started = time.perf_counter()
            conns[name].request(method, path, body=body, headers=headers)
            response = conns[name].getresponse()
            payload = response.read()
            latencies[name].append(time.perf_counter() - started)
            cpu[name] += cpu_seconds(worker) - cpu_before
            check(response.status, payload)
    return {name: (latencies[name], cpu[name] / calls) for name in kinds}


class ThreadProfiles:
    """cProfile on the calling thread and on every thread started while enabled (one wall
    clock for all: a per-thread CPU clock is a system call per event, which would swamp the
    figures); merged on ``stats``."""

    def __init__(self):
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def _start_here(self, *_event) -> None:
        profile = cProfile.Profile()
        with self._lock:
            self.profiles.append(profile)
        profile.enable()   # replaces this hook for the thread

    def enable(self) -> None:
        threading.setprofile(self._start_here)
        self._start_here()

    def clear(self) -> None:
        """Forget the warm-up (the other threads are idle between calls)."""
        for profile in self.profiles:
            profile.clear()

    def disable(self) -> None:
        threading.setprofile(None)
        for profile in self.profiles:
            profile.disable()

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats()
        for profile in self.profiles:
            profile.create_stats()
            if profile.stats:
                stats.add(profile)
        return stats


# Waits, not work: summed apart.
WAITS = {"{built-in method select.select}": "waiting (selectors, locks)",
         "{method 'poll' of 'select.epoll' objects}": "waiting (selectors, locks)",
         "{method 'acquire' of '_thread.lock' objects}": "waiting (selectors, locks)",
         "{method 'execute' of 'psycopg2.extensions.cursor' objects}":
             "PostgreSQL round trips (wait + libpq)"}
AREAS = (("idp/", "the bridge (auth, answer, audit)"), ("mcp/", "MCP SDK"),
         ("mcp_types/", "MCP SDK (types)"), ("pydantic", "pydantic"),
         ("anyio/", "anyio"), ("asyncio/", "asyncio"), ("a2wsgi/", "a2wsgi"),
         ("starlette/", "starlette"), ("sqlalchemy/", "SQLAlchemy"),
         ("psycopg2", "psycopg2"), ("flask/", "Flask"), ("werkzeug/", "werkzeug"),
         ("json/", "json"), ("threading.py", "threading"), ("queue.py", "threading"))


def cpu_by_area(stats: pstats.Stats, calls: int) -> list[tuple[str, float]]:
    """Own CPU time (tottime) per call, summed by package; C functions go to the area of
    their caller."""
    sums: dict[str, float] = {}

    def area(path: str) -> str:
        return next((label for part, label in AREAS if part in path), "other")

    for (path, _line, name), (_cc, _nc, tottime, _ct, callers) in stats.stats.items():
        wait = WAITS.get(pstats.func_std_string((path, _line, name)))
        if wait:
            sums[wait] = sums.get(wait, 0.0) + tottime
            continue
        if path == "~" and callers:   # a built-in: charge it to its heaviest caller's area
            path = max(callers.items(), key=lambda kv: kv[1][2])[0][0]
        sums[area(path)] = sums.get(area(path), 0.0) + tottime
    return sorted(((k, v * 1000 / calls) for k, v in sums.items()), key=lambda kv: -kv[1])


def profile_in_process(env: dict, calls: int) -> None:
    from urllib.parse import urlsplit

    from wsgi_profile import call as in_process

    from idp import create_app

    mcp_token, api_token = mint_tokens(env)
    app = create_app(env)
    call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "get_student_profile", "arguments": {"student_id": 1}}}).encode()
    mcp_headers = {"Authorization": f"Bearer {mcp_token}", "Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream",
                   "MCP-Protocol-Version": "2025-06-18",
                   "Host": urlsplit(env["IDP_ISSUER"]).netloc}   # the DNS rebinding check
    api_headers = {"Authorization": f"Bearer {api_token}"}

    def mcp():
        status, out = in_process(app, "POST", "/mcp", mcp_headers, call)
        assert status.startswith("200") and not json.loads(out)["result"].get("isError"), out

    def api():
        status, out = in_process(app, "GET", "/api/v1/lms/students/1/profile", api_headers)
        assert status.startswith("200"), out

    for name, work in (("mcp", mcp), ("api", api)):
        for _ in range(100):
            work()
        t0 = time.process_time()
        for _ in range(calls):
            work()
        print(f"{name}: {1000 * (time.process_time() - t0) / calls:.3f} ms CPU per call "
              f"in-process (all threads of this process; PostgreSQL not counted)", flush=True)
    # a second app: its MCP event loop and worker threads start under the profiler
    profiles = ThreadProfiles()
    profiles.enable()
    app = create_app(env)
    for _ in range(100):
        mcp()
    profiles.clear()
    for _ in range(calls):
        mcp()
    profiles.disable()
    stats = profiles.stats()
    print(f"cProfile of {calls} MCP calls over {len(profiles.profiles)} threads; own CPU "
          f"per call by area (ms):")
    for label, ms in cpu_by_area(stats, calls):
        print(f"  {ms:6.3f}  {label}")
    stats.sort_stats("cumulative").print_stats(100)
    stats.sort_stats("tottime").print_stats(50)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    parser.add_argument("--profile", action="store_true",
                        help="in-process CPU per call and a cProfile of the MCP call")
    args = parser.parse_args()
    if args.profile:
        with database(args.students, 20) as (env, _counts):
            os.chdir(ROOT)
            profile_in_process(env, args.calls)
        return
    cores = split_cores()
    with database(args.students, 20) as (env, _counts):
        env = {**env, "ZULIP_CONTEXT_BOT_TOKEN": BOT_TOKEN}
        os.chdir(ROOT)
        mcp_token, api_token = mint_tokens(env)
        with one_worker(env) as (base, worker):
            if cores:
                os.sched_setaffinity(0, cores[0])
                pin_process(worker, cores[1])
            port = int(base.rsplit(":", 1)[1])
            call = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
                "name": "get_student_profile", "arguments": {"student_id": 1}}}).encode()
            mcp_headers = {"Authorization": f"Bearer {mcp_token}",
                           "Content-Type": "application/json",
                           "Accept": "application/json, text/event-stream",
                           "MCP-Protocol-Version": "2025-06-18"}

            def mcp_ok(status, payload):
                result = json.loads(payload)["result"]
                assert status == 200 and not result.get("isError"), payload[:300]

            def api_ok(status, payload):
                assert status == 200, payload[:300]

            bot_body = json.dumps({
                "bot_email": "lms-bot@chat.example.edu", "bot_full_name": "LMS",
                "data": "@**LMS** student1", "token": BOT_TOKEN, "trigger": "mention",
                "message": {"sender_email": "mentor1@example.edu", "sender_id": 5,
                            "sender_full_name": "Mentor", "content": "@**LMS** student1",
                            "type": "stream", "stream_id": 5, "subject": "x"}}).encode()

            def bot_ok(status, payload):
                assert status == 200 and json.loads(payload)["content"].startswith("**"), \
                    payload[:300]

            kinds = {
                "mcp": ("POST", "/mcp", call, mcp_headers, mcp_ok),
                "api": ("GET", "/api/v1/lms/students/1/profile", None,
                        {"Authorization": f"Bearer {api_token}"}, api_ok),
                "bot": ("POST", "/integrations/zulip/context", bot_body,
                        {"Content-Type": "application/json"}, bot_ok)}
            timed_rounds(port, kinds, 30, worker)  # warm-up: fills the caches
            runs = timed_rounds(port, kinds, args.calls, worker)
    lines = [f"Machine: {machine()}; {args.students} students, {args.calls} rounds of the three "
             f"requests in turn (each kind on its own keep-alive connection, so all meet the "
             f"same load; worker CPU read around each request), one shipped-server worker"
             f"{' pinned to its own core' if cores else ''}; {conditions()}.", "",
             "| request | p50 | p95 | worker CPU per call |", "|---|---|---|---|"]
    labels = {"mcp": "MCP `tools/call get_student_profile` (cached)",
              "api": "JSON API `GET /students/1/profile` (cached)",
              "bot": "Zulip bot \"@**LMS** student1\" (cached)"}
    for name, (latencies, cpu) in runs.items():
        lines.append(f"| {labels[name]} | {percentile(latencies, 50) * 1000:.2f} ms | "
                     f"{percentile(latencies, 95) * 1000:.2f} ms | {cpu * 1000:.2f} ms |")
    lines += ["", "Command: `.venv/bin/python bench/agents.py"
              f"{' --students ' + str(args.students) if args.students != 2000 else ''}"
              f"{' --calls ' + str(args.calls) if args.calls != 500 else ''} --record`"]
    record("Agents: MCP tool call, JSON API and Zulip bot", args.record, lines)


if __name__ == "__main__":
    main()
