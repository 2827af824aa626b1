"""Flask extensions, created unbound and attached in create_app()."""

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
