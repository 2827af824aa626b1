"""idp.dbapi: driver-level statements keep SQLAlchemy's errors and pool hygiene."""

from __future__ import annotations

import logging

import psycopg2
import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError, ProgrammingError

from idp.config import check_postgres_url
from idp.dbapi import execute, fetch_one


@pytest.fixture
def engine(pg):
    engine = create_engine(check_postgres_url("url", pg.get_uri("bridge_test")),
                           isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def test_rows_come_back_as_dicts_by_column_name(engine):
    assert fetch_one(engine, "SELECT %(a)s::int AS a, 'x' AS b", {"a": 7}) == {"a": 7, "b": "x"}
    assert fetch_one(engine, "SELECT 1 AS a WHERE %(a)s::int = 2", {"a": 1}) is None


def test_unreachable_database_is_sqlalchemys_operational_error():
    down = create_engine("postgresql+psycopg2://nobody@127.0.0.1:9/x",
                         connect_args={"connect_timeout": 1})
    with pytest.raises(OperationalError):
        fetch_one(down, "SELECT 1", {})


def test_a_dead_connection_is_dropped_from_the_pool(engine, pg, caplog):
    pid = fetch_one(engine, "SELECT pg_backend_pid() AS pid", {})["pid"]
    admin = psycopg2.connect(pg.get_uri("bridge_test"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()
    with pytest.raises(OperationalError):
        fetch_one(engine, "SELECT 1 AS one", {})
    # The next statement gets a new connection instead of the dead one back.
    again = fetch_one(engine, "SELECT pg_backend_pid() AS pid", {})
    assert again["pid"] != pid
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no failed reset


def test_a_failed_statement_leaves_the_connection_usable(engine):
    with pytest.raises(ProgrammingError):
        execute(engine, "INSERT INTO no_such_table VALUES (1)", {})
    assert fetch_one(engine, "SELECT 1 AS one", {}) == {"one": 1}


def test_prepared_statement_runs_once_prepared_and_survives_a_discard(engine):
    from idp.dbapi import Prepared, driver_cursor

    add = Prepared("test_add", "SELECT %(a)s::int + %(b)s::int + %(a)s::int")
    assert add.prepare == "PREPARE test_add AS SELECT $1::int + $2::int + $1::int"
    for a, b, total in ((1, 2, 4), (10, -1, 19)):
        with driver_cursor(engine) as cursor:   # pool_size=1: the same connection each time
            add.run(cursor, {"a": a, "b": b, "unused": "x"})
            assert cursor.fetchone() == (total,)
    with driver_cursor(engine) as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements WHERE name = 'test_add'")
        assert cursor.fetchone() == (1,)   # prepared once, not per call
        cursor.execute("DISCARD ALL")
        add.run(cursor, {"a": 2, "b": 3})
        assert cursor.fetchone() == (7,)


def test_prepared_statement_with_hostile_values_stays_a_value(engine):
    from idp.dbapi import Prepared, driver_cursor

    echo = Prepared("test_echo", "SELECT %(v)s::text")
    hostile = "'); DROP TABLE x; --\\"
    with driver_cursor(engine) as cursor:
        echo.run(cursor, {"v": hostile})
        assert cursor.fetchone() == (hostile,)
        echo.run(cursor, {"v": None})
        assert cursor.fetchone() == (None,)
