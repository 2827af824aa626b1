"""Single statements straight on the driver (psycopg2), on a connection from a SQLAlchemy pool.

For the few statements on the path of every signed-in request (the session lookup, the LMS
active check, the SAML login record): SQLAlchemy's statement and result layers cost about twice
the driver's own CPU time for a one-row query. Everything else goes through SQLAlchemy.

Statements use the driver's ``%(name)s`` parameters. Errors leave as SQLAlchemy's own
(``OperationalError`` when the database is unreachable), so callers and error handlers see
the same exceptions either way, and a connection the driver reports as dead is dropped from
the pool at once (not handed out again, and no failed reset logged on its return).
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from .dbtimeouts import deadline_of


@contextmanager
def driver_cursor(engine: Engine) -> Iterator[Any]:
    """A DB-API cursor on a pooled connection of ``engine`` (which should be in autocommit:
    each statement then commits on its own)."""
    driver_error = engine.dialect.loaded_dbapi.Error
    connection = None
    try:
        connection = engine.raw_connection()
        with deadline_of(engine, connection.driver_connection), connection.cursor() as cursor:
            yield cursor
    except driver_error as exc:
        if connection is not None and engine.dialect.is_disconnect(
                exc, connection.dbapi_connection, None):
            connection.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, driver_error) from exc
    finally:
        if connection is not None:
            connection.close()


def fetch_one(engine: Engine, statement: str, params: Mapping[str, Any]) -> dict | None:
    """The first row of ``statement`` as a dict keyed by column name, or None."""
    with driver_cursor(engine) as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([column.name for column in cursor.description], row, strict=True))


def execute(engine: Engine, statement: str, params: Mapping[str, Any]) -> None:
    """Run ``statement`` (a write) in one round trip."""
    with driver_cursor(engine) as cursor:
        cursor.execute(statement, params)


class Prepared:
    """One statement PREPAREd once per connection and then run by ``EXECUTE``: PostgreSQL
    skips parsing, analysing and planning it each time (about 0.1 ms of server CPU for the
    token endpoint's INSERT, a quarter of its share). For the hot single statements of the
    token endpoint, on the autocommit pool; written with ``%(name)s`` parameters like the
    others. A connection that lost its prepared statement (a server-side ``DISCARD``)
    prepares it again."""

    def __init__(self, name: str, statement: str) -> None:
        order: list[str] = []

        def number(match: re.Match) -> str:
            if match.group(1) not in order:
                order.append(match.group(1))
            return f"${order.index(match.group(1)) + 1}"

        self.name = name
        self.prepare = f"PREPARE {name} AS {_PARAMETER.sub(number, statement)}"
        self.execute = f"EXECUTE {name} ({', '.join(f'%({key})s' for key in order)})" \
            if order else f"EXECUTE {name}"

    def run(self, cursor: Any, params: Mapping[str, Any]) -> None:
        """Execute on ``cursor`` (of a connection in autocommit: a failed EXECUTE leaves no
        aborted transaction behind, so it can be prepared again and retried)."""
        connection = cursor.connection
        with _PREPARED_LOCK:
            known = self.name in _PREPARED.setdefault(connection, set())
        if known:
            try:
                cursor.execute(self.execute, params)
                return
            except _invalid_statement_name():
                pass   # DISCARD ALL or DEALLOCATE on the server: prepare again
        cursor.execute(self.prepare)
        with _PREPARED_LOCK:
            _PREPARED.setdefault(connection, set()).add(self.name)
        cursor.execute(self.execute, params)


_PARAMETER = re.compile(r"%\((\w+)\)s")
_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # connection -> names
_PREPARED_LOCK = threading.Lock()


def _invalid_statement_name() -> type[Exception]:
    from psycopg2.errors import InvalidSqlStatementName

    return InvalidSqlStatementName
