"""Flask extensions, created unbound and attached in create_app()."""

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


def autocommit_connection():
    """A bridge-database connection where each statement commits on its own: one round trip
    for a read, or for an atomic single-statement write, with no BEGIN/COMMIT around it."""
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
migrate = Migrate()
csrf = CSRFProtect()
