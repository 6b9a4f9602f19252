"""Background jobs: one huey queue, configured from the settings.

Storage: `JOBS_URL` (``redis://…`` or ``sqlite:///path``), else `REDIS_URL`, else the SQLite
file ``instance/jobs.sqlite3``. With `JOBS_IMMEDIATE` (by default: when `TESTING`), tasks run
at once, in-process, so the tests need no worker. `flask jobs worker` runs the consumer.

Adding a task (any domain)
    Write it in a module of its domain with the decorators of this module, and add that
    module to `TASK_MODULES` below so the worker imports it::

        from citoyens import jobs

        @jobs.task(retries=2, retry_delay=60)
        def build_export(household_id: int) -> None: ...       # build_export(7) enqueues

        @jobs.periodic_task(jobs.crontab(hour="3", minute="10"))
        def purge_old_exports() -> None: ...                   # every day at 03:10 UTC

    Every task runs inside an application context, with a database session of its own,
    removed at the end; it commits its own work. Arguments are pickled: pass ids, not
    rows. From a request, enqueue after the commit of the rows the task reads:
    `enqueue_after_commit(build_export, household.id)` (a rolled-back action enqueues
    nothing). Results are not kept (`results=False`): a task that has something to show
    writes it to the database (see `JobRun` for a long run with progress).
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context
from huey import Huey, crontab
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from sqlalchemy import event
from sqlalchemy.orm import Session

from citoyens.extensions import db

log = logging.getLogger("citoyens.jobs")

__all__ = ["crontab", "enqueue_after_commit", "huey", "periodic_task", "task"]

# Modules holding tasks, imported by `init_app` so that the worker knows every task.
TASK_MODULES = (
    "citoyens.mail",
    "citoyens.billing.tasks",
    "citoyens.privacy.tasks",
    "citoyens.households.welcome",
    "citoyens.export_jobs",
    "citoyens.messages.tasks",
    "citoyens.documents.notices",
)

EXTENSION = "citoyens.jobs"


class _Queue:
    """The storage and mode of one application."""

    def __init__(self, app: Flask, storage, immediate: bool):
        self.app = app
        self.storage = storage
        self.immediate = immediate


_default: _Queue | None = None  # the last app set up: the worker's, whose threads have no context


def _queue() -> _Queue | None:
    if has_app_context():
        queue = current_app.extensions.get(EXTENSION)
        if queue is not None:
            return queue
    return _default


class CitoyensHuey(Huey):
    """A huey whose storage and immediate mode are those of the current application (or of
    the worker's), so that several apps (the tests') each have their own queue."""

    def __init__(self):
        self._own_storage = MemoryStorage("citoyens")
        super().__init__("citoyens", results=False, utc=True, storage_class=MemoryStorage)
        self._own_immediate = True  # no app set up yet: nothing to queue to

    @property
    def storage(self):
        queue = _queue()
        return queue.storage if queue is not None else self._own_storage

    @storage.setter
    def storage(self, value):
        self._own_storage = value

    @property
    def _immediate(self):  # read by Huey.enqueue
        queue = _queue()
        return queue.immediate if queue is not None else self._own_immediate

    @_immediate.setter
    def _immediate(self, value):
        self._own_immediate = value


huey = CitoyensHuey()


def make_storage(app: Flask):
    """The storage the settings name (see the module's docstring)."""
    url = app.config.get("JOBS_URL") or ""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStorage("citoyens", url=url)
    if url.startswith("sqlite:///"):
        filename = url[len("sqlite:///") :]
    elif url:
        raise ValueError(f"JOBS_URL {url!r}: redis://… or sqlite:///chemin attendu")
    else:
        filename = str(Path(app.instance_path) / "jobs.sqlite3")
    return SqliteStorage("citoyens", filename=filename)


def init_app(app: Flask) -> None:
    """Give `app` its queue and import every task module."""
    global _default
    immediate = app.config.get("JOBS_IMMEDIATE")
    if immediate is None:
        immediate = bool(app.config.get("TESTING"))
    storage = MemoryStorage("citoyens") if immediate else make_storage(app)
    queue = _Queue(app, storage, immediate)
    app.extensions[EXTENSION] = queue
    _default = queue
    for name in TASK_MODULES:
        importlib.import_module(name)


def _app() -> Flask:
    if has_app_context():
        return current_app._get_current_object()
    queue = _queue()
    if queue is None:
        from citoyens import create_app

        return create_app()
    return queue.app


def _in_app_context(func: Callable) -> Callable:
    """Run `func` in an application context of its own: its own database session, removed
    at the end whatever happens (in a test, it shares the test's connection)."""

    @functools.wraps(func)
    def run(*args, **kwargs):
        with _app().app_context():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return run


def task(**options: Any) -> Callable:
    """`huey.task(**options)` for a function that needs the app and the database."""

    def decorator(func: Callable):
        return huey.task(**options)(_in_app_context(func))

    return decorator


def periodic_task(schedule: Callable, **options: Any) -> Callable:
    """`huey.periodic_task(schedule)` for a function that needs the app and the database.
    Times are UTC."""

    def decorator(func: Callable):
        return huey.periodic_task(schedule, **options)(_in_app_context(func))

    return decorator


# --- Enqueue after commit ---------------------------------------------------------------------

PENDING = "citoyens.jobs.pending"


def enqueue_after_commit(job: Callable, *args: Any) -> None:
    """Enqueue `job(*args)` once the current database transaction commits; never if it
    rolls back. Works whoever commits (a view, `write_transaction`, a command)."""
    db.session.info.setdefault(PENDING, []).append((job, args))


@event.listens_for(Session, "after_commit")
def _enqueue_committed(session: Session) -> None:
    # SQLAlchemy 2.1 fires after_commit when a SAVEPOINT is released too: the outer
    # transaction still holds the rows (and on SQLite the write lock) a job would read.
    if session.in_nested_transaction():
        return
    for job, args in session.info.pop(PENDING, []):
        try:
            job(*args)
        except Exception:  # the queue is down: the row stays, the sweeper enqueues it again
            log.exception("could not enqueue %s%r", getattr(job, "name", job), args)


@event.listens_for(Session, "after_transaction_end")
def _forget_rolled_back(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(PENDING, None)


# --- Periodic housekeeping --------------------------------------------------------------------


def counts() -> dict[str, int]:
    """What waits in the queue: tasks ready to run, tasks scheduled for later."""
    return {"queued": huey.pending_count(), "scheduled": huey.scheduled_count()}


def make_consumer(workers: int = 1, **options: Any):
    """The huey consumer of the current app's queue, with `workers` threads."""
    if huey.immediate:
        raise RuntimeError("JOBS_IMMEDIATE : les tâches s'exécutent déjà sans worker.")
    return huey.create_consumer(workers=workers, worker_type="thread", **options)
