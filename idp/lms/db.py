"""The LMS connection: its own engine, read-only transactions, bounded timeouts on both sides
(server ``statement_timeout``; client connect timeout, TCP keepalives, ``tcp_user_timeout`` and
a per-statement deadline, :mod:`idp.dbtimeouts`).

Every failure to reach or query the LMS becomes :class:`LMSUnavailable`, which views turn into
a clear 503 ("temporarily unavailable"), never a 500, and which provisioning never reads as
"these people left".
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from ..breaker import STATE_CODES, CircuitBreaker
from ..config import ConfigError, env_float, env_int
from ..dbapi import fetch_one
from ..dbtimeouts import connect_args, database_failure, limit_statements
from ..metrics import LMS_BREAKER_STATE, LMS_ERRORS, LMS_QUERY_SECONDS


class LMSUnavailable(Exception):
    """The LMS database could not answer (down, unreachable, timed out, or refused the query)."""


class BreakerOpen(LMSUnavailable):
    """The LMS circuit breaker is open: the LMS was not even asked."""


class LMSBusy(LMSUnavailable):
    """``LMS_MAX_CONCURRENT`` LMS queries are already in flight on this host (bulkhead): the
    request gets a quick 503 instead of queueing behind a slow LMS. Not a breaker failure."""


class Bulkhead:
    """At most ``limit`` concurrent LMS queries across every process that shares ``directory``
    (the workers of one deployment), or in this process when ``directory`` is None; and, when
    ``per_process`` is given, at most that many in this process.

    Without the shared limit a slow LMS ties up every worker and /healthz queues behind it.
    The per-process one keeps a request thread of every worker free: the kernel hands each
    connection to one worker's socket (SO_REUSEPORT), so a worker whose every thread waits on
    the LMS cannot pass a /healthz on to another (deploy/serve.py sets it to threads − 1). Slot
    ``i`` is the file ``directory/slot-i`` locked with ``flock`` (released by the kernel if a
    worker dies) plus a thread lock (``flock`` does not exclude threads sharing a descriptor).
    A query waits at most :data:`SLOT_WAIT` seconds for a slot (a fast LMS frees one within
    milliseconds), then fails with :class:`LMSBusy`; after a failure on the shared slots the
    process does not wait at all for :data:`SATURATED_FOR` seconds (a slow LMS holds slots for
    seconds, and a thread waiting is a thread that serves nobody)."""

    SLOT_WAIT = 0.1
    SATURATED_FOR = 1.0

    def __init__(self, limit: int, directory: str | None = None, per_process: int | None = None):
        self.limit, self.directory, self.per_process = limit, directory, per_process
        self._here = threading.BoundedSemaphore(per_process) if per_process else None
        self._locks = [threading.Lock() for _ in range(limit)]
        self._files: dict[int, int] = {}
        self._pid = os.getpid()
        self._saturated_until = 0.0
        if directory is not None:
            os.makedirs(directory, mode=0o700, exist_ok=True)

    def _file(self, index: int) -> int:
        if self._pid != os.getpid():  # forked: descriptors opened before share their locks
            self._files, self._pid = {}, os.getpid()
        if index not in self._files:
            self._files[index] = os.open(os.path.join(self.directory, f"slot-{index}"),
                                         os.O_RDWR | os.O_CREAT, 0o600)
        return self._files[index]

    def _try(self, index: int) -> bool:
        if not self._locks[index].acquire(blocking=False):
            return False
        if self.directory is None:
            return True
        try:
            fcntl.flock(self._file(index), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            self._locks[index].release()
            return False

    def _release(self, index: int) -> None:
        if self.directory is not None:
            fcntl.flock(self._file(index), fcntl.LOCK_UN)
        self._locks[index].release()
        if self._here is not None:
            self._here.release()

    def acquire(self) -> int:
        """A free slot's index, waiting at most :data:`SLOT_WAIT`; else :class:`LMSBusy`."""
        now = time.monotonic()
        deadline = now if now < self._saturated_until else now + self.SLOT_WAIT
        start = os.getpid() % self.limit  # processes start their search at different slots
        here = self._here is None
        while True:
            here = here or self._here.acquire(blocking=False)
            if here:
                for index in (*range(start, self.limit), *range(start)):
                    if self._try(index):
                        return index
            if (now := time.monotonic()) >= deadline:
                if here and self._here is not None:
                    self._here.release()
                if here:  # the shared slots are held: the LMS is slow for everyone
                    self._saturated_until = now + self.SATURATED_FOR
                LMS_ERRORS.labels("bulkhead").inc()
                raise LMSBusy(f"LMS busy: {self.limit} queries in flight, or "
                              f"{self.per_process} in this worker (LMS_MAX_CONCURRENT, "
                              f"LMS_MAX_CONCURRENT_PER_WORKER)")
            time.sleep(0.005)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One LMS query's slot. Inside a web request the first query's slot is kept until the
        request ends (:func:`begin_request`): a request that needs the LMS counts once, so the
        limit bounds the workers waiting on it, not only the queries at one instant (a sync
        worker between two queries of a sign-in would otherwise take a free worker's turn)."""
        if getattr(_REQUEST, "held", None) is not None:
            yield
            return
        index = self.acquire()
        if getattr(_REQUEST, "active", False):
            _REQUEST.held = (self, index)
            yield
            return
        try:
            yield
        finally:
            self._release(index)


_REQUEST = threading.local()


def begin_request() -> None:
    """From now until :func:`end_request`, this thread keeps its first LMS slot (a hook)."""
    _REQUEST.active, _REQUEST.held = True, None


def end_request(_exc: BaseException | None = None) -> None:
    held, _REQUEST.held, _REQUEST.active = getattr(_REQUEST, "held", None), None, False
    if held is not None:
        bulkhead, index = held
        bulkhead._release(index)


BULKHEAD = Bulkhead(int(os.environ.get("LMS_MAX_CONCURRENT", "8") or 8))


def set_bulkhead(limit: int, directory: str | None = None,
                 per_process: int | None = None) -> None:
    """Set the bulkhead (create_app, from LMS_MAX_CONCURRENT, LMS_BULKHEAD_DIR and
    LMS_MAX_CONCURRENT_PER_WORKER)."""
    global BULKHEAD
    if (limit, directory, per_process) != (BULKHEAD.limit, BULKHEAD.directory,
                                           BULKHEAD.per_process):
        BULKHEAD = Bulkhead(limit, directory, per_process)


def _show_state(state: str) -> None:
    LMS_BREAKER_STATE.set(STATE_CODES[state])


class LMSBreaker(CircuitBreaker):
    """:class:`idp.breaker.CircuitBreaker` whose failures are LMSUnavailable and which raises
    :class:`BreakerOpen` while open (no LMS query at all).

    One per LMS: the LMS adapter holds it (``Directory.breaker``) and every reader goes through
    that one (the liveness service, the context service), so an outage seen by one reader opens
    it for all, and a recovery seen by one closes it for all. Its state is the gauge
    ``idp_lms_breaker_state``."""

    def __init__(self, failures: int = 5, cooldown: float = 30.0,
                 on_change: Callable[[str], None] | None = _show_state):
        super().__init__(failures, cooldown, on_change, counts_as_failure=(LMSUnavailable,),
                         not_a_failure=(LMSBusy,),
                         open_error=lambda: BreakerOpen(
                             "LMS circuit breaker is open: not querying the LMS until the "
                             "cool-down ends"))


# Settings of the context service's own breaker before there was one LMS breaker.
_RETIRED = {"IDP_CONTEXT_BREAKER_FAILURES": "IDP_LMS_BREAKER_FAILURES",
            "IDP_CONTEXT_BREAKER_COOLDOWN": "IDP_LMS_BREAKER_COOLDOWN"}


def load_lms_breaker(env: Mapping[str, str]) -> LMSBreaker:
    """The LMS breaker from ``IDP_LMS_BREAKER_FAILURES`` (consecutive failures that open it,
    default 5) and ``IDP_LMS_BREAKER_COOLDOWN`` (seconds open before one trial, default 30);
    raises ConfigError naming the variable."""
    for old, new in _RETIRED.items():
        if env.get(old, "").strip():
            raise ConfigError(f"{old} is no longer read: the LMS has one circuit breaker, "
                              f"shared by sign-in checks and context reads; set {new} instead")
    return LMSBreaker(env_int(env, "IDP_LMS_BREAKER_FAILURES", 5, minimum=1, maximum=1000),
                      env_float(env, "IDP_LMS_BREAKER_COOLDOWN", 30.0, minimum=0.1))


def create_lms_engine(url: str, *, statement_timeout_ms: int, connect_timeout: int,
                      pool_size: int = 5) -> Engine:
    """An engine whose every transaction is read-only and bounded in time. Single queries run
    in autocommit (no BEGIN/ROLLBACK round trips); a caller that needs one snapshot across
    rows (the streamed listing) asks for a transaction with ``isolation_level``."""
    options = "-c default_transaction_read_only=on -c idle_in_transaction_session_timeout=60000"
    args = connect_args(connect_timeout=connect_timeout, statement_timeout_ms=statement_timeout_ms,
                        tcp_user_timeout_ms=statement_timeout_ms + 1000, options=options)
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size,
                           pool_pre_ping=False, pool_recycle=1800, isolation_level="AUTOCOMMIT",
                           connect_args={**args, "application_name": "lms-zulip-bridge"})
    # the client stops waiting a little after the server would have cancelled the statement
    limit_statements(engine, statement_timeout_ms / 1000.0 + 1.0)
    return engine


@contextmanager
def _measured(name: str, engine: Engine | None = None) -> Iterator[None]:
    """Time a named query into ``idp_lms_query_seconds{query=name}``; database errors become
    LMSUnavailable (the original is chained, never shown to users)."""
    started = time.perf_counter()
    try:
        with BULKHEAD.slot():
            yield
    except (OperationalError, DBAPIError, SQLAlchemyError) as exc:
        LMS_ERRORS.labels(name).inc()
        where = database_failure(exc, engine.url if engine is not None else None)
        raise LMSUnavailable(f"LMS query {name!r} failed: {where}") from exc
    finally:
        LMS_QUERY_SECONDS.labels(name).observe(time.perf_counter() - started)


@contextmanager
def lms_query(engine: Engine, name: str) -> Iterator[Connection]:
    """A connection for one named query (see ``_measured``)."""
    with _measured(name, engine), engine.connect() as conn:
        yield conn


def lms_fetch_one(engine: Engine, name: str, statement: str,
                  params: Mapping[str, Any]) -> dict | None:
    """One row of a named driver-level query (``idp.dbapi``), for lookups on every request."""
    with _measured(name, engine):
        return fetch_one(engine, statement, params)


def ping(engine: Engine) -> None:
    with lms_query(engine, "ping") as conn:
        conn.execute(text("SELECT 1"))
