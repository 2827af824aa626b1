"""Flask extensions, created unbound and attached in create_app()."""

import re

from flask import Flask, current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase

from .csrf import IssuerCSRFProtect


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


migrate = Migrate()
csrf = IssuerCSRFProtect()


def bridge_connect_args(env) -> dict:
    """Client-side limits on the bridge database's connections (:mod:`idp.dbtimeouts`):
    ``IDP_DB_CONNECT_TIMEOUT`` seconds (default 5) and ``IDP_DB_STATEMENT_TIMEOUT_MS``
    (default 5000) for the server, the TCP user timeout and the client-side deadline."""
    from .config import env_int
    from .dbtimeouts import connect_args

    statement_ms = env_int(env, "IDP_DB_STATEMENT_TIMEOUT_MS", 5000, minimum=100)
    return connect_args(connect_timeout=env_int(env, "IDP_DB_CONNECT_TIMEOUT", 5, minimum=1),
                        statement_timeout_ms=statement_ms, tcp_user_timeout_ms=statement_ms)


def limit_bridge_statements(app: Flask) -> None:
    """A client-side deadline (the statement timeout + 1 s) on both bridge-database pools."""
    from .dbtimeouts import limit_statements

    options = app.config["SQLALCHEMY_ENGINE_OPTIONS"].get("connect_args", {}).get("options", "")
    match = re.search(r"statement_timeout=(\d+)", options)
    deadline = int(match.group(1)) / 1000.0 + 1.0 if match else 6.0
    with app.app_context():
        limit_statements(db.engine, deadline)
    limit_statements(app.extensions["autocommit_engine"], deadline)


def init_autocommit_engine(app: Flask) -> None:
    """A second pool on the bridge database whose connections stay in autocommit: switching
    a pooled connection's isolation level costs two driver calls per use, on every request."""
    app.extensions["autocommit_engine"] = create_engine(
        app.config["SQLALCHEMY_DATABASE_URI"], isolation_level="AUTOCOMMIT",
        **app.config["SQLALCHEMY_ENGINE_OPTIONS"])


def autocommit_engine() -> Engine:
    """This app's autocommit pool (for ``idp.dbapi`` statements)."""
    return current_app.extensions["autocommit_engine"]


def autocommit_connection() -> Connection:
    """A bridge-database connection where each statement commits on its own: one round trip
    for a read, or for an atomic single-statement write, with no BEGIN/COMMIT around it."""
    return autocommit_engine().connect()
