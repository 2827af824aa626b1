"""The LMS connection: its own engine, read-only transactions, bounded timeouts on both sides
(server ``statement_timeout``; client connect timeout, TCP keepalives, ``tcp_user_timeout`` and
a per-statement deadline, :mod:`idp.dbtimeouts`).

Every failure to reach or query the LMS becomes :class:`LMSUnavailable`, which views turn into
a clear 503 ("temporarily unavailable"), never a 500, and which provisioning never reads as
"these people left".
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from ..breaker import CircuitBreaker
from ..dbapi import fetch_one
from ..dbtimeouts import connect_args, database_failure, limit_statements
from ..metrics import LMS_ERRORS, LMS_QUERY_SECONDS


class LMSUnavailable(Exception):
    """The LMS database could not answer (down, unreachable, timed out, or refused the query)."""


class BreakerOpen(LMSUnavailable):
    """The LMS circuit breaker is open: the LMS was not even asked."""


class LMSBusy(LMSUnavailable):
    """This process already has ``LMS_MAX_CONCURRENT`` LMS queries in flight (bulkhead): the
    request gets a quick 503 instead of queueing behind a slow LMS. Not a breaker failure."""


class Bulkhead:
    """At most ``limit`` concurrent LMS queries per process; the next one fails at once."""

    def __init__(self, limit: int):
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            LMS_ERRORS.labels("bulkhead").inc()
            raise LMSBusy(f"LMS busy: {self.limit} queries already in flight in this process "
                          f"(LMS_MAX_CONCURRENT)")
        try:
            yield
        finally:
            self._slots.release()


BULKHEAD = Bulkhead(int(os.environ.get("LMS_MAX_CONCURRENT", "8") or 8))


def set_bulkhead(limit: int) -> None:
    """Resize the per-process bulkhead (create_app, from LMS_MAX_CONCURRENT)."""
    global BULKHEAD
    if limit != BULKHEAD.limit:
        BULKHEAD = Bulkhead(limit)


class LMSBreaker(CircuitBreaker):
    """:class:`idp.breaker.CircuitBreaker` whose failures are LMSUnavailable and which raises
    :class:`BreakerOpen` while open (no LMS query at all)."""

    def __init__(self, failures: int, cooldown: float,
                 on_change: Callable[[str], None] | None = None):
        super().__init__(failures, cooldown, on_change, counts_as_failure=(LMSUnavailable,),
                         not_a_failure=(LMSBusy,),
                         open_error=lambda: BreakerOpen(
                             "LMS circuit breaker is open: not querying the LMS until the "
                             "cool-down ends"))


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
