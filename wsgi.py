"""WSGI entry point: served by `deploy/serve.py` (granian), or `flask --app wsgi ...`."""

import sys

from idp import ConfigError, create_app

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"configuration error: {error}")
