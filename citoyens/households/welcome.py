"""The welcome e-mail of imported families (issue 13), sent on the job queue with progress.

Staff click once; a `JobRun` ("families-welcome") follows the run like the invoice run's:
queued, running ("n of N"), done. Each imported adult account that has no password yet
and was never welcomed gets one e-mail with a link to choose its password. `welcomed_at`
is set by a conditional UPDATE in the same transaction as the e-mail's outbox row: a
second run, or two workers, never send twice.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import func, select, update

from citoyens import jobs
from citoyens.accounts.models import User
from citoyens.billing.tasks import _finish, claim_run, progress_key  # any JobRun's
from citoyens.core.models import ACTIVE_JOB_RUN_STATUSES, JobRun
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.transactions import write_transaction

log = logging.getLogger("citoyens.households.welcome")

WELCOME_RUN = "families-welcome"
RUN_KEY = "imported"
STALE_AFTER = timedelta(hours=2)
PROGRESS_EVERY = 1.0  # seconds between two progress notes


def _waiting():
    return (
        User.imported.is_(True),
        User.role == "parent",
        User.active.is_(True),
        User.password_hash.is_(None),
        User.welcomed_at.is_(None),
    )


def waiting_count() -> int:
    """Imported accounts still to welcome."""
    return db.session.scalar(select(func.count(User.id)).where(*_waiting())) or 0


def latest_run() -> JobRun | None:
    return db.session.scalar(
        select(JobRun)
        .where(JobRun.kind == WELCOME_RUN)
        .order_by(JobRun.created_at.desc(), JobRun.id.desc())
        .limit(1)
    )


def queue_welcome(actor_id: int | None) -> tuple[int, bool]:
    """(run id, True) for a new queued run; (the active run's id, False) when one is
    already queued or running (the partial unique index of `job_runs`). Commits."""

    def work() -> tuple[int, bool]:
        now = utcnow()
        active = (
            JobRun.kind == WELCOME_RUN,
            JobRun.key == RUN_KEY,
            JobRun.status.in_(ACTIVE_JOB_RUN_STATUSES),
        )
        db.session.execute(
            update(JobRun)
            .where(*active, JobRun.created_at < now - STALE_AFTER)
            .values(status="failed", finished_at=now, error="Interrompu (worker arrêté).")
            .execution_options(synchronize_session=False)
        )
        running = db.session.scalar(select(JobRun.id).where(*active))
        if running is not None:
            return running, False
        run = JobRun(kind=WELCOME_RUN, key=RUN_KEY, status="queued", actor_id=actor_id)
        db.session.add(run)
        db.session.flush()
        jobs.enqueue_after_commit(send_welcome_mails, run.id)
        return run.id, True

    return write_transaction(work)


@jobs.task()
def send_welcome_mails(run_id: int) -> None:
    execute_welcome(run_id)


def execute_welcome(run_id: int) -> str:
    """Claim the queued run and welcome every waiting account: the run's final status."""
    from citoyens.reservations.closures import mail_context

    if not claim_run(run_id):
        return "skipped"
    ids = list(db.session.scalars(select(User.id).where(*_waiting()).order_by(User.id)))
    db.session.commit()
    sent, last_note = 0, 0.0
    try:
        with mail_context():
            for done, user_id in enumerate(ids, start=1):
                sent += write_transaction(lambda uid=user_id: welcome(uid))
                if done == len(ids) or time.monotonic() - last_note >= PROGRESS_EVERY:
                    last_note = time.monotonic()
                    jobs.huey.put(progress_key(run_id), (done, len(ids)))
    except Exception:
        log.exception("welcome run %s failed", run_id)
        _finish(
            run_id,
            status="failed",
            done=sent,
            total=len(ids),
            error=f"Erreur inattendue après {sent} e-mail(s) envoyé(s) : relancez l'envoi, "
            "les familles déjà prévenues ne recevront rien de plus.",
        )
        return "failed"
    _finish(run_id, status="done", done=sent, total=len(ids), summary=summary(sent))
    return "done"


def summary(sent: int) -> str:
    if not sent:
        return (
            "Aucune famille importée à prévenir : toutes l'ont déjà été ou ont activé leur compte."
        )
    return f"{sent} e-mail(s) de bienvenue envoyé(s) aux familles importées."


def welcome(user_id: int) -> int:
    """Mark the account welcomed and queue its e-mail, if it still waits: 1, else 0."""
    from citoyens.accounts.operations import welcome_link
    from citoyens.mail import send_mail

    marked = db.session.execute(
        update(User)
        .where(User.id == user_id, *_waiting())
        .values(welcomed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not marked:
        return 0
    user = db.session.get(User, user_id)
    db.session.refresh(user)
    send_mail(
        "welcome-imported",
        user.email,
        "Votre espace famille est prêt : choisissez votre mot de passe",
        "welcome_imported",
        sensitive=True,
        user=user,
        first_name=user.first_name,
        link=welcome_link(user),
        days=int(_max_age().total_seconds() // 86400),
    )
    return 1


def _max_age() -> timedelta:
    from citoyens.accounts.operations import welcome_token_max_age

    return welcome_token_max_age()
