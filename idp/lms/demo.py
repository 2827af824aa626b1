"""Demo LMS generator: the LMS contract's tables filled with realistic, deterministic data.

People (courses, batches, mentors, students) are generated in Python and loaded with COPY;
activities, attempts and subject stats are generated inside PostgreSQL from seeded hash
functions (``hashint8extended``), which is deterministic for a given ``seed`` and anchor date
and fast enough for 100k students and 5M attempts in well under two minutes.

Every demo account's password is :data:`DEMO_PASSWORD`. Known accounts: ``student1``
(Django pbkdf2), ``student2`` (bcrypt ``$2y$``), ``student3`` (sha512-crypt), ``student4``
(argon2), ``student5`` (inactive), ``mentor1`` (mentor of students 1-5), ``staff1`` (a mentor
whose email ``staff1@example.edu`` the demo run lists in ``IDP_STAFF_EMAILS``).
"""

from __future__ import annotations

import datetime as dt
import io
import random
import time
from collections.abc import Callable

import psycopg2
from psycopg2 import sql

from .passwords import hash_password
from .schema import RECOMMENDED_INDEXES

DEMO_PASSWORD = "lms-demo-2026"
DEMO_TABLES = ("subject_stats", "attempts", "student_activities", "students", "mentors",
               "batches", "courses")
SUBJECTS = {"JEE Main 2026": ("Physics", "Chemistry", "Mathematics"),
            "NEET 2026": ("Physics", "Chemistry", "Biology"),
            "Foundation Grade 10": ("Mathematics", "Science", "English"),
            "Olympiad Mathematics": ("Algebra", "Geometry", "Number Theory")}
FIRST = ("Aarav Aditi Ananya Arjun Diya Ishaan Kabir Kavya Meera Nikhil Priya Rahul Riya Rohan "
         "Sara Tara Vihaan Zoya Maya Omar Lena Noah Emma Liam Sofia Yusuf Amara Kenji Ines Mateo "
         "Chloe Felix Hana Ivan Jonas Lucia Nadia Pablo Quinn Ravi").split()
LAST = ("Sharma Verma Iyer Khan Patel Reddy Nair Gupta Das Singh Mehta Rao Joshi Kapoor Bose "
        "Silva Garcia Muller Rossi Novak Okafor Tanaka Kim Haddad Larsen Dubois Costa Petrov "
        "Ahmed Fischer").split()

SCHEMA = """
CREATE TABLE courses (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE batches (id integer PRIMARY KEY, name text NOT NULL, url text,
    course_id integer REFERENCES courses(id), is_local boolean DEFAULT false, created timestamptz);
CREATE TABLE mentors (id integer PRIMARY KEY, username text NOT NULL, email text NOT NULL,
    first_name text, last_name text, display_name text, students_count integer,
    created timestamptz, password text);
CREATE TABLE students (id integer PRIMARY KEY, username text NOT NULL, email text NOT NULL,
    first_name text, last_name text, display_name text, is_active boolean NOT NULL,
    created timestamptz, batch_id integer REFERENCES batches(id),
    mentor_id integer REFERENCES mentors(id), password text);
CREATE TABLE student_activities (id integer PRIMARY KEY, student_id varchar(32) NOT NULL,
    current_streak integer, highest_streak integer, total_videos_watched integer,
    total_exams_taken integer, "timestamp" timestamptz, fetch_date date);
CREATE TABLE attempts (id integer PRIMARY KEY, user_id integer NOT NULL,
    date timestamptz NOT NULL, percentage double precision);
CREATE TABLE subject_stats (id integer PRIMARY KEY, attempt_id integer NOT NULL,
    subject text NOT NULL, score double precision);
"""

# u(x, salt) is a uniform number in [0, 1) derived from x, the seed and a salt.
_U = "((hashint8extended(({x})::bigint * 7919 + {salt}, %(seed)s) & 2147483647) / 2147483648.0)"


def _u(x: str, salt: int) -> str:
    return _U.format(x=x, salt=salt)


class DemoExists(Exception):
    """LMS tables already exist and ``replace`` was not asked for."""


def _hash_pool(cost: str) -> list[str]:
    """Hashes of the demo password: mostly pbkdf2, some bcrypt $2y$, sha512-crypt, argon2."""
    fast = cost == "fast"
    pbkdf2 = {"rounds": 1000 if fast else 600_000}
    pool = [hash_password(DEMO_PASSWORD, "django_pbkdf2_sha256", **pbkdf2) for _ in range(12)]
    for _ in range(2):
        pool.append(hash_password(DEMO_PASSWORD, "bcrypt", rounds=4 if fast else 12,
                                  ident="2y"))
    pool.append(hash_password(DEMO_PASSWORD, "sha512_crypt", rounds=1000 if fast else 656_000))
    pool.append(hash_password(DEMO_PASSWORD, "argon2", **(
        {"rounds": 1, "memory_cost": 1024, "parallelism": 1} if fast else {})))
    return pool  # index 0 pbkdf2, 12 bcrypt, 14 sha512-crypt, 15 argon2


def _copy(cur, table: str, columns: tuple[str, ...], rows) -> None:
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row))
        buf.write("\n")
    buf.seek(0)
    cur.copy_expert(sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))), buf)


def generate(url: str, *, students: int, seed: int = 1, attempts_per_student: int = 50,
             hash_cost: str = "realistic", replace: bool = False,
             reader_role: str | None = "idp_reader", reader_password: str | None = None,
             anchor: dt.date | None = None, progress: Callable[[str], None] = print) -> dict:
    """Create the LMS schema and demo data at ``url`` (an admin connection); return counts."""
    if students < 6:
        raise ValueError("--students must be at least 6 (the known demo accounts)")
    rng = random.Random(seed)
    anchor = anchor or dt.date.today()
    anchor_ts = dt.datetime.combine(anchor, dt.time(18, 0), dt.UTC)
    started = time.perf_counter()
    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM information_schema.tables "
                        "WHERE table_schema = 'public' AND table_name = ANY(%s)",
                        (list(DEMO_TABLES),))
            if cur.fetchone()[0] and not replace:
                raise DemoExists("LMS tables already exist here; pass --replace to drop and "
                                 "regenerate them (never do this on a real LMS)")
            for table in DEMO_TABLES:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(
                    sql.Identifier(table)))
            cur.execute(SCHEMA)
            cur.execute("SET max_parallel_workers_per_gather = 0")
            counts = _people(cur, rng, students, hash_cost, anchor_ts)
            progress(f"people loaded ({time.perf_counter() - started:.1f}s)")
            counts.update(_academics(cur, seed, students, attempts_per_student, anchor_ts))
            progress(f"academic data generated ({time.perf_counter() - started:.1f}s)")
            for statement in RECOMMENDED_INDEXES:
                cur.execute(statement)
            if reader_role:
                _grant_reader(cur, reader_role, reader_password)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
    finally:
        conn.close()
    counts["seconds"] = round(time.perf_counter() - started, 1)
    return counts


def _people(cur, rng: random.Random, n_students: int, hash_cost: str,
            anchor_ts: dt.datetime) -> dict:
    pool = _hash_pool(hash_cost)
    courses = list(SUBJECTS)
    _copy(cur, "courses", ("id", "name"), ((i + 1, name) for i, name in enumerate(courses)))
    n_batches = max(2, n_students // 250)
    slots = ("Morning", "Evening", "Weekend")
    batch_rows = []
    for b in range(1, n_batches + 1):
        course_id = (b - 1) % len(courses) + 1
        name = f"{courses[course_id - 1]} {slots[b % 3]} {chr(65 + (b // 3) % 26)}{b}"
        batch_rows.append((b, name, f"https://lms.example.edu/batches/{b}", course_id,
                           b % 5 == 0, (anchor_ts - dt.timedelta(days=200)).isoformat()))
    _copy(cur, "batches", ("id", "name", "url", "course_id", "is_local", "created"), batch_rows)
    n_mentors = max(2, n_students // 40)
    per_mentor = [0] * (n_mentors + 1)
    student_rows = []
    for s in range(1, n_students + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        mentor = 1 if s <= 5 else rng.randint(1, n_mentors)
        per_mentor[mentor] += 1
        known = {1: 0, 2: 12, 3: 14, 4: 15}
        password = pool[known[s]] if s in known else pool[rng.randrange(len(pool))]
        active = s != 5 and (s <= 5 or rng.random() > 0.04)
        created = anchor_ts - dt.timedelta(days=rng.randint(30, 400))
        student_rows.append((s, f"student{s}", f"student{s}@example.edu", first, last,
                             f"{first} {last}", "t" if active else "f", created.isoformat(),
                             1 if s <= 5 else rng.randint(1, n_batches), mentor, password))
    mentor_rows = []
    for m in range(1, n_mentors + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        username = "staff1" if m == 2 else f"mentor{m}"
        mentor_rows.append((m, username, f"{username}@example.edu", first, last,
                            f"{first} {last}", per_mentor[m],
                            (anchor_ts - dt.timedelta(days=500)).isoformat(),
                            pool[m % len(pool)] if m > 2 else pool[0]))
    _copy(cur, "mentors", ("id", "username", "email", "first_name", "last_name",
                           "display_name", "students_count", "created", "password"), mentor_rows)
    _copy(cur, "students", ("id", "username", "email", "first_name", "last_name",
                            "display_name", "is_active", "created", "batch_id", "mentor_id",
                            "password"), student_rows)
    return {"courses": len(courses), "batches": n_batches, "mentors": n_mentors,
            "students": n_students}


def _academics(cur, seed: int, n_students: int, per_student: int,
               anchor_ts: dt.datetime) -> dict:
    """Six monthly activity snapshots per student; ``per_student`` attempts over 180 days;
    two subject scores per attempt, drawn around each student's own ability."""
    params = {"seed": seed, "n": n_students, "k": per_student, "anchor": anchor_ts}
    cur.execute(f"""
        INSERT INTO student_activities (id, student_id, current_streak, highest_streak,
            total_videos_watched, total_exams_taken, "timestamp", fetch_date)
        SELECT (s - 1) * 6 + m + 1, s::text,
               floor({_u('s * 6 + m', 1)} * 30)::int,
               30 + floor({_u('s', 2)} * 60)::int,
               floor((m + 1) * 25 * (0.4 + {_u('s', 3)}))::int,
               floor((m + 1) * %(k)s / 6.0)::int,
               %(anchor)s - make_interval(days => (5 - m) * 30),
               (%(anchor)s - make_interval(days => (5 - m) * 30))::date
          FROM generate_series(1, %(n)s) s, generate_series(0, 5) m""", params)
    cur.execute(f"""
        INSERT INTO attempts (id, user_id, date, percentage)
        SELECT g, (g - 1) / %(k)s + 1,
               %(anchor)s - make_interval(secs => floor({_u('g', 4)} * 180 * 86400)),
               round(greatest(0, least(100,
                   35 + 50 * {_u('(g - 1) / %(k)s', 5)} + 30 * ({_u('g', 6)} - 0.5)))::numeric,
                   1)::float8
          FROM generate_series(1, %(n)s * %(k)s) g""", params)
    cur.execute("""
        INSERT INTO subject_stats (id, attempt_id, subject, score)
        SELECT (a.id - 1) * 2 + j + 1, a.id,
               subj.names[1 + ((a.id + j) %% 3)],
               round(greatest(0, least(100, a.percentage + 25 * (
                   ((hashint8extended(a.id * 2 + j, %(seed)s) & 2147483647) / 2147483648.0)
                   - 0.5) - 8 * (((a.user_id + j + a.id) %% 3) - 1)))::numeric, 1)::float8
          FROM attempts a
          JOIN students st ON st.id = a.user_id
          JOIN batches b ON b.id = st.batch_id
          JOIN (SELECT id, CASE name
                  WHEN 'NEET 2026' THEN ARRAY['Physics','Chemistry','Biology']
                  WHEN 'Foundation Grade 10' THEN ARRAY['Mathematics','Science','English']
                  WHEN 'Olympiad Mathematics' THEN ARRAY['Algebra','Geometry','Number Theory']
                  ELSE ARRAY['Physics','Chemistry','Mathematics'] END AS names
                FROM courses) subj ON subj.id = b.course_id,
               generate_series(0, 1) j""", params)
    n_attempts = n_students * per_student
    return {"student_activities": n_students * 6, "attempts": n_attempts,
            "subject_stats": n_attempts * 2}


def _grant_reader(cur, role: str, password: str | None) -> None:
    """A login role with SELECT on the LMS tables and nothing else (the bridge's LMS role)."""
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    if cur.fetchone() is None:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    if password:
        cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role)),
                    (password,))
    cur.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
        sql.Identifier(role)))
    cur.execute("SELECT current_database()")
    database = cur.fetchone()[0]
    cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(database), sql.Identifier(role)))
    cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    cur.execute(sql.SQL("REVOKE CREATE ON SCHEMA public FROM {}").format(sql.Identifier(role)))
    cur.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(
        sql.SQL(", ").join(map(sql.Identifier, DEMO_TABLES)), sql.Identifier(role)))
