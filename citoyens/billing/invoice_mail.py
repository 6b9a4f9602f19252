"""The e-mail telling each paperless household its invoice is there (after the run commits)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flask import current_app, has_request_context
from sqlalchemy import select, update

from citoyens.billing.models import (
    Invoice,
)
from citoyens.billing.months import of_month
from citoyens.billing.tariffs import euros
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.mail import absolute_url

if TYPE_CHECKING:  # the run imports this module to mail its result
    from citoyens.billing.invoice_run import RunResult


def invoice_link(invoice_id: int) -> str | None:
    """The family's page of the invoice; None outside a request without a known address."""
    try:
        return absolute_url("billing.invoice", invoice_id=invoice_id)
    except RuntimeError:
        return None


def site_address_known() -> bool:
    """Whether an absolute link can be made: a request's host, PUBLIC_URL or SERVER_NAME
    (a command without either would write "localhost" links)."""
    config = current_app.config
    return has_request_context() or bool(config.get("PUBLIC_URL") or config.get("SERVER_NAME"))


@contextmanager
def _mail_context() -> Iterator[None]:
    """A request context for the e-mail templates when run from a command."""
    if has_request_context():
        yield
        return
    from citoyens.reservations.closures import mail_context

    with mail_context():
        yield


def mail_invoices(result: RunResult) -> None:
    """Tell each paperless household its invoice is there; note when it was mailed.
    Runs after the run's commit; the caller (write_transaction) commits again.

    A batch of the run at once: the account holders read in one query, the messages
    rendered from templates looked up once and put in the outbox in one statement with
    one job to send them (`send_mails`), the invoices marked mailed in one UPDATE."""
    from citoyens.accounts.models import User
    from citoyens.mail import Outgoing, send_mails

    wanted = {invoice.id: invoice for invoice in result.paperless}
    if not wanted:
        return
    subject = f"Votre facture {of_month(result.month)} est disponible"
    links = site_address_known()
    # The account holders of every household at once (as `family_recipients` reads them).
    addresses: dict[int, list[str]] = {}
    for household_id, email in db.session.execute(
        select(User.household_id, User.email)
        .where(
            User.household_id.in_({invoice.household_id for invoice in wanted.values()}),
            User.active.is_(True),
        )
        .order_by(User.id)
    ):
        addresses.setdefault(household_id, []).append(email)
    messages: list[Outgoing] = []
    mailed: list[int] = []
    with _mail_context():
        for invoice in db.session.execute(
            select(
                Invoice.id,
                Invoice.household_id,
                Invoice.number,
                Invoice.month,
                Invoice.total_cents,
                Invoice.due_on,
                Invoice.debit_on,
                Invoice.status,
            )
            .where(Invoice.id.in_(wanted))
            .order_by(Invoice.id)
        ):
            recipients = addresses.get(invoice.household_id, [])
            if not recipients:
                result.not_emailed += 1
                continue
            values = {
                "number": invoice.number,
                "of_month": of_month(invoice.month),
                "total": euros(invoice.total_cents),
                "due_on": invoice.due_on,
                "debit_on": invoice.debit_on,
                "direct_debit": invoice.status == "direct_debit",
                "link": invoice_link(invoice.id) if links else None,
            }
            messages += [Outgoing(email, subject, values) for email in recipients]
            # In the outbox: the worker sends it (and retries).
            mailed.append(invoice.id)
            wanted[invoice.id].mailed = True
            result.emailed += 1
        send_mails("invoice-issued", "invoice_issued", messages)
    if mailed:
        db.session.execute(
            update(Invoice)
            .where(Invoice.id.in_(mailed))
            .values(mailed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
