"""WSGI entry point: `gunicorn app:app` or `flask --app app run`."""

import sys

from feedback import create_app
from feedback.config import ConfigError

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"feedback: cannot start: {error}")
