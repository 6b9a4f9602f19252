"""Billing on the job queue: the monthly invoice run started from the back office, and the
hourly check of online payments left pending.

The invoice run is one `JobRun` row per click: "queued", then "running", then "done" (its
summary) or "failed" (its error). The database refuses a second active run of the same
month (partial unique index), so a double click starts one run. The run works in batches
of households, one transaction each (`invoice_run.issue_month`): each batch records on the
run how far it got (`resume_after`, `done` of `total` families), and a new run of a month
whose last run failed resumes after it. Its progress is also noted beside the queue
(huey's key-value store) every second; the page polls it.
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta

from sqlalchemy import select, update

from citoyens import jobs
from citoyens.billing import invoice_run, months
from citoyens.billing.tariffs import euros
from citoyens.core.models import ACTIVE_JOB_RUN_STATUSES, JobRun
from citoyens.database import immediate_writes, utcnow
from citoyens.extensions import db
from citoyens.formatting import month_fr
from citoyens.transactions import write_transaction

log = logging.getLogger("citoyens.billing.tasks")

INVOICE_RUN = "invoice-run"
# A run still "queued" or "running" after this long died with its worker: it no longer
# blocks a new run of its month.
STALE_AFTER = timedelta(hours=2)
PROGRESS_EVERY = 1.0  # seconds between two progress notes


def run_key(month: date) -> str:
    return f"{month:%Y-%m}"


def latest_run(month: date) -> JobRun | None:
    """The most recent invoice run of `month`, if any."""
    return db.session.scalar(
        select(JobRun)
        .where(JobRun.kind == INVOICE_RUN, JobRun.key == run_key(month))
        .order_by(JobRun.created_at.desc(), JobRun.id.desc())
        .limit(1)
    )


def queue_invoice_run(
    month: date, actor_id: int | None, today: date | None = None
) -> tuple[int, bool]:
    """Queue the invoice run of `month`, its invoices dated `today`: (run id, True), or (the
    active run's id, False) when one is already queued or running. Commits; the task is
    enqueued after the commit."""
    key = run_key(month)

    def work() -> tuple[int, bool]:
        now = utcnow()
        db.session.execute(
            update(JobRun)
            .where(
                JobRun.kind == INVOICE_RUN,
                JobRun.key == key,
                JobRun.status.in_(ACTIVE_JOB_RUN_STATUSES),
                JobRun.created_at < now - STALE_AFTER,
            )
            .values(status="failed", finished_at=now, error="Interrompue (worker arrêté).")
            .execution_options(synchronize_session=False)
        )
        active = db.session.scalar(
            select(JobRun.id).where(
                JobRun.kind == INVOICE_RUN,
                JobRun.key == key,
                JobRun.status.in_(ACTIVE_JOB_RUN_STATUSES),
            )
        )
        if active is not None:
            return active, False
        # A run that stopped half-way (its batches up to `resume_after` committed): the
        # new one resumes after its last household.
        previous = db.session.execute(
            select(JobRun.status, JobRun.resume_after)
            .where(JobRun.kind == INVOICE_RUN, JobRun.key == key)
            .order_by(JobRun.created_at.desc(), JobRun.id.desc())
            .limit(1)
        ).first()
        resume_after = previous.resume_after if previous and previous.status == "failed" else None
        run = JobRun(
            kind=INVOICE_RUN,
            key=key,
            status="queued",
            actor_id=actor_id,
            resume_after=resume_after,
        )
        db.session.add(run)
        db.session.flush()  # a concurrent click's row: IntegrityError, retried, then seen above
        jobs.enqueue_after_commit(run_invoice_month, run.id, today)
        return run.id, True

    return write_transaction(work)


def progress_key(run_id: int) -> str:
    return f"job-run:{run_id}:progress"


def progress_of(run: JobRun) -> tuple[int, int | None]:
    """(families done, families to bill) of a running run; its final counts otherwise."""
    if run.status == "running":
        noted = jobs.huey.get(progress_key(run.id), peek=True)
        if noted:
            return noted
    return run.done, run.total


def summary(result: invoice_run.RunResult) -> str:
    """What the run did, in French (as the page and the command say it)."""
    if not result.count:
        return f"Aucune nouvelle facture à émettre pour {month_fr(result.month)}."
    plural = "s" if result.count > 1 else ""
    return (
        f"{result.count} facture{plural} {months.of_month(result.month)} émise{plural} "
        f"pour {euros(result.total_cents)} : "
        f"{result.emailed} envoyée{'s' if result.emailed > 1 else ''} par e-mail, "
        f"{len(result.paper)} sur papier à imprimer."
    )


@jobs.task()
def run_invoice_month(run_id: int, today: date | None = None) -> None:
    """The task: issue the month's invoices and record the outcome on the run."""
    execute_invoice_run(run_id, today)


def execute_invoice_run(run_id: int, today: date | None = None) -> str:
    """Claim the queued run, issue its month (invoices dated `today`, the day it was asked
    for), record done/failed: its final status ("skipped" when another worker has it)."""
    if not claim_run(run_id):
        return "skipped"
    run = db.session.get(JobRun, run_id)
    month = months.parse_month(run.key)
    actor = None
    if run.actor_id is not None:
        from citoyens.accounts.models import User

        actor = db.session.get(User, run.actor_id)
    last_note = [0.0]

    def progress(done: int, total: int) -> None:
        if done == total or time.monotonic() - last_note[0] >= PROGRESS_EVERY:
            last_note[0] = time.monotonic()
            jobs.huey.put(progress_key(run_id), (done, total))

    try:
        result = invoice_run.issue_month(
            month,
            actor=actor,
            today=today,
            progress=progress,
            run_id=run_id,
            resume_after=run.resume_after,
        )
    except Exception as error:
        db.session.rollback()
        if isinstance(error, months.BillingError):
            message = str(error)
        else:
            log.exception("invoice run %s failed", run_id)
            message = "Erreur inattendue (voir les journaux)."
        _finish(run_id, status="failed", error=message[:500])
        return "failed"
    _finish(
        run_id,
        status="done",
        done=result.count,
        total=result.count + result.already_invoiced,
        summary=(summary(result) + (f" {result.debit_warning}" if result.debit_warning else ""))[
            :1000
        ],
    )
    return "done"


def claim_run(run_id: int) -> bool:
    """Mark a queued `JobRun` running, committed: False when another worker has it."""
    with immediate_writes():
        claimed = db.session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.status == "queued")
            .values(status="running", started_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
    return bool(claimed)


def _finish(run_id: int, **values) -> None:
    with immediate_writes():
        db.session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(finished_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    jobs.huey.delete(progress_key(run_id))


@jobs.periodic_task(jobs.crontab(minute="7"))
def check_pending_payments() -> None:
    """Every hour: ask the bank about online payments left pending (as the command does)."""
    from citoyens.billing.payments_cli import check_pending
    from citoyens.reservations.closures import mail_context

    with mail_context():
        outcomes = check_pending(timedelta(minutes=30))
    if outcomes:
        log.info("pending payments checked: %s", dict(outcomes))


@jobs.periodic_task(jobs.crontab(hour="7", minute="30"))
def send_invoice_reminders() -> None:
    """Every morning (08:30 or 09:30 in Paris): the reminders due today (as the command)."""
    from citoyens.billing.reminders import send_due_reminders

    run = send_due_reminders()
    log.info("invoice reminders: %s", run.summary())
