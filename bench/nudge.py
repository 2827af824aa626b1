"""Learning history and nudges benchmark (issue 13).

- the daily snapshot of every active student on the demo LMS (target ≤ 60 s for 100k);
- storage: bytes per history row (heap, indexes, TOAST) and per 100k students per year;
- evaluating every attention rule over every student with ``--days`` of history (synthetic
  rows written day by day, as the worker would; target ≤ 30 s and ≤ 500 MB peak for 100k
  students × 400 days), in a child process so its peak memory is its own;
- 1,000 nudges delivered to the Zulip messages double (tests/nudges/messages_double.py) at the
  rate it allows (``--rate`` sends per ``--window`` seconds, 429 with Retry-After beyond),
  counting what arrived: none lost, none doubled.

Run: .venv/bin/python bench/nudge.py [--students 100000] [--attempts 50] [--days 400]
     [--nudges 1000] [--rate 200] [--window 10] [--record]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import time

from common import ROOT, database, machine, record


def _app(env: dict):
    from idp import create_app

    return create_app(env)


def snapshot(env: dict) -> dict:
    from sqlalchemy import text

    from idp import clock
    from idp.extensions import db
    from idp.history.snapshots import last_complete_day, take_snapshot

    app = _app(env)
    with app.app_context():
        ext = app.extensions["history"]
        day = last_complete_day(clock.now(), ext.settings.timezone)
        started = time.perf_counter()
        result = take_snapshot(ext.source, day, ext.settings.timezone)
        seconds = time.perf_counter() - started
        row_bytes = db.session.execute(text(
            "SELECT avg(pg_column_size(h.*)) FROM history_snapshots h")).scalar()
    return {"day": day.isoformat(), "students": result.students, "seconds": seconds,
            "tuple_bytes": float(row_bytes)}


def synthesize(env: dict, students: int, days: int) -> dict:
    """``days`` days of history for every student, written one day per statement, oldest
    first (the order the daily worker writes them)."""
    import psycopg2

    from idp import clock
    from idp.history.snapshots import last_complete_day

    url = env["IDP_DATABASE_URL"].replace("postgresql+psycopg2://", "postgresql://")
    conn = psycopg2.connect(url)
    conn.autocommit = True
    last = last_complete_day(clock.now(), dt.UTC)
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("TRUNCATE history_snapshots, history_days")
        cur.execute("INSERT INTO history_subjects (name) VALUES ('Physics'), ('Chemistry'), "
                    "('Mathematics') ON CONFLICT DO NOTHING")
        for back in range(days - 1, -1, -1):
            day = last - dt.timedelta(days=back)
            i = days - 1 - back
            cur.execute("""
                INSERT INTO history_snapshots (student_id, day, batch_id, course_id, attempts,
                    scored_attempts, score_sum_tenths, exams_taken, videos_watched,
                    current_streak, best_streak, percentile_tenths, last_attempt_day,
                    subject_tenths)
                SELECT s, %(day)s, 1 + s / 250, 1 + (s / 250) %% 4, a, a,
                       greatest(0, a * (400 + (s * 37) %% 450) - %(i)s * (s %% 7) * 3),
                       a, %(i)s / 2 + s %% 13,
                       least(32000, (%(i)s + s) %% (5 + s %% 40)),
                       least(32000, 5 + s %% 40), (s * 7919) %% 1000,
                       %(day)s - (s %% 11), ARRAY[(400 + s %% 500)::smallint,
                       (450 + s %% 400)::smallint, (380 + s %% 550)::smallint]
                  FROM generate_series(1, %(n)s) s,
                       LATERAL (SELECT (%(i)s * (1 + s %% 3)) / 4 AS a) att""",
                        {"day": day, "i": i, "n": students})
            cur.execute("INSERT INTO history_days VALUES (%s, now(), %s, 0, 'backfill')",
                        (day, students))
        seconds = time.perf_counter() - started
        cur.execute("VACUUM ANALYZE history_snapshots")
        cur.execute("SELECT count(*), pg_relation_size('history_snapshots'), "
                    "pg_indexes_size('history_snapshots'), "
                    "pg_total_relation_size('history_snapshots') FROM history_snapshots")
        rows, heap, indexes, total = cur.fetchone()
    conn.close()
    return {"rows": rows, "seconds": seconds, "heap": heap, "indexes": indexes, "total": total}


def evaluate(env: dict) -> dict:
    """Every rule over every student (the nightly planner's read); run in a child process."""
    from idp import clock
    from idp.attention.assess import assess
    from idp.history.snapshots import last_complete_day

    app = _app(env)
    with app.app_context():
        day = last_complete_day(clock.now(), app.extensions["history"].settings.timezone)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        students = with_findings = concerns = 0
        for _, _days, findings in assess(app.extensions["attention"], day):
            students += 1
            with_findings += bool(findings)
            concerns += sum(f.needs_attention for f in findings)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"students": students, "with_findings": with_findings, "concerns": concerns,
            "seconds": seconds, "rss_before_mb": before / 1024, "peak_rss_mb": peak / 1024}


def deliver_many(env: dict, count: int, rate: int, window: float) -> dict:
    from sqlalchemy import func, select

    from idp import clock, outbox
    from idp.extensions import db
    from idp.nudges.delivery import deliver
    from idp.nudges.models import Nudge, NudgeRun
    from tests.nudges.messages_double import (
        BOT_EMAIL,
        BOT_KEY,
        MessagesRealm,
        MessagesServer,
    )

    realm = MessagesRealm(rate_limit=rate, window=window, retry_after=int(window))
    for n in range(1, count + 1):
        realm.add(10_000 + n, f"student{n}@example.edu")
    server = MessagesServer(realm)
    app = _app({**env, "ZULIP_URL": server.url, "ZULIP_SCIM_TOKEN": "bench-scim-token-0123456",
                "ZULIP_NUDGE_BOT_EMAIL": BOT_EMAIL, "ZULIP_NUDGE_BOT_API_KEY": BOT_KEY,
                "IDP_NUDGE_QUIET_HOURS": "off", "IDP_NUDGE_RATE_PER_MINUTE": str(rate)})
    ext = app.extensions["nudges"]
    tz = app.extensions["history"].settings.timezone
    try:
        with app.app_context():
            outbox.forget_channels()
            now = clock.now()
            run = NudgeRun(day=now.date(), created_at=now, status="released", students=count,
                           nudges=count, digests=0, suppressed=0)
            db.session.add(run)
            db.session.flush()
            db.session.add_all(Nudge(
                run_id=run.id, kind="student", recipient=f"student:{n}",
                email=f"student{n}@example.edu", rule="no_activity", period="bench",
                idempotency_key=f"bench:{n}", status="pending", reason="bench",
                content=f"Hi student {n}, a benchmark nudge.", attempts=0, created_at=now)
                for n in range(1, count + 1))
            db.session.commit()
            started = time.perf_counter()
            passes = paused = 0
            deadline = time.monotonic() + 30 * 60
            while time.monotonic() < deadline:
                report = deliver(ext.settings, ext.sender, tz)
                passes += 1
                left = db.session.scalar(select(func.count()).select_from(Nudge).where(
                    Nudge.status.in_(("pending", "queued"))))
                if not left:
                    break
                if report is not None and report.blocked:
                    paused += 1
                    channel = outbox.channel("zulip_nudges")
                    wait = ((channel.paused_until - clock.now()).total_seconds()
                            if channel.paused_until else 1.0)
                    time.sleep(max(0.2, min(wait, window)))  # the pause Zulip asked for
            seconds = time.perf_counter() - started
            statuses = dict(db.session.execute(select(Nudge.status, func.count())
                                               .group_by(Nudge.status)).all())
    finally:
        server.close()
    per_user = {}
    for message in realm.messages:
        per_user[message["to"]] = per_user.get(message["to"], 0) + 1
    return {"count": count, "seconds": seconds, "passes": passes, "paused": paused,
            "arrived": len(realm.messages), "recipients": len(per_user),
            "doubled": sum(1 for v in per_user.values() if v > 1), "statuses": statuses}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--attempts", type=int, default=50)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--nudges", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--record", action="store_true", help="append to docs/benchmarks.md")
    parser.add_argument("--evaluate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evaluate_only:
        print(json.dumps(evaluate(dict(os.environ))))
        return
    started = time.perf_counter()
    with database(args.students, args.attempts) as (env, counts):
        print(f"demo LMS: {counts}", flush=True)
        snap = snapshot(env)
        print(f"snapshot: {snap}", flush=True)
        synth = synthesize(env, args.students, args.days)
        print(f"history: {synth}", flush=True)
        child = subprocess.run([sys.executable, __file__, "--evaluate-only"], env=env,
                               cwd=ROOT, capture_output=True, text=True, check=True)
        rules = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"rules: {rules}", flush=True)
        sent = deliver_many(env, args.nudges, args.rate, args.window)
        print(f"delivery: {sent}", flush=True)
    per_row = synth["total"] / synth["rows"]
    year = per_row * 100_000 * 365
    lines = [
        f"Machine: {machine()}. Taken under load (five other helpers' tests on the same two "
        f"cores). Command: `.venv/bin/python bench/nudge.py --students {args.students} "
        f"--attempts {args.attempts} --days {args.days} --nudges {args.nudges} --rate "
        f"{args.rate} --window {args.window:g}`; {time.perf_counter() - started:.0f} s in all.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| daily snapshot, {snap['students']} active students (demo LMS, "
        f"{counts.get('attempts', 0)} attempts) | {snap['seconds']:.1f} s | ≤ 60 s |",
        f"| history row (tuple, `pg_column_size`) | {snap['tuple_bytes']:.0f} B | – |",
        f"| history on disk, {synth['rows']:,} rows ({args.students} × {args.days} days) | "
        f"heap {synth['heap'] / 2**20:.0f} MiB + indexes {synth['indexes'] / 2**20:.0f} MiB = "
        f"{per_row:.0f} B/row | – |",
        f"| storage per 100k students per year | {year / 2**30:.2f} GiB | – |",
        f"| rules over {rules['students']} students × {args.days} days "
        f"({rules['with_findings']} with findings, {rules['concerns']} concerns) | "
        f"{rules['seconds']:.1f} s, peak RSS {rules['peak_rss_mb']:.0f} MB (app alone "
        f"{rules['rss_before_mb']:.0f} MB) | ≤ 30 s, ≤ 500 MB |",
        f"| {sent['count']} nudges to the double at {args.rate} per {args.window:g} s | "
        f"{sent['seconds']:.1f} s, {sent['paused']} pauses on 429; arrived {sent['arrived']}, "
        f"{sent['recipients']} recipients, {sent['doubled']} doubled; statuses "
        f"{sent['statuses']} | none lost or doubled |",
        "",
        f"(writing {args.days} days of synthetic history took {synth['seconds']:.0f} s)",
    ]
    record("Learning history and nudges (bench/nudge.py)", args.record, lines)


if __name__ == "__main__":
    main()
