"""WSGI entry point: `gunicorn wsgi:app`."""

from citoyens import create_app

app = create_app()
