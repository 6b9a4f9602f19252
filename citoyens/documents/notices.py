"""The family hears of staff decisions on its documents grouped: one e-mail per household.

Each decision writes a `DocumentNotice` row in the deciding transaction and, once that
commits, schedules `deliver_notices` for the household after DOCUMENT_NOTICE_DELAY
seconds. Every new decision pushes the household's pending notices back, so an agent
checking four documents in a row sends one e-mail listing the four decisions, a few
minutes after the last. A periodic sweep sends what a lost job left behind.

Sending locks the household row (PostgreSQL; SQLite: BEGIN IMMEDIATE), reads the pending
notices, marks them sent with a guarded UPDATE and writes the e-mails to the outbox in
the same transaction: two workers never send the same notices twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import current_app, has_request_context
from sqlalchemy import func, select, update
from sqlalchemy.orm import joinedload

from citoyens import jobs
from citoyens.database import immediate_writes, utcnow
from citoyens.documents.models import Document, DocumentNotice
from citoyens.extensions import db

log = logging.getLogger("citoyens.documents")

DEFAULT_DELAY = 180  # seconds after the household's last decision


def delay() -> timedelta:
    return timedelta(seconds=int(current_app.config.get("DOCUMENT_NOTICE_DELAY", DEFAULT_DELAY)))


def queue_notice(document: Document, *, accepted: bool, reason: str | None) -> None:
    """Record a decision to tell; the household's pending notices wait for this one."""
    due = utcnow() + delay()
    db.session.add(
        DocumentNotice(
            household_id=document.household_id,
            document_id=document.id,
            decision="accepted" if accepted else "refused",
            reason=None if accepted else (reason or "")[:500] or None,
            due_at=due,
        )
    )
    db.session.execute(
        update(DocumentNotice)
        .where(
            DocumentNotice.household_id == document.household_id,
            DocumentNotice.sent_at.is_(None),
        )
        .values(due_at=due)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    jobs.enqueue_after_commit(schedule_delivery, document.household_id)


def schedule_delivery(household_id: int) -> None:
    """Run `deliver_notices` for the household once its notices are due."""
    deliver_notices.schedule(args=(household_id,), delay=delay().total_seconds() + 1)


@jobs.task()
def deliver_notices(household_id: int) -> None:
    """Send the household's grouped notice if no decision came since (a task)."""
    send_due_notices(household_id=household_id)


@jobs.periodic_task(jobs.crontab(minute="*/5"))
def sweep_notices() -> None:
    """Send every household's due notices a lost or failed job left behind."""
    send_due_notices()


def send_due_notices(*, now: datetime | None = None, household_id: int | None = None) -> int:
    """Send one e-mail to each household whose pending notices are all due; commits.
    Returns the number of households told."""
    now = now or utcnow()
    query = (
        select(DocumentNotice.household_id)
        .where(DocumentNotice.sent_at.is_(None))
        .group_by(DocumentNotice.household_id)
        .having(func.max(DocumentNotice.due_at) <= now)
        .order_by(DocumentNotice.household_id)
    )
    if household_id is not None:
        query = query.where(DocumentNotice.household_id == household_id)
    households = list(db.session.scalars(query))
    db.session.commit()  # end the read: each household is a write transaction of its own
    if not households:
        return 0
    told = 0
    with _site() as link:
        for hid in households:
            try:
                told += _send_household(hid, now, link)
            except Exception:
                db.session.rollback()
                log.exception("document notices of household:%s not sent", hid)
    return told


@contextmanager
def _site() -> Iterator[str | None]:
    """The family's documents page, and a request context to render e-mails from a worker
    (the templates read the session). No link when the site's address is unknown."""
    from citoyens.mail import absolute_url
    from citoyens.reservations.closures import mail_context

    if has_request_context():
        yield absolute_url("documents.index")
        return
    with mail_context() as site:
        yield absolute_url("documents.index") if site else None


def _send_household(household_id: int, now: datetime, link: str | None) -> int:
    from citoyens.documents.operations import lock_household

    with immediate_writes():
        lock_household(household_id)
        notices = list(
            db.session.scalars(
                select(DocumentNotice)
                .options(
                    joinedload(DocumentNotice.document).joinedload(Document.type),
                    joinedload(DocumentNotice.document).joinedload(Document.person),
                )
                .where(
                    DocumentNotice.household_id == household_id,
                    DocumentNotice.sent_at.is_(None),
                )
                .order_by(DocumentNotice.id)
            )
        )
        if not notices or max(n.due_at for n in notices) > now:
            db.session.commit()  # sent by another worker, or a decision came meanwhile
            return 0
        ids = [n.id for n in notices]
        claimed = db.session.execute(
            update(DocumentNotice)
            .where(DocumentNotice.id.in_(ids), DocumentNotice.sent_at.is_(None))
            .values(sent_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != len(ids):
            db.session.rollback()
            return 0
        _mail(household_id, notices, link)
        db.session.commit()
    return 1


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count > 1 else ''}"


def _mail(household_id: int, notices: list[DocumentNotice], link: str | None) -> None:
    from citoyens.documents.operations import review_title
    from citoyens.mail import send_mail
    from citoyens.requests.operations import family_recipients

    lines = [
        {
            "name": review_title(n.document.type, n.document.person),
            "accepted": n.decision == "accepted",
            "reason": n.reason,
        }
        for n in notices
    ]
    accepted = sum(1 for line in lines if line["accepted"])
    refused = len(lines) - accepted
    counts = []
    if accepted:
        counts.append(_plural(accepted, "accepté"))
    if refused:
        counts.append(_plural(refused, "refusé"))
    subject = "Vérification de vos documents : " + ", ".join(counts)
    for email in family_recipients(household_id):
        send_mail(
            "document-decisions",
            email,
            subject,
            "document_decisions",
            lines=lines,
            refused=refused,
            link=link,
        )
