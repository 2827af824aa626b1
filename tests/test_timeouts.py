"""Client-side limits on both databases: a black-holed connection (a loopback proxy that
accepts and swallows bytes) fails within the configured time, the LMS breaker opens, requests
get a 503 with Retry-After, a connection lost mid-statement is a 503 too, and /healthz never
waits on a database."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.exc import DatabaseError

from idp.liveness import LivenessService, LivenessSettings, Policy
from idp.lms.db import BreakerOpen, LMSBreaker, LMSUnavailable, create_lms_engine
from idp.lms.directory import Directory
from tests.helpers import stored_bearer


class BlackHoleProxy:
    """A loopback TCP proxy to the Unix socket ``target``; ``swallow()`` makes it keep
    accepting and reading bytes but never forward or answer (a failover holding every byte)."""

    def __init__(self, target: str):
        self.target = target
        self.swallowing = threading.Event()
        self.swallowed = threading.Event()   # set once bytes were held back
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def swallow(self) -> None:
        self.swallowing.set()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self.sockets.append(client)
            if self.swallowing.is_set():
                threading.Thread(target=self._drain, args=(client,), daemon=True).start()
                continue
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            self.sockets.append(upstream)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _drain(self, sock: socket.socket) -> None:
        try:
            while sock.recv(65536):
                self.swallowed.set()
        except OSError:
            return

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    return
                if self.swallowing.is_set():
                    self.swallowed.set()
                    continue  # bytes in, nothing out
                dst.sendall(data)
        except OSError:
            return

    def close(self) -> None:
        self.server.close()
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass


def _tcp_url(pg, database: str, port: int, user: str = "postgres") -> str:
    return f"postgresql+psycopg2://{user}@127.0.0.1:{port}/{database}"


@pytest.fixture
def pg_socket(pg) -> str:
    """The embedded PostgreSQL's Unix socket (it listens on no TCP port)."""
    parts = urlsplit(pg.get_uri("lms_test"))
    directory = parse_qs(parts.query)["host"][0]
    return f"{directory}/.s.PGSQL.{parts.port or 5432}"


@pytest.fixture
def proxy(pg_socket):
    p = BlackHoleProxy(pg_socket)
    yield p
    p.close()


def test_black_holed_lms_fails_within_the_limit_and_the_breaker_opens(app, proxy):
    engine = create_lms_engine(_tcp_url(None, "lms_test", proxy.port, "idp_reader"),
                               statement_timeout_ms=1000, connect_timeout=2)
    with app.app_context():
        live = LivenessService(Directory(engine, app.extensions["lms_directory"].mapping,
                                         breaker=LMSBreaker(failures=2, cooldown=30)),
                               LivenessSettings(cache_seconds=0))
        assert live.active_person("student:1") is not None  # through the proxy, pooled
        proxy.swallow()
        for _ in range(2):  # the pooled connection, then a new one: both bounded
            started = time.monotonic()
            with pytest.raises(LMSUnavailable) as caught:
                live.check("student:1", Policy.FAIL_CLOSED)
            assert time.monotonic() - started < 5.0
            assert "127.0.0.1" in str(caught.value)  # the database is named
        started = time.monotonic()
        with pytest.raises(BreakerOpen):  # open: not even a connection attempt
            live.check("student:1", Policy.FAIL_CLOSED)
        assert time.monotonic() - started < 0.5
    engine.dispose()


def test_black_holed_bridge_database_is_a_quick_503_and_healthz_answers(make_app, proxy):
    black = make_app(IDP_DATABASE_URL=_tcp_url(None, "bridge_test", proxy.port),
                     IDP_DB_STATEMENT_TIMEOUT_MS="1000", IDP_DB_CONNECT_TIMEOUT="2")
    client = black.test_client()
    assert client.get("/login").status_code == 200
    proxy.swallow()
    started = time.monotonic()
    ready = client.get("/readyz")
    assert time.monotonic() - started < 5.0
    assert ready.status_code == 503 and "bridge_test" in ready.json["details"]["bridge_database"]
    assert client.get("/healthz").status_code == 200


def test_connection_lost_mid_statement_is_503_with_retry_after(app, client, monkeypatch):
    """``psycopg2.DatabaseError: server closed the connection unexpectedly`` (a restart under
    load) reaches the handler as sqlalchemy's DatabaseError, not OperationalError."""
    import psycopg2

    from idp.login import views

    def lost(*_a, **_k):
        raise DatabaseError("SELECT 1", {}, psycopg2.DatabaseError(
            "server closed the connection unexpectedly"))

    monkeypatch.setattr(views, "render_template", lost)
    response = client.get("/login", headers={"Accept": "application/json"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "10"


def test_bulkhead_answers_a_quick_503_beyond_the_concurrency_limit(app, client, monkeypatch):
    """LMS-bound requests beyond LMS_MAX_CONCURRENT in flight get 503 + Retry-After at once
    (here all slots are held, as by requests stuck on a slow LMS); the breaker stays closed."""
    from idp.lms import db as lms_db

    monkeypatch.setattr(lms_db, "BULKHEAD", lms_db.Bulkhead(2))
    headers = stored_bearer(app, "lms.context")
    live = app.extensions["liveness"]
    app.extensions["context"].service.cache.clear()
    with lms_db.BULKHEAD.slot(), lms_db.BULKHEAD.slot():
        started = time.monotonic()
        response = client.get("/api/v1/lms/students/1/profile",
                              headers=headers)
        assert time.monotonic() - started < 1.0
        assert response.status_code == 503 and int(response.headers["Retry-After"]) > 0
        assert client.get("/healthz").status_code == 200
    assert live.breaker.state == "closed"
    assert client.get("/api/v1/lms/students/1/profile",
                      headers=headers).status_code == 200


def test_bulkhead_slots_are_shared_across_processes(tmp_path):
    """The workers are separate processes: the limit must bind across processes, or a
    slow LMS ties up every worker (issue #11 item 6, bench/bulkhead.py)."""
    import subprocess
    import sys
    from pathlib import Path

    from idp.lms import db as lms_db

    root = Path(__file__).resolve().parent.parent
    here = lms_db.Bulkhead(1, str(tmp_path))
    probe = ("import sys, time; from idp.lms.db import Bulkhead, LMSBusy\n"
             f"b = Bulkhead(1, {str(tmp_path)!r}); t = time.monotonic()\n"
             "try:\n    with b.slot(): print('got')\n"
             "except LMSBusy: print('busy', time.monotonic() - t)")
    with here.slot():
        other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                               cwd=root, timeout=60)
        assert other.stdout.startswith("busy"), other.stderr
        assert float(other.stdout.split()[1]) < 1.0   # a quick refusal, not a queue
    free = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=root, timeout=60)
    assert free.stdout.startswith("got"), free.stderr


def test_a_request_keeps_one_bulkhead_slot_for_all_its_lms_queries(tmp_path):
    from idp.lms import db as lms_db

    bulkhead = lms_db.Bulkhead(2, str(tmp_path))
    lms_db.begin_request()
    try:
        with bulkhead.slot():
            pass
        with bulkhead.slot():   # the same slot again, not a second one
            pass
        others: list = []

        def elsewhere() -> None:   # another worker thread: one slot is left, then none
            others.append(bulkhead.acquire())
            with pytest.raises(lms_db.LMSBusy):
                bulkhead.acquire()
            bulkhead._release(others[0])
            others.append("done")

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(timeout=10)
        assert others[-1] == "done"
    finally:
        lms_db.end_request()
    with bulkhead.slot(), bulkhead.slot():   # released at the end of the request
        with pytest.raises(lms_db.LMSBusy):
            with bulkhead.slot():
                pass


def test_under_the_shipped_server_a_stuck_lms_read_ends_in_503_and_healthz_answers(
        app, env, proxy, tmp_path):
    """granian has no per-request timeout (gunicorn killed a worker after 30 s): what bounds a
    request is every database wait (statement timeout, client deadline, connect timeout). With
    the LMS black-holed, reads on every worker end in a 503 well within nginx's 35 s, and
    /healthz is answered meanwhile (each worker keeps a thread free of the LMS)."""
    import requests

    from tests.helpers import ShippedServer

    headers = stored_bearer(app, "lms.context")
    lms = _tcp_url(None, "lms_test", proxy.port, "idp_reader")
    settings = {"LMS_DATABASE_URL": lms, "LMS_STATEMENT_TIMEOUT_MS": "1000",
                "LMS_CONNECT_TIMEOUT": "2", "IDP_LIVENESS_CACHE_SECONDS": "0"}
    with ShippedServer({**env, **settings}, tmp_path) as server:
        url = server.base + "/api/v1/lms/students/{}/profile"
        assert requests.get(url.format(1), headers=headers, timeout=20).status_code == 200
        proxy.swallow()

        def read(student: int) -> int:  # a hung read would fail on requests' own timeout
            return requests.get(url.format(student), headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(8) as pool:
            reads = [pool.submit(read, student) for student in range(2, 10)]
            health = [requests.get(server.base + "/healthz", timeout=30).status_code
                      for _ in range(8)]
            assert {future.result() for future in reads} == {503}
        assert health == [200] * 8


def test_a_stopping_server_finishes_the_request_in_flight(app, env, proxy, tmp_path):
    """SIGTERM (systemctl stop, reload) while a request waits on the LMS: the worker finishes
    it (here a 503 once the statement's deadline passes) before it exits; the client never sees
    a reset connection."""
    import signal

    import requests

    from tests.helpers import ShippedServer

    headers = stored_bearer(app, "lms.context")
    lms = _tcp_url(None, "lms_test", proxy.port, "idp_reader")
    settings = {"LMS_DATABASE_URL": lms, "LMS_STATEMENT_TIMEOUT_MS": "1000",
                "LMS_CONNECT_TIMEOUT": "2", "IDP_LIVENESS_CACHE_SECONDS": "0"}
    with ShippedServer({**env, **settings}, tmp_path) as server, ThreadPoolExecutor(1) as pool:
        url = server.base + "/api/v1/lms/students/{}/profile"
        assert requests.get(url.format(1), headers=headers, timeout=20).status_code == 200
        proxy.swallow()
        read = pool.submit(requests.get, url.format(2), headers=headers, timeout=30)
        assert proxy.swallowed.wait(20)          # the request is now waiting on the LMS
        server.proc.send_signal(signal.SIGTERM)
        assert read.result().status_code == 503
        assert server.proc.wait(timeout=40) == 0
    assert "Killing worker" not in server.output()
