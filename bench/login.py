"""Login benchmark (issue: foundation).

- demo LMS generation time (default 100k students, 5M attempts);
- directory lookup p50 on that LMS (target ≤ 1 ms);
- the bridge's own cost per login, everything but the hash, p50 (target ≤ 3 ms): in-process
  POST /login latency minus the raw hash cost measured in the same run;
- HTTP logins per second on one gunicorn worker with a fast test hash (pbkdf2, 1000 rounds).

Run: .venv/bin/python bench/login.py [--students 100000] [--attempts 50] [--logins 500]
     [--record]
"""

from __future__ import annotations

import argparse
import random
import re
import time

from common import database, machine, one_worker, percentile, record

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PASSWORD = "lms-demo-2026"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--attempts", type=int, default=50)
    parser.add_argument("--logins", type=int, default=500)
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    args = parser.parse_args()

    started = time.perf_counter()
    with database(args.students, args.attempts) as (env, counts):
        generation = time.perf_counter() - started
        from idp import create_app
        from idp.lms.directory import get_directory
        from idp.lms.passwords import verify_password

        app = create_app(env)
        with app.app_context():
            directory = get_directory()
            with directory.engine.connect() as conn:
                stored = conn.exec_driver_sql(
                    "SELECT password FROM students WHERE username = 'student1'").scalar()
            hash_times = []
            for _ in range(200):
                t0 = time.perf_counter()
                verify_password(PASSWORD, stored)
                hash_times.append(time.perf_counter() - t0)
            outcomes = {}
            for label, login, password in (("wrong password", "student1", "nope"),
                                           ("unknown user", "nobody-at-all", PASSWORD),
                                           ("inactive user", "student5", PASSWORD),
                                           ("success", "student1", PASSWORD)):
                times = []
                for _ in range(200):
                    t0 = time.perf_counter()
                    directory.authenticate(login, password)
                    times.append(time.perf_counter() - t0)
                outcomes[label] = percentile(times, 50) * 1000
            rng = random.Random(1)
            lookups = []
            for _ in range(2000):
                name = f"student{rng.randint(1, args.students)}"
                t0 = time.perf_counter()
                assert directory.find(name) is not None
                lookups.append(time.perf_counter() - t0)

        posts = []
        for _ in range(args.logins):  # a fresh browser each time: no session to replace
            client = app.test_client()
            token = CSRF.search(client.get("/login").get_data(as_text=True)).group(1)
            t0 = time.perf_counter()
            response = client.post("/login", data={"csrf_token": token, "login": "student1",
                                                   "password": PASSWORD, "next": "/"})
            posts.append(time.perf_counter() - t0)
            assert response.status_code == 302

        import requests

        with one_worker(env) as base:
            http_posts = []
            t_start = time.perf_counter()
            for _ in range(args.logins):
                session = requests.Session()
                token = CSRF.search(session.get(base + "/login").text).group(1)
                t0 = time.perf_counter()
                response = session.post(base + "/login", allow_redirects=False, data={
                    "csrf_token": token, "login": "student1", "password": PASSWORD,
                    "next": "/"})
                http_posts.append(time.perf_counter() - t0)
                assert response.status_code == 302
            elapsed = time.perf_counter() - t_start

    raw = percentile(hash_times, 50) * 1000
    own = percentile(posts, 50) * 1000 - raw
    record("Login (bench/login.py)", args.record, [
        f"- machine: {machine()}",
        f"- command: `.venv/bin/python bench/login.py --students {args.students} "
        f"--attempts {args.attempts} --logins {args.logins}`",
        f"- demo LMS generation: {counts['students']} students, {counts['attempts']} attempts, "
        f"{counts['subject_stats']} subject stats in {counts['seconds']:.1f} s "
        f"(set-up incl. PostgreSQL start {generation:.1f} s); target < 120 s",
        f"- directory lookup on {args.students} students: p50 "
        f"{percentile(lookups, 50) * 1000:.3f} ms, p95 {percentile(lookups, 95) * 1000:.3f} ms"
        f" (target p50 ≤ 1 ms)",
        f"- raw hash cost (pbkdf2_sha256, 1000 rounds): p50 {raw:.3f} ms",
        "- authenticate() p50 by outcome (enumeration resistance): " + ", ".join(
            f"{label} {ms:.3f} ms" for label, ms in outcomes.items()),
        f"- POST /login in-process: p50 {percentile(posts, 50) * 1000:.3f} ms → the bridge's own "
        f"cost per login p50 {own:.3f} ms (target ≤ 3 ms)",
        f"- HTTP, one gunicorn sync worker: {args.logins / elapsed:.0f} logins/s (each a GET of "
        f"the form plus the POST), POST p50 {percentile(http_posts, 50) * 1000:.2f} ms, "
        f"p95 {percentile(http_posts, 95) * 1000:.2f} ms",
    ])


if __name__ == "__main__":
    main()
