"""Engine set-up shared by the app and the tests, and small column helpers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from sqlalchemy import DateTime, event
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    """Timezone-aware now, in UTC: the only clock the models use."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no zone; PostgreSQL's timestamptz does. Both come back aware.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


_immediate: ContextVar[bool] = ContextVar("sqlite_immediate", default=False)


@contextmanager
def immediate_writes() -> Iterator[None]:
    """Transactions begun inside start with BEGIN IMMEDIATE on SQLite: a writer waits
    for the write lock at the start (busy timeout) instead of failing later on a stale
    snapshot. PostgreSQL needs nothing: its row locks and re-checked WHERE do it."""
    token = _immediate.set(True)
    try:
        yield
    finally:
        _immediate.reset(token)


try:
    import fcntl
except ImportError:  # not on Windows: SQLite's busy handler alone
    fcntl = None


def writers_lock_path(engine: Engine) -> str | None:
    """`<database file>-writers` for a SQLite file (beside its -wal and -shm); None
    otherwise."""
    if engine.dialect.name != "sqlite" or fcntl is None:
        return None
    database = engine.url.database
    if database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return f"{database}-writers"


_has_turn: ContextVar[bool] = ContextVar("sqlite_writer_turn", default=False)
TURN_POLL_SECONDS = 0.001
TURN_MAX_WAIT_SECONDS = 30  # then SQLite's own busy timeout (30 s) decides


@contextmanager
def writer_turn(engine: Engine) -> Iterator[None]:
    """On a SQLite file, write transactions taken in turn: each takes an exclusive kernel
    lock (flock) on `writers_lock_path` before its BEGIN IMMEDIATE, looking again every
    millisecond while another writer holds it. Without it, a writer that finds the
    database locked waits in SQLite's busy handler, which sleeps 1, 2, 5 … up to 100 ms
    between looks: 500 parents tapping the same day in three processes then wait far
    longer than the writes take. One lock per transaction (its own file description), so
    threads and processes queue alike; a crashed process's lock goes with it. Already
    holding it (a write transaction started inside another, e.g. a job run in-line),
    nothing more is taken; after TURN_MAX_WAIT_SECONDS the writer goes on without it, so
    a holder that never ends cannot stop the others for longer than SQLite would.
    PostgreSQL: nothing (its row locks wake waiters at once)."""
    path = writers_lock_path(engine)
    if path is None or _has_turn.get():
        yield
        return
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    token = _has_turn.set(True)
    try:
        deadline = time.monotonic() + TURN_MAX_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(TURN_POLL_SECONDS)
        yield
    finally:
        _has_turn.reset(token)
        os.close(descriptor)  # releases the lock


def configure_sqlite(engine: Engine) -> None:
    """WAL, busy timeout, foreign keys, and real transactions for SQLite.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT;
    SQLAlchemy's documented recipe takes it over so nested transactions (used
    by the tests) and row-count-checked updates behave as on PostgreSQL.
    """
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _immediate.get() else "BEGIN")
