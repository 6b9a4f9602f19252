"""Credit notes: a correction of an issued invoice, never an edit of it."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from citoyens import audit
from citoyens.billing.models import (
    Invoice,
    InvoiceLine,
)
from citoyens.billing.months import BillingError
from citoyens.billing.numbers import format_number, take_number
from citoyens.billing.tariffs import euros
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.forms import today_in_paris


def credited_cents(invoice_id: int) -> int:
    """How much the credit notes of an invoice already gave back (a positive amount)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(Invoice.total_cents), 0)).where(
            Invoice.credit_for_id == invoice_id, Invoice.kind == "credit"
        )
    )
    return -int(total or 0)


def credits_of(invoice_id: int) -> list[Invoice]:
    return list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.credit_for_id == invoice_id, Invoice.kind == "credit")
            .order_by(Invoice.year, Invoice.sequence)
        )
    )


def creditable_cents(invoice: Invoice) -> int:
    return max(0, invoice.total_cents - credited_cents(invoice.id))


def credit_note(
    invoice: Invoice,
    lines: list[tuple[str, int]],
    reason: str,
    actor,
    today: date | None = None,
) -> Invoice:
    """A credit note ("avoir") on `invoice`: `lines` are (label, amount in cents, positive:
    what is given back). Its number comes from the same counter. When the credit notes
    cover the whole invoice, an invoice still to be paid or debited becomes "cancelled".

    Flushes; the caller commits (a view through `write_transaction`).
    """
    today = today or today_in_paris()
    # The invoice row locked (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers):
    # two credit notes at once cannot give back more than the invoice.
    db.session.execute(select(Invoice.id).where(Invoice.id == invoice.id).with_for_update())
    db.session.refresh(invoice)
    if invoice.kind != "invoice":
        raise BillingError("Un avoir ne peut porter que sur une facture, pas sur un avoir.")
    if invoice.status == "cancelled":
        raise BillingError("Cette facture est déjà entièrement annulée par avoir.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise BillingError("Indiquez le motif de l'avoir.")
    if not lines or any(amount <= 0 for _label, amount in lines):
        raise BillingError("Le montant de l'avoir doit être supérieur à zéro.")
    if any(not (label or "").strip() for label, _amount in lines):
        raise BillingError("Chaque ligne de l'avoir doit avoir un libellé.")
    amount = sum(cents for _label, cents in lines)
    remaining = creditable_cents(invoice)
    if amount > remaining:
        raise BillingError(
            f"Le montant dépasse ce qui reste à créditer sur cette facture ({euros(remaining)})."
        )
    sequence = take_number(today.year)
    credit = Invoice(
        household_id=invoice.household_id,
        kind="credit",
        credit_for_id=invoice.id,
        year=today.year,
        sequence=sequence,
        number=format_number(today.year, sequence),
        month=invoice.month,
        issued_at=utcnow(),
        due_on=today,
        total_cents=-amount,
        status="issued",
        paperless=invoice.paperless,
        addressee=invoice.addressee,
        address=invoice.address,
        family_quotient=invoice.family_quotient,
        band_label=invoice.band_label,
    )
    credit.lines = [
        InvoiceLine(
            kind="credit",
            child_name="",
            label=" ".join(label.split())[:200],
            unit_price_cents=-cents,
            quantity=1,
            amount_cents=-cents,
        )
        for label, cents in lines
    ]
    db.session.add(credit)
    if amount == remaining and invoice.status in ("issued", "direct_debit"):
        invoice.status = "cancelled"
    db.session.flush()
    audit.record(
        "invoice.credit_note",
        actor=actor,
        target=f"invoice:{invoice.id}",
        details=f"{credit.number} amount:{amount} reason:{reason}",
    )
    return credit
