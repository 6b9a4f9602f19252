"""The month's direct debits as staff see them, and their rejections.

Rejections: the item and its payment get `rejected_at` and the reason, the invoice goes
back to "issued" (payable by card again) and the family is told by e-mail.

Functions flush and never commit: callers run them inside `write_transaction`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, update

from citoyens import audit
from citoyens.billing.direct_debit_export import (
    DirectDebitError,
    amounts_due,
    blocked_count,
    exportable_debits,
    sequence_types,
)
from citoyens.billing.mandates import format_euros
from citoyens.billing.models import (
    DirectDebitBatch,
    DirectDebitItem,
    Invoice,
    Mandate,
    Payment,
)
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.mail import absolute_url
from citoyens.transactions import after_commit

# SEPA reason codes (ISO 20022) a bank gives for a direct debit it returns, in French.
REJECTION_REASONS = {
    "AC01": "IBAN incorrect",
    "AC04": "Compte clôturé",
    "AC06": "Compte bloqué",
    "AG01": "Prélèvement interdit sur ce compte",
    "AM04": "Provision insuffisante",
    "MD01": "Pas de mandat valide",
    "MD06": "Remboursement demandé par le titulaire",
    "MD07": "Titulaire du compte décédé",
    "MS02": "Refusé par le titulaire du compte",
    "MS03": "Motif non communiqué par la banque",
    "SL01": "Opposition enregistrée par la banque",
}


@dataclass
class ExportedLine:
    item: DirectDebitItem
    invoice: Invoice
    mandate: Mandate


@dataclass
class MonthOverview:
    month: date
    pending: list[tuple[Invoice, Mandate, str, int]]  # + FRST/RCUR to come, cents to collect
    pending_total: int
    blocked: int
    batches: list[DirectDebitBatch]
    exported: list[ExportedLine]


def month_overview(month: date) -> MonthOverview:
    """What the staff page shows: to export, and already exported (a fixed number of
    queries whatever the number of invoices)."""
    rows = exportable_debits(month)
    due = amounts_due(invoice.id for invoice, _ in rows)
    rows = [(invoice, mandate) for invoice, mandate in rows if due[invoice.id] > 0]
    sequences = sequence_types(mandate.id for _, mandate in rows)
    batches = list(
        db.session.scalars(
            select(DirectDebitBatch)
            .where(DirectDebitBatch.month == month)
            .order_by(DirectDebitBatch.created_at, DirectDebitBatch.id)
        )
    )
    exported = [
        ExportedLine(*row)
        for row in db.session.execute(
            select(DirectDebitItem, Invoice, Mandate)
            .join(Invoice, Invoice.id == DirectDebitItem.invoice_id)
            .join(Mandate, Mandate.id == DirectDebitItem.mandate_id)
            .join(DirectDebitBatch, DirectDebitBatch.id == DirectDebitItem.batch_id)
            .where(DirectDebitBatch.month == month)
            .order_by(Invoice.number, DirectDebitItem.id)
        )
    ]
    return MonthOverview(
        month=month,
        pending=[
            (invoice, mandate, sequences[mandate.id], due[invoice.id]) for invoice, mandate in rows
        ],
        pending_total=sum(due[invoice.id] for invoice, _ in rows),
        blocked=blocked_count(month, exportable=len(rows)),
        batches=batches,
        exported=exported,
    )


def exported_line(item_id: int) -> ExportedLine | None:
    row = db.session.execute(
        select(DirectDebitItem, Invoice, Mandate)
        .join(Invoice, Invoice.id == DirectDebitItem.invoice_id)
        .join(Mandate, Mandate.id == DirectDebitItem.mandate_id)
        .where(DirectDebitItem.id == item_id)
    ).first()
    return ExportedLine(*row) if row else None


@dataclass
class Rejection:
    invoice_id: int
    invoice_number: str
    reopened: bool  # the invoice is "issued" (à payer) again


def record_rejection(item_id: int, code: str, *, actor) -> Rejection:
    """The bank returned this debit: the item and its payment are marked rejected, the
    invoice is to pay again (by card or at the counter) and the family gets an e-mail."""
    label = REJECTION_REASONS.get(code or "")
    if label is None:
        raise DirectDebitError("Choisissez le motif du rejet dans la liste.")
    reason = f"{code} {label}"
    now = utcnow()
    row = db.session.execute(
        update(DirectDebitItem)
        .where(DirectDebitItem.id == item_id, DirectDebitItem.rejected_at.is_(None))
        .values(rejected_at=now, rejection_reason=reason)
        .returning(DirectDebitItem.invoice_id, DirectDebitItem.end_to_end_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        raise DirectDebitError("Le rejet de ce prélèvement est déjà enregistré.")
    invoice_id, e2e = row
    db.session.execute(
        update(Payment)
        .where(Payment.transaction_id == e2e, Payment.rejected_at.is_(None))
        .values(rejected_at=now, rejection_reason=reason)
        .execution_options(synchronize_session=False)
    )
    reopened = (
        db.session.scalar(
            update(Invoice)
            .where(Invoice.id == invoice_id, Invoice.status == "debited")
            .values(status="issued", mandate_id=None, debit_on=None)
            .returning(Invoice.id)
            .execution_options(synchronize_session=False)
        )
        is not None
    )
    number = db.session.scalar(select(Invoice.number).where(Invoice.id == invoice_id))
    audit.record(
        "direct_debit.rejected",
        actor=actor,
        target=f"invoice:{invoice_id}",
        details=f"item:{item_id} reason:{code} reopened:{reopened}",
    )
    if reopened:
        after_commit(lambda: _mail_rejected(invoice_id, label))
    return Rejection(invoice_id, number, reopened)


def _mail_rejected(invoice_id: int, reason: str) -> None:
    from citoyens.mail import send_mail
    from citoyens.requests.operations import family_recipients

    invoice = db.session.get(Invoice, invoice_id)
    for email in family_recipients(invoice.household_id):
        send_mail(
            "direct-debit-rejected",
            email,
            f"Prélèvement rejeté : facture {invoice.number} à régler",
            "direct_debit_rejected",
            number=invoice.number,
            amount=format_euros(invoice.total_cents),
            month=invoice.month,
            reason=reason,
            link=absolute_url("billing.index"),
        )
