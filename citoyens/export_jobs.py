"""Staff exports (CSV, XLSX): a registry of named builders, and the files the worker
builds when an export is too large to stream.

An export is a *builder* registered under a name. It turns a dict of parameters into the
sheets of `citoyens.tabular` (the one export module); the back office either streams them
at once (`send_table`) or, above EXPORT_WORKER_ROWS rows (20,000 by default), records an
`ExportFile`, lets the worker write the file into the upload storage, and shows its
requester a page that follows the progress and then offers « Télécharger ». Only the
staff member who asked downloads it (anyone else: 404); the retention purge deletes the
row and its file RETENTION_EXPORT_FILE_DAYS (7) days after it was asked for.

Registering an export (any domain)
    In a module of your domain (no HTTP there: the worker runs it too)::

        from citoyens import export_jobs
        from citoyens.tabular import Sheet

        def unpaid_sheets(params: dict) -> list[Sheet]:
            # Rows as generators: a sheet that is not written (a CSV keeps only the first)
            # runs no query. A fixed number of queries whatever the number of rows.
            return [Sheet("Impayés", ["Famille", "Montant"], _unpaid_rows(params))]

        export_jobs.register(
            "impayes",
            sheets=unpaid_sheets,
            count=lambda params: ...,  # one COUNT query: the rows of the first sheet
            title=lambda params: f"Factures impayées de {params['mois']}",
            filename=lambda params: f"impayes-{params['mois']}",
        )

    then add the module to BUILDER_MODULES below: `builder(name)` imports them all, so a
    worker knows every name whatever it imported before. Parameters are JSON (ids, ISO
    dates): the worker builds from them later, elsewhere, so they hold everything the
    builder needs. The builder trusts them: the view checks access
    (`citoyens.services.scope`, `admin_required`) before. `title` and `filename` name no
    person (they go to the audit log, the file list and the download's name).

    In the view, once the form and the scope are checked::

        from citoyens.admin.exports import respond

        return respond("impayes", {"mois": "2030-09"}, "xlsx", target="invoice_month:2030-09")

    `respond` writes the audit line (who, what, how many rows) and answers the file, or
    303 to the page of the file being built. A link on /admin/exports (the template
    admin/exports/index.html) lets staff find the new export.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from citoyens import jobs
from citoyens.core.models import ACTIVE_EXPORT_FILE_STATUSES, ExportFile
from citoyens.database import immediate_writes, utcnow
from citoyens.documents.storage import get_storage, new_key
from citoyens.extensions import db
from citoyens.tabular import Sheet, table_bytes
from citoyens.transactions import write_transaction

log = logging.getLogger("citoyens.export_jobs")

# Modules whose import registers builders (the worker imports them on first use).
BUILDER_MODULES = (
    "citoyens.reservations.period_exports",
    "citoyens.enrolments.service_exports",
)

WORKER_ROWS = 20_000  # EXPORT_WORKER_ROWS: above this many rows, the worker builds the file
FILE_DAYS = 7  # RETENTION_EXPORT_FILE_DAYS: how long a built file is kept
PROGRESS_EVERY = 1.0  # seconds between two progress notes


@dataclass(frozen=True)
class Builder:
    name: str
    sheets: Callable[[dict], list[Sheet]]
    count: Callable[[dict], int]
    title: Callable[[dict], str]
    filename: Callable[[dict], str]


_builders: dict[str, Builder] = {}


def register(
    name: str,
    *,
    sheets: Callable[[dict], list[Sheet]],
    count: Callable[[dict], int],
    title: Callable[[dict], str],
    filename: Callable[[dict], str],
) -> Builder:
    """Register the builder `name` (see the module's docstring). Registering the same name
    twice is a mistake, unless it is the same module imported again."""
    builder = Builder(name, sheets, count, title, filename)
    known = _builders.get(name)
    if known is not None and known.sheets.__module__ != sheets.__module__:
        raise ValueError(f"export builder {name!r} is already registered")
    _builders[name] = builder
    return builder


def builder(name: str) -> Builder:
    """The builder registered as `name` (KeyError for an unknown one)."""
    for module in BUILDER_MODULES:
        importlib.import_module(module)
    return _builders[name]


def worker_threshold() -> int:
    return int(current_app.config.get("EXPORT_WORKER_ROWS", WORKER_ROWS))


def file_lifetime() -> timedelta:
    return timedelta(days=int(current_app.config.get("RETENTION_EXPORT_FILE_DAYS", FILE_DAYS)))


# --- Asking for a file ------------------------------------------------------------------------


def queue_file(name: str, params: dict, fmt: str, actor_id: int, *, rows: int) -> int:
    """Record the file `name(params)` asked by `actor_id` and enqueue its build after the
    commit: its id. The same file already queued or running for that person is reused, so
    asking again while it is being built builds nothing more (two clicks in the same
    instant may build it twice: harmless, each is its requester's). Commits."""
    entry = builder(name)
    encoded = json.dumps(params, sort_keys=True, ensure_ascii=False)
    title, filename = entry.title(params)[:200], entry.filename(params)[:80]

    def work() -> int:
        active = db.session.scalar(
            select(ExportFile.id).where(
                ExportFile.requested_by_id == actor_id,
                ExportFile.kind == name,
                ExportFile.params == encoded,
                ExportFile.format == fmt,
                ExportFile.status.in_(ACTIVE_EXPORT_FILE_STATUSES),
            )
        )
        if active is not None:
            return active
        export = ExportFile(
            kind=name,
            params=encoded,
            format=fmt,
            title=title,
            filename=filename,
            requested_by_id=actor_id,
            status="queued",
            rows=rows,
        )
        db.session.add(export)
        db.session.flush()
        jobs.enqueue_after_commit(build_file_task, export.id)
        return export.id

    return write_transaction(work)


def file_of(file_id: int, user_id: int) -> ExportFile | None:
    """The file if `user_id` asked for it; None otherwise (the caller answers 404)."""
    return db.session.scalar(
        select(ExportFile).where(ExportFile.id == file_id, ExportFile.requested_by_id == user_id)
    )


def recent_files(user_id: int, limit: int = 10) -> list[ExportFile]:
    """The person's files still kept, newest first."""
    return list(
        db.session.scalars(
            select(ExportFile)
            .where(
                ExportFile.requested_by_id == user_id,
                ExportFile.created_at > utcnow() - file_lifetime(),
            )
            .order_by(ExportFile.created_at.desc(), ExportFile.id.desc())
            .limit(limit)
        )
    )


def expires_at(export: ExportFile) -> datetime:
    return export.created_at + file_lifetime()


def is_downloadable(export: ExportFile | None, now: datetime | None = None) -> bool:
    return (
        export is not None
        and export.status == "ready"
        and export.storage_key is not None
        and expires_at(export) > (now or utcnow())
    )


# --- Progress ---------------------------------------------------------------------------------


def progress_key(file_id: int) -> str:
    return f"export-file:{file_id}:progress"


def progress_of(export: ExportFile) -> tuple[int, int | None]:
    """(rows written, rows expected) of a file being built; (its rows, its rows) after."""
    if export.status == "running":
        noted = jobs.huey.get(progress_key(export.id), peek=True)
        if noted:
            done, total = noted
            return min(done, total or done), total
        return 0, export.rows
    return export.rows or 0, export.rows


def _counted(sheets: list[Sheet], file_id: int, total: int) -> tuple[list[Sheet], dict]:
    """The sheets, the rows of the first one (what `count` estimates) counted as they are
    written, a progress note every second; and the count (`state["done"]`)."""
    state = {"done": 0, "noted": time.monotonic()}

    def rows_of(rows: Iterable) -> Iterable:
        for row in rows:
            state["done"] += 1
            if time.monotonic() - state["noted"] >= PROGRESS_EVERY:
                state["noted"] = time.monotonic()
                jobs.huey.put(progress_key(file_id), (state["done"], total))
            yield row

    first, *others = sheets
    return [replace(first, rows=rows_of(first.rows)), *others], state


# --- Building it (the worker) -----------------------------------------------------------------


@jobs.task()
def build_file_task(file_id: int) -> None:
    build_file(file_id)


def _set(file_id: int, status_from: str, **values) -> bool:
    """A conditional update of the file's row, committed: whether it applied."""
    with immediate_writes():
        changed = db.session.execute(
            update(ExportFile)
            .where(ExportFile.id == file_id, ExportFile.status == status_from)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
    return changed == 1


def build_file(file_id: int) -> str:
    """Claim the queued file, write it to the storage, mark it ready (or failed): the final
    status ("skipped" when it was not queued, e.g. another worker has it)."""
    db.session.rollback()
    if not _set(file_id, "queued", status="running", started_at=utcnow()):
        return "skipped"
    export = db.session.get(ExportFile, file_id)
    kind, fmt, total = export.kind, export.format, export.rows or 0
    try:
        entry = builder(kind)
        sheets, state = _counted(entry.sheets(json.loads(export.params)), file_id, total)
        content = table_bytes(fmt, sheets)
        key = new_key(fmt)
        get_storage().save(key, content)
    except Exception:
        log.exception("export file %s (%s) failed", file_id, kind)
        db.session.rollback()
        _set(
            file_id,
            "running",
            status="failed",
            error="Erreur lors de la préparation du fichier : demandez-le à nouveau.",
        )
        jobs.huey.delete(progress_key(file_id))
        return "failed"
    db.session.rollback()  # end the read transaction: the next one writes
    done = _set(
        file_id,
        "running",
        status="ready",
        storage_key=key,
        size=len(content),
        rows=state["done"],
        ready_at=utcnow(),
    )
    jobs.huey.delete(progress_key(file_id))
    if not done:
        get_storage().delete(key)
        return "skipped"
    return "ready"


# --- Expiry (citoyens.retention) --------------------------------------------------------------


def expired_files_query(now: datetime):
    """Files asked for more than RETENTION_EXPORT_FILE_DAYS ago, whatever their state."""
    return select(ExportFile.id).where(ExportFile.created_at <= now - file_lifetime())
