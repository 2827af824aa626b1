"""Context API benchmark (issue 6).

- demo LMS generation time for 100k students and 5M attempts (target < 2 min);
- EXPLAIN (ANALYZE, BUFFERS) of every academic query on that LMS (--explain prints the plans;
  the summary line says which indexes each used);
- profile latency p50/p95 in-process through ContextService: uncached (every cache emptied
  before each call, so the batch's percent_rank query runs too; target ≤ 25 ms) and cached
  (target ≤ 2 ms); the same for performance and a mentor's student list;
- a whole in-process request (auth, access check, audit row, JSON) through the Flask test client;
- requests per second over HTTP on one shipped-server worker, cached and uncached.

Run: .venv/bin/python bench/context.py [--students 100000] [--attempts 50] [--calls 1000]
     [--seconds 10] [--explain] [--record]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import threading
import time

import psycopg2
from common import ROOT, database, machine, one_worker, percentile

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PASSWORD = "lms-demo-2026"


def ms(values: list[float], p: float) -> str:
    return f"{percentile(values, p) * 1000:.2f} ms"


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def explain(engine, student_id: int, batch_id: int, mentor_id: int, show: bool) -> list[str]:
    """EXPLAIN ANALYZE each query (idp.context.plans); one table row per query."""
    import datetime as dt

    from idp.context.plans import explain_queries

    lines = []
    for plan in explain_queries(engine, student_id, batch_id, mentor_id,
                                dt.datetime.now(dt.UTC)):
        if show:
            print(f"--- {plan.name}\n{plan.plan}\n")
        lines.append(f"| {plan.name} | {', '.join(plan.indexes) or '—'} | "
                     f"{', '.join(plan.sequential_scans) or 'none'} | "
                     f"{plan.milliseconds:.3f} ms |")
    return lines


def http_rate(base: str, cookies, paths: list[str], seconds: float, threads: int,
              worker_pid: int) -> tuple[float, float]:
    """(requests per second wall clock, worker CPU ms per request)."""
    import psutil
    import requests

    worker_process = psutil.Process(worker_pid)
    cpu_before = sum(worker_process.cpu_times()[:2])

    done = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker(offset: int) -> None:
        session = requests.Session()
        session.cookies.update(cookies)
        i, count = offset, 0
        while time.monotonic() < stop:
            response = session.get(base + paths[i % len(paths)])
            assert response.status_code == 200, response.text[:300]
            i += threads
            count += 1
        with lock:
            done[0] += count

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.monotonic() - started
    cpu = sum(worker_process.cpu_times()[:2]) - cpu_before
    return done[0] / elapsed, cpu / done[0] * 1000



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--attempts", type=int, default=50)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args()

    started = time.perf_counter()
    with database(args.students, args.attempts) as (env, counts):
        generation = time.perf_counter() - started
        print(f"demo LMS: {counts} in {generation:.1f} s (generator: {counts['seconds']} s)")
        vacuum_started = time.perf_counter()
        admin = psycopg2.connect(env["LMS_ADMIN_DATABASE_URL"])
        admin.autocommit = True
        with admin.cursor() as cur:  # what autovacuum does to a live LMS within minutes
            cur.execute("VACUUM (ANALYZE)")
        admin.close()
        vacuum = time.perf_counter() - vacuum_started
        import requests
        from sqlalchemy import text

        from idp import create_app

        app = create_app(env, TESTING=True)
        rng = random.Random(7)
        with app.app_context():
            service = app.extensions["context"].service
            engine = service.engine
            probe = min(4242, args.students)
            with engine.connect() as conn:
                batch_id, mentor_id = conn.execute(text(
                    "SELECT batch_id, mentor_id FROM students WHERE id = :id"),
                    {"id": probe}).one()
            plan_lines = explain(engine, probe, batch_id, mentor_id, args.explain)
            ids = [rng.randint(1, args.students) for _ in range(args.calls)]
            uncached, cached, warm, perf_uncached, perf_cached = [], [], [], [], []
            for sid in ids:
                service.cache.clear()
                uncached.append(timed(lambda sid=sid: service.profile(sid)))
                cached.append(timed(lambda sid=sid: service.profile(sid)))
                service.cache.drop_tag(f"student:{sid}")  # the batch's ranks stay cached
                warm.append(timed(lambda sid=sid: service.profile(sid)))
                perf_uncached.append(timed(lambda sid=sid: service.performance(sid)))
                perf_cached.append(timed(lambda sid=sid: service.performance(sid)))
            mentors = [rng.randint(3, args.students // 40) for _ in range(200)]
            mentor_uncached, mentor_cached = [], []
            for m in mentors:
                service.cache.clear()
                mentor_uncached.append(timed(lambda m=m: service.mentor_students(m)))
                mentor_cached.append(timed(lambda m=m: service.mentor_students(m)))

        client = app.test_client()
        page = client.get("/login?reauth=1").get_data(as_text=True)
        client.post("/login", data={"csrf_token": CSRF.search(page).group(1),
                                    "login": "staff1", "password": PASSWORD, "next": "/"})
        hot = ids[:50]
        for sid in hot:
            assert client.get(f"/api/v1/lms/students/{sid}/profile").status_code == 200
        request_cached = [timed(lambda sid=sid: client.get(
            f"/api/v1/lms/students/{sid}/profile")) for sid in hot * 10]

        with one_worker(env) as (base, worker_pid):
            session = requests.Session()
            form = session.get(base + "/login?reauth=1").text
            response = session.post(base + "/login", data={
                "csrf_token": CSRF.search(form).group(1), "login": "staff1",
                "password": PASSWORD, "next": "/"}, allow_redirects=False)
            assert response.status_code == 302, response.text[:300]
            hot_paths = [f"/api/v1/lms/students/{sid}/profile" for sid in hot]
            for path in hot_paths:
                session.get(base + path)
            rps_cached, cpu_cached = http_rate(base, session.cookies, hot_paths, args.seconds,
                                               args.threads, worker_pid)
            cold_paths = [f"/api/v1/lms/students/{rng.randint(1, args.students)}/profile"
                          for _ in range(20000)]
            rps_uncached, cpu_uncached = http_rate(base, session.cookies, cold_paths,
                                                   args.seconds, args.threads, worker_pid)
        load = os.getloadavg()[0]

    lines = [
        f"Machine: {machine()}. Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"Command: `.venv/bin/python bench/context.py --students {args.students} "
        f"--attempts {args.attempts} --calls {args.calls} --seconds {args.seconds:g}`.",
        "",
        f"- Demo LMS generation ({counts['students']:,} students, {counts['attempts']:,} "
        f"attempts, {counts['subject_stats']:,} subject stats, indexes, ANALYZE): "
        f"**{counts['seconds']} s** in the generator ({generation:.1f} s with PostgreSQL start "
        f"and migrations); target < 120 s. The bench then runs VACUUM (ANALYZE) "
        f"({vacuum:.0f} s), as autovacuum would on a live LMS, before measuring.",
        f"- Profile, in-process (ContextService), {args.calls} random students: uncached "
        f"(all caches empty, batch percent_rank included) p50 **{ms(uncached, 50)}**, "
        f"p95 {ms(uncached, 95)} (target ≤ 25 ms); cached p50 **{ms(cached, 50)}**, "
        f"p95 {ms(cached, 95)} (target ≤ 2 ms); student parts cold but the batch's ranks "
        f"cached p50 {ms(warm, 50)}.",
        f"- Performance, in-process: its own part uncached (profile parts warm) p50 "
        f"{ms(perf_uncached, 50)}, "
        f"p95 {ms(perf_uncached, 95)}; cached p50 {ms(perf_cached, 50)}.",
        f"- Mentor's student list (one query, ~40 students with metrics), in-process: "
        f"uncached p50 {ms(mentor_uncached, 50)}, p95 {ms(mentor_uncached, 95)}; cached p50 "
        f"{ms(mentor_cached, 50)}.",
        f"- Whole request in-process (Flask test client, session auth, LMS active check, "
        f"access check, audit row committed, JSON), cached data: p50 "
        f"{ms(request_cached, 50)}, p95 {ms(request_cached, 95)}.",
        f"- HTTP, one shipped-server worker, {args.threads} client threads, {args.seconds:g} s "
        f"each, client, worker and PostgreSQL on the same machine (load average "
        f"{load:.1f}): cached profile **{rps_cached:.0f} req/s** wall clock, worker CPU "
        f"{cpu_cached:.2f} ms per request = **{1000 / cpu_cached:.0f} req/s per core**; "
        f"uncached (random students of {args.students:,}) **{rps_uncached:.0f} req/s**, "
        f"worker CPU {cpu_uncached:.2f} ms per request.",
        "",
        f"Query plans on this LMS (EXPLAIN ANALYZE, student {probe}, its batch and mentor):",
        "",
        "| query | indexes used | sequential scans | execution |",
        "|---|---|---|---|",
        *plan_lines,
    ]
    text_out = "\n".join(lines)
    print(text_out)
    if args.record:
        path = ROOT / "docs" / "benchmarks.md"
        current = path.read_text()
        heading = "## Context API (bench/context.py)"
        block = f"\n{heading}\n\n{text_out}\n" if heading not in current else \
            f"\n{text_out}\n"
        with open(path, "a") as fh:
            fh.write(block)


if __name__ == "__main__":
    main()
