"""Fixtures: one app per session, each test inside a transaction rolled back at its end.

`TEST_DATABASE_URL=postgresql://...` runs the whole suite on PostgreSQL; SQLite
(a file in a temporary folder) otherwise.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager

import pytest
from flask_sqlalchemy.session import _app_ctx_id
from hypothesis import settings
from sqlalchemy import event, text
from sqlalchemy.orm import scoped_session, sessionmaker

from citoyens import create_app
from citoyens.extensions import db, limiter, mail
from tests.factories import make_user

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL")

# Property tests. "ci" (the default, `make test`): derandomized, the same cases on every run,
# so that the suite never fails at random. "fuzz" (`make fuzz`): fresh random cases, and
# FUZZ_FACTOR times each test's own number of examples.
HYPOTHESIS_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
FUZZ_FACTOR = int(os.environ.get("FUZZ_FACTOR", "20"))
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("fuzz", derandomize=False, database=None, deadline=None)
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_collection_modifyitems(items):
    """Under the "fuzz" profile, each property test draws FUZZ_FACTOR times its examples."""
    if HYPOTHESIS_PROFILE != "fuzz":
        return
    scaled = set()
    for item in items:
        test = getattr(item, "obj", None)
        current = getattr(test, "_hypothesis_internal_use_settings", None)
        if current is None or id(test) in scaled:
            continue
        scaled.add(id(test))
        test._hypothesis_internal_use_settings = settings(
            current, max_examples=current.max_examples * FUZZ_FACTOR
        )


def scratch_database_name(name: str) -> str:
    """The name of a PostgreSQL database a test creates beside TEST_DATABASE_URL: prefixed
    with the test database's own name unless that is "test", so that two suites run at once
    on one server (two work trees, `TEST_DATABASE_URL=.../test_a`) never drop each other's."""
    base = (TEST_DATABASE_URL or "").rsplit("/", 1)[-1].split("?")[0]
    return name if base in ("", "test") else f"{base}_{name}"


def _cheap_password_hashing() -> None:
    """argon2id with the smallest parameters: the same code paths (hash, verify, rehash of
    other parameters), 1 ms instead of 120 ms a hash; the suite logs in hundreds of times."""
    from argon2 import PasswordHasher

    from citoyens.accounts import passwords

    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    passwords._DUMMY_HASH = passwords._hasher.hash("citoyens-dummy-password-for-timing")


_cheap_password_hashing()


def database_url(tmp_path_factory, name: str = "test") -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_path_factory.mktemp('db') / name}.sqlite3"


def test_config(url: str, **overrides) -> dict:
    config = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": url,
        "MAIL_BACKEND": "smtp",
        "MAIL_SUPPRESS_SEND": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        "RATELIMIT_ENABLED": True,
    }
    config.update(overrides)
    return config


test_config.__test__ = False  # a helper, not a test, wherever it is imported


def reset_schema() -> None:
    """Empty database with the models' tables (PostgreSQL: the whole public schema)."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        db.drop_all()
    db.create_all()


@contextmanager
def dedicated_app(tmp_path, name: str):
    """An app on a database of its own (a SQLite file, or a PostgreSQL database `name`
    created beside TEST_DATABASE_URL and dropped after): threads there really commit,
    and the shared test database is never touched. For tests marked `own_database`."""
    from sqlalchemy import create_engine

    admin = None
    if TEST_DATABASE_URL:
        name = scratch_database_name(name)
        admin = create_engine(
            TEST_DATABASE_URL.replace("postgresql://", "postgresql+psycopg://"),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
        url = TEST_DATABASE_URL.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp_path}/{name}.sqlite3"
    app = create_app(test_config(url, UPLOAD_FOLDER=str(tmp_path / f"{name}-uploads")))
    with app.app_context():
        db.create_all()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            admin.dispose()


def own_database_fixtures(name: str):
    """`race_app, app = own_database_fixtures("billing_race")` in a concurrency module:
    its tests run on a database of their own, and `app` (which the autouse transaction
    fixture asks for) is that one, so the shared test database is never reset."""

    @pytest.fixture
    def race_app(tmp_path):
        with dedicated_app(tmp_path, name) as app:
            yield app

    @pytest.fixture
    def app(race_app):
        return race_app

    return race_app, app


@pytest.fixture(scope="session")
def app(tmp_path_factory):
    app = create_app(test_config(database_url(tmp_path_factory)))
    with app.app_context():
        reset_schema()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _transaction(request, app):
    """Every test runs in a transaction rolled back at the end; commits become savepoints."""
    if "live_server" in request.fixturenames or request.node.get_closest_marker("own_database"):
        yield
        return
    with app.app_context():
        connection = db.engine.connect()
    transaction = connection.begin()
    original = db.session
    # A plain Session: Flask-SQLAlchemy's own picks the engine and would ignore `bind`.
    db.session = scoped_session(
        sessionmaker(bind=connection, join_transaction_mode="create_savepoint"),
        scopefunc=_app_ctx_id,
    )
    limiter.reset()
    try:
        yield
    finally:
        db.session = original
        transaction.rollback()
        connection.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def outbox(app):
    """The e-mails sent during the test (Flask-Mail, sending suppressed)."""
    with mail.record_messages() as messages:
        yield messages


CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client, path: str = "/accessibilite") -> str:
    """A CSRF token for the client's current session, read from a page like a browser would."""
    response = client.get(path)
    match = CSRF_META.search(response.get_data(as_text=True))
    assert match, "page without a CSRF token"
    return match.group(1)


def post(client, path: str, data: dict | None = None, **kwargs):
    """POST a form with the session's CSRF token, as the page's form would."""
    data = dict(data or {})
    data.setdefault("csrf_token", csrf_token(client))
    return client.post(path, data=data, **kwargs)


def decoded(response) -> bytes:
    """A response's body as sent, decoded by its Content-Encoding (br, gzip or none)."""
    coding = response.headers.get("Content-Encoding")
    if coding == "br":
        import brotli

        return brotli.decompress(response.data)
    if coding == "gzip":
        import gzip

        return gzip.decompress(response.data)
    assert coding is None, coding
    return response.data


class AuthActions:
    def __init__(self, client):
        self._client = client

    def login(self, account=None, *, email=None, password=None, remember=False):
        data = {
            "email": email or account.email,
            "password": password or account.password,
        }
        if remember:
            data["remember"] = "y"
        return post(self._client, "/connexion", data)

    def logout(self):
        return post(self._client, "/deconnexion")


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def parent(app):
    return make_user(app, role="parent", children=2)


@pytest.fixture
def staff(app):
    return make_user(app, role="staff")


@pytest.fixture
def admin(app):
    return make_user(app, role="admin")


@contextmanager
def counted_queries(app):
    """The SQL statements run inside the block (savepoint bookkeeping left out)."""
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)
