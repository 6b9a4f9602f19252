"""WSGI entry point: `gunicorn wsgi:app`.

Runs in production unless CITOYENS_ENV says otherwise, and then refuses to start
without SECRET_KEY (`make run` sets CITOYENS_ENV=development).
"""

from citoyens import create_app

app = create_app()
