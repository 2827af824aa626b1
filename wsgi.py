"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi ...``."""

import sys

from idp import ConfigError, create_app

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"configuration error: {error}")
