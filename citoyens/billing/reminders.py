"""Reminders of invoices left to pay: a polite e-mail some days before the due date, and a
reminder some days after it while the invoice is still unpaid.

Administrators set both numbers of days in /admin/reglages (0 sends none). Only invoices the
family pays itself get them: "issued" (not under direct debit), with something left to pay
(billing/outstanding.py); never a credit note, nor a cancelled, paid or debited invoice.

Each reminder sent is an `InvoiceReminder` row, unique per invoice and kind, written in the
same transaction as its e-mails (the outbox): a re-run, or two workers at once, send it once;
the loser's insert fails on the unique constraint and its e-mails are never written. The
daily job (billing/tasks.py) and `flask invoices remind` call `send_due_reminders`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import has_request_context
from sqlalchemy import and_, exists, false, or_, select
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.billing.invoice_mail import invoice_link, site_address_known
from citoyens.billing.models import REMINDER_KINDS, Invoice, InvoiceReminder
from citoyens.billing.money import euros
from citoyens.billing.months import of_month
from citoyens.billing.outstanding import open_invoices
from citoyens.billing.payments import MIN_CARD_CENTS
from citoyens.core import settings
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.transactions import write_transaction

SENT, ALREADY, SETTLED, NO_ADDRESS = "sent", "already", "settled", "no_address"


@dataclass
class ReminderRun:
    today: date
    days_before: int
    days_after: int
    sent: Counter = field(default_factory=Counter)  # kind → invoices reminded
    already: int = 0  # sent meanwhile by another run
    settled: int = 0  # paid (or no longer due) meanwhile
    no_address: int = 0  # no account to write to: tried again on the next run

    @property
    def count(self) -> int:
        return sum(self.sent.values())

    def summary(self) -> str:
        """What was sent, in French."""
        if self.days_before <= 0 and self.days_after <= 0:
            return "Rappels des factures désactivés dans les réglages : aucun envoi."
        parts = [
            f"{self.sent['before']} rappel{'s' if self.sent['before'] > 1 else ''} avant "
            "l'échéance",
            f"{self.sent['after']} relance{'s' if self.sent['after'] > 1 else ''} après l'échéance",
        ]
        text = f"{self.today:%d/%m/%Y} : {' et '.join(parts)} envoyés."
        if self.no_address:
            text += f" Sans adresse e-mail (compte famille absent) : {self.no_address}."
        return text


def reminder_days() -> tuple[int, int]:
    """(days before the due date, days after it) as the settings say; 0: none."""
    current = settings.current()
    before = current["INVOICE_REMINDER_DAYS_BEFORE"] or 0
    after = current["INVOICE_REMINDER_DAYS_AFTER"] or 0
    return max(0, int(before)), max(0, int(after))


def due_kind(due_on: date, today: date, days_before: int, days_after: int) -> str | None:
    """Which reminder an open invoice due on `due_on` calls for today, if any: "before"
    within `days_before` days of its due date (not on or after it), "after" from
    `days_after` days past it. A run missed in the window sends no late "before"."""
    if days_before > 0 and today < due_on <= today + timedelta(days=days_before):
        return "before"
    if days_after > 0 and due_on <= today - timedelta(days=days_after):
        return "after"
    return None


def _not_sent(kind: str):
    return ~exists().where(InvoiceReminder.invoice_id == Invoice.id, InvoiceReminder.kind == kind)


def _due_condition(today: date, days_before: int, days_after: int):
    """`due_kind` in SQL, and the reminder not sent yet."""
    conditions = []
    if days_before > 0:
        conditions.append(
            and_(
                Invoice.due_on > today,
                Invoice.due_on <= today + timedelta(days=days_before),
                _not_sent("before"),
            )
        )
    if days_after > 0:
        conditions.append(
            and_(Invoice.due_on <= today - timedelta(days=days_after), _not_sent("after"))
        )
    return or_(*conditions) if conditions else false()


def _reminded_invoice(*columns):
    """Open invoices a reminder may concern: not under direct debit."""
    return open_invoices(*columns).where(Invoice.mandate_id.is_(None))


def due_reminders(today: date, days_before: int, days_after: int) -> list[tuple[int, str]]:
    """(invoice id, kind) of each reminder due today and not sent yet, oldest due date
    first. One query."""
    query = _reminded_invoice(Invoice.id, Invoice.due_on).where(
        _due_condition(today, days_before, days_after)
    )
    rows = db.session.execute(query.order_by(Invoice.due_on, Invoice.id)).all()
    return [
        (invoice_id, due_kind(due_on, today, days_before, days_after))
        for invoice_id, due_on, _left in rows
    ]


def remind(invoice_id: int, kind: str, run: ReminderRun, *, links: bool = True) -> str:
    """Send one reminder in its own transaction: SENT; ALREADY when another run recorded it
    first; SETTLED when nothing is left to pay (or it is no longer due); NO_ADDRESS."""
    from citoyens.mail import send_mail
    from citoyens.requests.operations import family_recipients

    def work() -> str:
        row = db.session.execute(
            _reminded_invoice(
                Invoice.household_id, Invoice.number, Invoice.month, Invoice.due_on
            ).where(Invoice.id == invoice_id)
        ).first()
        if row is None or due_kind(row.due_on, run.today, run.days_before, run.days_after) != kind:
            return SETTLED
        recipients = family_recipients(row.household_id)
        if not recipients:
            return NO_ADDRESS
        try:
            with db.session.begin_nested():
                db.session.add(
                    InvoiceReminder(
                        invoice_id=invoice_id,
                        kind=kind,
                        left_cents=row.left_cents,
                        recipients=len(recipients),
                    )
                )
                db.session.flush()
        except IntegrityError:
            return ALREADY  # the unique (invoice, kind): another run sent it
        if kind == "before":
            subject = (
                f"Rappel : votre facture {row.number} est à régler avant le {row.due_on:%d/%m/%Y}"
            )
        else:
            subject = f"Relance : votre facture {row.number} reste à régler"
        for email in recipients:
            send_mail(
                f"invoice-reminder-{kind}",
                email,
                subject,
                "invoice_reminder",
                reminder=kind,
                number=row.number,
                of_month=of_month(row.month),
                left=euros(row.left_cents),
                due_on=row.due_on,
                link=invoice_link(invoice_id) if links else None,
                # PayFiP takes 1,00 € at least: below, the counter only.
                by_card=row.left_cents >= MIN_CARD_CENTS,
            )
        audit.record(
            "invoice.reminder",
            target=f"invoice:{invoice_id}",
            details=f"{kind} left:{row.left_cents} recipients:{len(recipients)}",
        )
        return SENT

    return write_transaction(work)


@contextmanager
def _mail_context() -> Iterator[None]:
    """A request context for the e-mail templates when run from a job or a command."""
    if has_request_context():
        yield
        return
    from citoyens.reservations.closures import mail_context

    with mail_context():
        yield


def send_due_reminders(today: date | None = None) -> ReminderRun:
    """Send every reminder due `today` (Europe/Paris) and not sent yet. Commits, one
    transaction per invoice: call it from the job, a command or a test."""
    before, after = reminder_days()
    run = ReminderRun(today or today_in_paris(), before, after)
    with _mail_context():
        links = site_address_known()
        for invoice_id, kind in due_reminders(run.today, before, after):
            outcome = remind(invoice_id, kind, run, links=links)
            if outcome == SENT:
                run.sent[kind] += 1
            elif outcome == ALREADY:
                run.already += 1
            elif outcome == NO_ADDRESS:
                run.no_address += 1
            else:
                run.settled += 1
    return run


def reminders_of(invoice_id: int) -> list[InvoiceReminder]:
    """The reminders sent for an invoice, oldest first (the staff invoice page)."""
    return list(
        db.session.scalars(
            select(InvoiceReminder)
            .where(InvoiceReminder.invoice_id == invoice_id)
            .order_by(InvoiceReminder.sent_at, InvoiceReminder.id)
        )
    )


__all__ = ["REMINDER_KINDS", "ReminderRun", "due_reminders", "reminders_of", "send_due_reminders"]
