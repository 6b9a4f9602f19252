"""Write transactions shared by every domain: commit with retries, e-mails after commit.

Rules that must hold under concurrency (capacity, invoice numbers, payments) take their
rows with conditional UPDATEs; `write_transaction` runs such work as one transaction,
starts it with BEGIN IMMEDIATE on SQLite, retries it when the database says so, and
sends what `after_commit` queued only once the change is committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

from citoyens.database import immediate_writes, writer_turn
from citoyens.extensions import db

T = TypeVar("T")


def write_transaction(work: Callable[[], T], attempts: int = 5) -> T:
    """Run `work` and commit, as one write transaction; retried when the database
    says it is busy (SQLite) or a concurrent insert of the same row won (both).

    On SQLite the transaction starts with BEGIN IMMEDIATE, so writers queue at the
    start instead of failing on a stale snapshot, and they queue in turn
    (`database.writer_turn`), not in SQLite's sleeping busy handler.
    """
    for attempt in range(attempts):
        db.session.commit()  # end the request's read transaction: the next one writes
        db.session.info[AFTER_COMMIT] = []
        try:
            with writer_turn(db.engine), immediate_writes():
                result = work()
                db.session.commit()
        except (OperationalError, IntegrityError) as error:
            db.session.rollback()
            db.session.info.pop(AFTER_COMMIT, None)
            if not _worth_retrying(error) or attempt == attempts - 1:
                raise
            time.sleep(0.02 * (attempt + 1))
            continue
        except BaseException:
            # Any other failure (a BookingError...): nothing half done may be committed by
            # the caller later, and SQLite's write lock (BEGIN IMMEDIATE) is released now.
            db.session.rollback()
            db.session.info.pop(AFTER_COMMIT, None)
            raise
        # E-mails only once the change they announce is committed: an attempt that was
        # rolled back and retried sends nothing.
        callbacks = db.session.info.pop(AFTER_COMMIT, [])
        if callbacks:
            # They record their e-mails: a write transaction.
            with writer_turn(db.engine), immediate_writes():
                for callback in callbacks:
                    callback()
                db.session.commit()
        return result
    raise AssertionError("unreachable")


AFTER_COMMIT = "citoyens.after_commit"


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` after the commit of the current `write_transaction`, or now when
    the caller manages its own transaction (a command, a test)."""
    pending = db.session.info.get(AFTER_COMMIT)
    if pending is None:
        callback()
    else:
        pending.append(callback)


# PostgreSQL errors that a new attempt cures: serialization failure, deadlock (two
# transactions locking the same days and bookings in opposite orders, e.g. crossing
# cancellations that promote), lock not available. Told by SQLSTATE, not by the message,
# which follows the server's lc_messages ("verrou mortel détecté" in French).
RETRY_SQLSTATES = {"40001", "40P01", "55P03"}


def _worth_retrying(error: OperationalError | IntegrityError) -> bool:
    if isinstance(error, IntegrityError):
        # A concurrent insert of the same row won (unique violation: SQLSTATE 23505 on
        # PostgreSQL, "UNIQUE constraint failed" on SQLite). A CHECK or foreign-key
        # failure would fail again: not retried.
        return getattr(error.orig, "sqlstate", None) == "23505" or "UNIQUE" in str(error.orig)
    if getattr(error.orig, "sqlstate", None) in RETRY_SQLSTATES:
        return True
    return "locked" in str(error).lower()  # SQLite: "database is locked"
