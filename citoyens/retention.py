"""Retention purges (CNIL NS-058; README « Données personnelles »).

Each category says which rows have outlived their retention at a given instant `now`;
`plan(now)` counts them (the dry run: nothing written), `purge(now)` deletes exactly
those, in batches of at most BATCH_SIZE ids, each batch its own short transaction, files
deleted once the rows that pointed to them are gone. Run daily by the worker
(`citoyens.privacy.tasks`) and by hand with `flask purge [--dry-run]`.

Families: a household is inactive when, for RETENTION_INACTIVE_MONTHS (36), nobody of it
logged in or got an account, and it had no booked day, invoice, payment, document upload,
enrolment or request; a household whose account was closed at its request goes once
closed RETENTION_CLOSED_DAYS (30). Its personal data is deleted: people (a child still in
another household stays), accounts, documents and their files, bookings, enrolments,
requests, invitations, history, archives. Invoices, credit notes, payments, credit
movements and SEPA mandates are accounting records the commune must keep (10 years, Code
de commerce L123-22 and the public accounting rules): they stay as issued, and so does
the household row they point to, emptied of its address and quotient (an anonymous
shell, `purged_at` set). A household without any of them is deleted outright.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, exists, func, or_, select, update

from citoyens import audit
from citoyens.accounts.models import User
from citoyens.billing.counter_models import CounterReceipt
from citoyens.billing.models import (
    BilledDay,
    HouseholdCredit,
    Invoice,
    Mandate,
    Payment,
    PaymentAttempt,
)
from citoyens.core.models import AuditEvent, ExportFile, JobRun, MailMessage
from citoyens.database import immediate_writes, utcnow
from citoyens.documents.models import Document
from citoyens.documents.rules import add_months, today_in_paris
from citoyens.documents.storage import get_storage
from citoyens.enrolments.models import Enrolment
from citoyens.export_jobs import expired_files_query
from citoyens.extensions import db
from citoyens.households.models import (
    Household,
    HouseholdChange,
    HouseholdMember,
    Invitation,
    Person,
)
from citoyens.households.rules import invitation_max_age
from citoyens.privacy.exports import expired_exports_query
from citoyens.privacy.models import DataExport
from citoyens.requests.models import Request
from citoyens.reservations.models import Booking

log = logging.getLogger("citoyens.retention")

BATCH_SIZE = 500
HOUSEHOLD_BATCH_SIZE = 50

DEFAULTS = {
    "RETENTION_INACTIVE_MONTHS": 36,
    "RETENTION_CLOSED_DAYS": 30,
    "RETENTION_DOCUMENT_GRACE_MONTHS": 12,
    "RETENTION_REPLACED_DOCUMENT_MONTHS": 12,
    "RETENTION_AUDIT_MONTHS": 12,
    "RETENTION_MAIL_MONTHS": 12,
    "RETENTION_JOB_RUN_DAYS": 30,
    "RETENTION_EXPORT_FILE_DAYS": 7,
}


def setting(name: str) -> int:
    return int(current_app.config.get(name, DEFAULTS[name]))


def months_before(now: datetime, months: int) -> datetime:
    """The same instant `months` calendar months earlier (clamped to the month's end)."""
    day = add_months(now.astimezone(UTC).date(), -months)
    return datetime.combine(day, now.astimezone(UTC).timetz())


# --- Which rows -------------------------------------------------------------------------------


def households_to_purge(now: datetime):
    """Households inactive for RETENTION_INACTIVE_MONTHS, or closed for
    RETENTION_CLOSED_DAYS, not purged yet: one query (NOT EXISTS on each activity)."""
    since = months_before(now, setting("RETENTION_INACTIVE_MONTHS"))
    since_day: date = since.date()
    h = Household.id
    active = [
        exists().where(
            User.household_id == h,
            or_(User.created_at >= since, User.last_login_at >= since),
        ),
        exists().where(Booking.household_id == h, Booking.day >= since_day),
        exists().where(Invoice.household_id == h, Invoice.issued_at >= since),
        exists().where(Payment.household_id == h, Payment.paid_at >= since),
        exists().where(Document.household_id == h, Document.uploaded_at >= since),
        exists().where(Enrolment.household_id == h, Enrolment.created_at >= since),
        exists().where(
            Request.household_id == h,
            or_(Request.created_at >= since, Request.updated_at >= since),
        ),
    ]
    inactive = (Household.created_at < since) & ~or_(*active)
    closed = Household.closed_at <= now - timedelta(days=setting("RETENTION_CLOSED_DAYS"))
    return select(Household.id).where(Household.purged_at.is_(None), inactive | closed)


def documents_past_retention(now: datetime):
    """Current documents expired RETENTION_DOCUMENT_GRACE_MONTHS ago; documents replaced
    RETENTION_REPLACED_DOCUMENT_MONTHS ago."""
    expired_before = add_months(today_in_paris(now), -setting("RETENTION_DOCUMENT_GRACE_MONTHS"))
    replaced_before = months_before(now, setting("RETENTION_REPLACED_DOCUMENT_MONTHS"))
    return select(Document.id).where(
        or_(
            Document.replaced_at.is_(None) & (Document.valid_until < expired_before),
            Document.replaced_at < replaced_before,
        ),
        Document.household_id.not_in(households_to_purge(now)),  # counted with them
    )


def old_audit_events(now: datetime):
    return select(AuditEvent.id).where(
        AuditEvent.created_at < months_before(now, setting("RETENTION_AUDIT_MONTHS"))
    )


def old_mail_messages(now: datetime):
    """Mail records past retention (one still waiting to be sent is never deleted)."""
    return select(MailMessage.id).where(
        MailMessage.created_at < months_before(now, setting("RETENTION_MAIL_MONTHS")),
        MailMessage.status.not_in(("pending", "sending")),
    )


def expired_invitations(now: datetime):
    """Invitation links past their lifetime, accepted or not: they can no longer be used."""
    return select(Invitation.id).where(
        Invitation.created_at < now - invitation_max_age(),
        Invitation.household_id.not_in(households_to_purge(now)),
    )


def finished_job_runs(now: datetime):
    limit = now - timedelta(days=setting("RETENTION_JOB_RUN_DAYS"))
    return select(JobRun.id).where(
        JobRun.status.in_(("done", "failed")),
        func.coalesce(JobRun.finished_at, JobRun.created_at) < limit,
    )


def expired_exports(now: datetime):
    return expired_exports_query(now).where(
        DataExport.household_id.not_in(households_to_purge(now))
    )


# --- How they go ------------------------------------------------------------------------------


def _delete_rows(model) -> Callable[[list[int]], list[str]]:
    def run(ids: list[int]) -> list[str]:
        db.session.execute(
            delete(model).where(model.id.in_(ids)).execution_options(synchronize_session=False)
        )
        return []

    return run


def _delete_documents(ids: list[int]) -> list[str]:
    keys = list(db.session.scalars(select(Document.storage_key).where(Document.id.in_(ids))))
    db.session.execute(
        delete(Document).where(Document.id.in_(ids)).execution_options(synchronize_session=False)
    )
    return keys


def _expire_exports(ids: list[int]) -> list[str]:
    keys = list(
        db.session.scalars(
            select(DataExport.storage_key).where(
                DataExport.id.in_(ids), DataExport.storage_key.is_not(None)
            )
        )
    )
    db.session.execute(
        update(DataExport)
        .where(DataExport.id.in_(ids))
        .values(status="expired", storage_key=None)
        .execution_options(synchronize_session=False)
    )
    return keys


def _delete_export_files(ids: list[int]) -> list[str]:
    keys = list(
        db.session.scalars(
            select(ExportFile.storage_key).where(
                ExportFile.id.in_(ids), ExportFile.storage_key.is_not(None)
            )
        )
    )
    db.session.execute(
        delete(ExportFile)
        .where(ExportFile.id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    return keys


# Rows that must outlive the household's personal data (accounting records).
ACCOUNTING = (
    Invoice,
    Payment,
    PaymentAttempt,
    Mandate,
    BilledDay,
    HouseholdCredit,
    CounterReceipt,
)


def _purge_households(ids: list[int]) -> list[str]:
    """Delete the personal data of these households; keep an anonymous shell for those
    their accounting records point to. Returns the storage keys of their files."""
    now = utcnow()
    keys = list(
        db.session.scalars(select(Document.storage_key).where(Document.household_id.in_(ids)))
    )
    keys += list(
        db.session.scalars(
            select(DataExport.storage_key).where(
                DataExport.household_id.in_(ids), DataExport.storage_key.is_not(None)
            )
        )
    )
    # People only of these households (a child shared with another household stays).
    people = list(
        db.session.scalars(
            select(HouseholdMember.person_id)
            .where(HouseholdMember.household_id.in_(ids))
            .except_(
                select(HouseholdMember.person_id).where(HouseholdMember.household_id.not_in(ids))
            )
        )
    )
    for model in (
        Document,
        Booking,
        Enrolment,
        Request,
        Invitation,
        HouseholdChange,
        DataExport,
        HouseholdMember,
    ):
        db.session.execute(
            delete(model)
            .where(model.household_id.in_(ids))
            .execution_options(synchronize_session=False)
        )
    db.session.execute(
        delete(User)
        .where(User.household_id.in_(ids), User.role == "parent")
        .execution_options(synchronize_session=False)
    )
    for start in range(0, len(people), BATCH_SIZE):
        db.session.execute(
            delete(Person)
            .where(Person.id.in_(people[start : start + BATCH_SIZE]))
            .execution_options(synchronize_session=False)
        )
    kept = or_(*(exists().where(model.household_id == Household.id) for model in ACCOUNTING))
    db.session.execute(
        update(Household)
        .where(Household.id.in_(ids), kept)
        .values(
            external_ref=None,
            address_line=None,
            address_extra=None,
            postcode=None,
            city=None,
            family_quotient=None,
            civil_status_checked_at=None,
            calendar_token=None,
            purged_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        delete(Household)
        .where(Household.id.in_(ids), ~kept)
        .execution_options(synchronize_session=False)
    )
    return keys


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    rows: Callable[[datetime], object]  # now -> a select of the ids concerned
    remove: Callable[[list[int]], list[str]]  # ids -> storage keys of files to delete
    batch: int = BATCH_SIZE


CATEGORIES = (
    Category(
        "households",
        "Foyers inactifs ou fermés",
        households_to_purge,
        _purge_households,
        HOUSEHOLD_BATCH_SIZE,
    ),
    Category(
        "documents",
        "Justificatifs expirés ou remplacés",
        documents_past_retention,
        _delete_documents,
    ),
    Category("audit", "Journal d'audit ancien", old_audit_events, _delete_rows(AuditEvent)),
    Category(
        "mails", "Historique des courriels ancien", old_mail_messages, _delete_rows(MailMessage)
    ),
    Category("invitations", "Invitations expirées", expired_invitations, _delete_rows(Invitation)),
    Category("job_runs", "Tâches terminées", finished_job_runs, _delete_rows(JobRun)),
    Category("exports", "Archives de données expirées", expired_exports, _expire_exports),
    Category(
        "export_files",
        "Exports du back-office préparés en tâche de fond",
        expired_files_query,
        _delete_export_files,
    ),
)


def plan(now: datetime | None = None) -> dict[str, int]:
    """The dry run: how many rows each category would remove at `now`. Writes nothing."""
    now = now or utcnow()
    counts = {}
    for category in CATEGORIES:
        ids = category.rows(now).subquery()
        counts[category.name] = db.session.scalar(select(func.count()).select_from(ids)) or 0
    db.session.rollback()
    return counts


def purge(now: datetime | None = None) -> dict[str, int]:
    """Remove what `plan(now)` counts: per category, batches of ids, each batch committed
    on its own, then its files deleted. Returns the rows removed per category."""
    now = now or utcnow()
    done = {}
    storage = get_storage()
    for category in CATEGORIES:
        total = 0
        while True:
            db.session.rollback()  # a fresh transaction for each batch
            with immediate_writes():
                ids = list(db.session.scalars(category.rows(now).limit(category.batch)))
                if not ids:
                    db.session.rollback()
                    break
                keys = category.remove(ids)
                db.session.commit()
            total += len(ids)
            for key in keys:
                try:
                    storage.delete(key)
                except Exception:  # the row is gone; a file left behind is only logged
                    log.exception("could not delete a stored file (%s)", category.name)
        done[category.name] = total
    if any(done.values()):
        with immediate_writes():
            audit.record(
                "retention.purge",
                details=", ".join(f"{name}={count}" for name, count in done.items() if count),
            )
            db.session.commit()
        log.info("retention purge: %s", done)
    return done


def labels() -> dict[str, str]:
    return {category.name: category.label for category in CATEGORIES}
