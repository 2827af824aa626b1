"""Client-side limits on PostgreSQL connections (both the bridge's database and the LMS), so a
black-holed or silently dropped connection fails within seconds instead of hanging a request.

- ``connect_timeout`` bounds the whole connection start-up (libpq);
- TCP keepalives and ``tcp_user_timeout`` end a connection whose peer vanished (a firewall
  dropping idle connections, a failover) at the kernel level;
- ``statement_timeout`` bounds the work on the server;
- a per-process watchdog bounds each statement on the client: a statement still waiting for
  its answer ``deadline`` seconds after it was sent gets its socket shut down, so the driver
  raises ("server closed the connection unexpectedly"), the pool discards the connection and
  the caller answers 503. This is what catches a peer that accepts bytes and never answers
  (a proxy holding every byte), which no server-side or TCP setting can.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)


def connect_args(*, connect_timeout: float, statement_timeout_ms: int | None = None,
                 tcp_user_timeout_ms: int = 5000, options: str = "") -> dict:
    """psycopg2/libpq connection parameters with the limits above."""
    args = {"connect_timeout": max(1, int(round(connect_timeout))), "keepalives": 1,
            "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2,
            "tcp_user_timeout": int(tcp_user_timeout_ms)}
    parts = [options] if options else []
    if statement_timeout_ms is not None:
        parts.append(f"-c statement_timeout={int(statement_timeout_ms)}")
    if parts:
        args["options"] = " ".join(parts)
    return args


class _Watchdog(threading.Thread):
    """Shuts down the socket of statements past their deadline (one thread per process)."""

    def __init__(self):
        super().__init__(name="db-statement-watchdog", daemon=True)
        self._lock = threading.Lock()
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, int] = {}  # ticket -> socket fd
        self._tickets = itertools.count()
        self._wake = threading.Event()
        self._wakes_at = 0.0    # when the thread next looks at the heap by itself

    def watch(self, fd: int, deadline: float) -> int:
        ticket = next(self._tickets)
        with self._lock:
            self._live[ticket] = fd
            heapq.heappush(self._heap, (deadline, ticket))
            # Wake the thread only for a deadline before its own next look: with one deadline
            # per engine, a new statement's is later than those already watched, so the
            # thread is not woken on every statement.
            early = deadline < self._wakes_at
        if early:
            self._wake.set()
        return ticket

    def release(self, ticket: int) -> None:
        with self._lock:
            self._live.pop(ticket, None)

    def run(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)
                wait = (self._heap[0][0] - time.monotonic()) if self._heap else 1.0
                if self._heap and wait <= 0:
                    _, ticket = heapq.heappop(self._heap)
                    fd = self._live.pop(ticket, None)
                else:
                    fd = None
                    wait = max(0.01, min(wait, 1.0))
                    self._wakes_at = time.monotonic() + wait
                    self._wake.clear()
            if fd is not None:
                _shutdown(fd)
                continue
            self._wake.wait(wait)


def _shutdown(fd: int) -> None:
    try:
        sock = socket.socket(fileno=os.dup(fd))
    except OSError:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
        log.warning("database statement past its client-side deadline: connection closed")
    except OSError:
        pass  # already closed
    finally:
        sock.close()


_WATCHDOG: _Watchdog | None = None
_WATCHDOG_LOCK = threading.Lock()


def _watchdog() -> _Watchdog:
    global _WATCHDOG
    watchdog = _WATCHDOG
    if watchdog is not None and watchdog.is_alive():
        return watchdog
    with _WATCHDOG_LOCK:
        if _WATCHDOG is None or not _WATCHDOG.is_alive():
            _WATCHDOG = _Watchdog()
            _WATCHDOG.start()
        return _WATCHDOG


_DEADLINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@contextmanager
def deadline_of(engine: Engine, driver_connection) -> Iterator[None]:
    """Watch ``driver_connection`` for the block with ``engine``'s deadline (if it has one):
    the driver-level statements of :mod:`idp.dbapi`."""
    deadline = _DEADLINES.get(engine)
    if deadline is None:
        yield
        return
    try:
        ticket = _watchdog().watch(driver_connection.fileno(), time.monotonic() + deadline)
    except Exception:  # noqa: BLE001 - no socket to watch (closed): the driver will say
        yield
        return
    try:
        yield
    finally:
        _watchdog().release(ticket)


def limit_statements(engine: Engine, deadline: float) -> None:
    """Give every statement run through ``engine`` a client-side ``deadline`` (seconds)."""
    _DEADLINES[engine] = deadline

    @event.listens_for(engine, "before_cursor_execute")
    def _start(conn, cursor, statement, parameters, context, executemany):
        try:
            fd = conn.connection.driver_connection.fileno()
        except Exception:  # noqa: BLE001 - no socket to watch (closed): the driver will say
            return
        conn.info["deadline_ticket"] = _watchdog().watch(fd, time.monotonic() + deadline)

    def _end(conn) -> None:
        ticket = conn.info.pop("deadline_ticket", None)
        if ticket is not None and _WATCHDOG is not None:
            _WATCHDOG.release(ticket)

    event.listen(engine, "after_cursor_execute", lambda conn, *a: _end(conn))
    event.listen(engine, "handle_error", lambda ctx: _end(ctx.connection)
                 if ctx.connection is not None else None)


def database_failure(exc: BaseException, url=None) -> str:
    """One line naming the database and the driver's cause, never a traceback:
    ``127.0.0.1:5432/bridge: OperationalError: connection to server ... refused``."""
    cause = getattr(exc, "orig", None) or exc
    text = (str(cause).strip().splitlines() or [""])[0][:300]
    where = ""
    if url is not None:
        where = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}: "
    return f"{where}{type(cause).__name__}: {text}"
