"""Invoices, read side: a household's statement (invoices, balance, payments) and one
invoice's details; the staff's month list is in billing.invoice_list. Plain queries, no
HTTP; each page runs a fixed number of queries whatever the number of invoices.

Balance due: for each invoice still "issued", its total minus the credit notes that correct
it and minus the payments that count (`Payment.counts`: not rejected by the bank, not
reversed at the counter; never below zero); a credit note that corrects no
invoice reduces the balance as a whole. Invoices under direct debit are not "to pay": the
bank collects them, so they are counted apart. Credit notes are shown negative whatever the
sign their row carries (`signed_total`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from citoyens.billing.models import PAYMENT_METHODS, Invoice, Mandate, Payment
from citoyens.extensions import db
from citoyens.formatting import date_fr
from citoyens.forms import today_in_paris
from citoyens.households.models import Household


def today() -> date:
    """The billing pages' clock (Europe/Paris): "en retard" is decided against it.
    Tests patch this function."""
    return today_in_paris()


def signed_total(invoice: Invoice) -> int:
    """The amount as the family reads it: a credit note is negative."""
    return -abs(invoice.total_cents) if invoice.kind == "credit" else invoice.total_cents


# --- Status in words ----------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """`code` picks the badge's style; `label` is what the badge says (never colour alone)."""

    code: str  # due, late, paid, debit, debited, cancelled, credit
    label: str


def invoice_state(
    invoice: Invoice,
    *,
    today: date,
    paid_on: datetime | None = None,
    open_cents: int | None = None,
) -> State:
    """ "À payer avant le 15/10/2026", "En retard", "Payée le …", "Prélèvement prévu le …",
    "Prélevée", "Annulée par avoir", or "Avoir". `open_cents` (what is left to pay), when
    known, turns an issued invoice with nothing left into "Soldée" rather than "En retard"."""
    if invoice.kind == "credit":
        return State("credit", "Avoir")
    status = invoice.status
    if status == "cancelled":
        return State("cancelled", "Annulée par avoir")
    if status == "paid":
        return State("paid", f"Payée le {date_fr(paid_on)}" if paid_on else "Payée")
    if status == "debited":
        return State("debited", f"Prélevée le {date_fr(paid_on)}" if paid_on else "Prélevée")
    if status == "direct_debit":
        when = f" le {date_fr(invoice.debit_on)}" if invoice.debit_on else ""
        return State("debit", f"Prélèvement prévu{when}")
    if open_cents == 0:
        return State("paid", "Soldée")
    if invoice.due_on < today:
        return State("late", "En retard")
    return State("due", f"À payer avant le {date_fr(invoice.due_on)}")


STATUS_FILTERS = {
    "issued": "À payer",
    "overdue": "En retard",
    "direct_debit": "Prélèvement prévu",
    "paid": "Payées",
    "debited": "Prélevées",
    "cancelled": "Annulées par avoir",
    "credit": "Avoirs",
}


# How a counter receipt reads: "Chèque n° 1234567 (Banque Exemple) reçu le 12/10/2026".
_RECEIVED = {
    "cheque": ("Chèque", "reçu"),
    "cash": ("Espèces", "reçues"),
    "transfer": ("Virement", "reçu"),
    "cesu": ("Titres CESU", "reçus"),
    "ancv": ("Chèques-vacances ANCV", "reçus"),
}


def receipt_label(receipt) -> str:
    """A counter receipt in words: its mode, number, bank or issuer and date received."""
    noun, received = _RECEIVED.get(
        receipt.method, (PAYMENT_METHODS.get(receipt.method, receipt.method), "reçu")
    )
    number = f" n° {receipt.reference}" if receipt.reference else ""
    issuer = f" ({receipt.issuer})" if receipt.issuer else ""
    return f"{noun}{number}{issuer} {received} le {date_fr(receipt.received_on)}"


def method_label(payment: Payment) -> str:
    """How the money came: the mode, and for the counter its number and date received
    (load `Payment.receipt` with the payments: `with_receipts`)."""
    if payment.receipt_id is not None:
        return receipt_label(payment.receipt)
    return PAYMENT_METHODS.get(payment.method, payment.method)


def with_receipts(query):
    """The payments' counter receipts loaded with them (one more query, whatever the
    number), so that `method_label` reads them without a query per payment."""
    return query.options(selectinload(Payment.receipt))


# --- Days, compactly ----------------------------------------------------------------------------


def days_compact(days: str | None) -> str:
    """ "2030-09-02,2030-09-03,2030-10-01" → "2, 3 septembre, 1er octobre"."""
    dates = []
    for part in (days or "").split(","):
        try:
            dates.append(date.fromisoformat(part.strip()))
        except ValueError:
            continue
    groups: dict[tuple[int, int], list[int]] = {}
    for day in sorted(set(dates)):
        groups.setdefault((day.year, day.month), []).append(day.day)
    return ", ".join(
        ", ".join("1er" if n == 1 else str(n) for n in numbers)
        + " "
        + format_date(date(year, month, 1), "MMMM", locale="fr_FR")
        for (year, month), numbers in groups.items()
    )


# --- A household's statement --------------------------------------------------------------------


@dataclass
class InvoiceRow:
    invoice: Invoice
    state: State
    open_cents: int  # left to pay: only an "issued" invoice has any

    @property
    def total_cents(self) -> int:
        return signed_total(self.invoice)


@dataclass
class PaymentRow:
    payment: Payment
    invoice_id: int
    number: str
    method: str
    rejected: bool
    reversed: bool = False  # a counter payment an administrator reversed


@dataclass
class Statement:
    rows: list[InvoiceRow]
    payments: list[PaymentRow]  # newest first, rejected ones included
    balance_cents: int  # to pay now (issued invoices, late or not)
    late_cents: int
    debit_cents: int  # awaiting the planned direct debit
    mandate: Mandate | None = None
    paperless: bool = True


def _settlements(invoices: list[Invoice], payments: list[Payment]):
    """Per invoice id: money received (payments that count: not rejected, not reversed),
    credit notes against it, and the day of the last payment; plus the credit notes that
    correct no invoice."""
    received: dict[int, int] = defaultdict(int)
    paid_on: dict[int, datetime] = {}
    for payment in payments:
        if payment.counts:
            received[payment.invoice_id] += payment.amount_cents
            last = paid_on.get(payment.invoice_id)
            if payment.paid_at and (last is None or payment.paid_at > last):
                paid_on[payment.invoice_id] = payment.paid_at
    credited: dict[int, int] = defaultdict(int)
    loose_credit = 0
    for invoice in invoices:
        if invoice.kind == "credit":
            if invoice.credit_for_id is None:
                loose_credit += abs(invoice.total_cents)
            else:
                credited[invoice.credit_for_id] += abs(invoice.total_cents)
    return received, credited, paid_on, loose_credit


def open_amount(invoice: Invoice, received: int, credited: int) -> int:
    if invoice.kind != "invoice" or invoice.status != "issued":
        return 0
    return max(0, invoice.total_cents - credited - received)


def household_statement(household_id: int, today: date) -> Statement:
    """Every invoice and credit note of the household, newest first, with the balance due
    and the payment history. Five queries at most (counter receipts, when any)."""
    invoices = list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.household_id == household_id)
            .order_by(Invoice.month.desc(), Invoice.issued_at.desc(), Invoice.id.desc())
        )
    )
    # Scoped through the invoice: a payment is the household's when its invoice is.
    payment_rows = db.session.execute(
        with_receipts(
            select(Payment, Invoice.number)
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .where(Invoice.household_id == household_id)
            .order_by(Payment.paid_at.desc(), Payment.id.desc())
        )
    ).all()
    payments = [payment for payment, _number in payment_rows]
    received, credited, paid_on, loose_credit = _settlements(invoices, payments)
    rows = []
    balance = late = debit = 0
    for invoice in invoices:
        left = open_amount(invoice, received[invoice.id], credited[invoice.id])
        state = invoice_state(
            invoice,
            today=today,
            paid_on=paid_on.get(invoice.id),
            open_cents=left if invoice.status == "issued" else None,
        )
        rows.append(InvoiceRow(invoice, state, left))
        balance += left
        if state.code == "late":
            late += left
        if invoice.kind == "invoice" and invoice.status == "direct_debit":
            debit += max(0, invoice.total_cents - credited[invoice.id] - received[invoice.id])
    history = [
        PaymentRow(
            p,
            p.invoice_id,
            number,
            method_label(p),
            p.rejected_at is not None,
            p.reversed_at is not None,
        )
        for p, number in payment_rows
    ]
    mandate = db.session.scalar(
        select(Mandate).where(Mandate.household_id == household_id, Mandate.revoked_at.is_(None))
    )
    paperless = db.session.scalar(
        select(Household.paperless_invoices).where(Household.id == household_id)
    )
    return Statement(
        rows=rows,
        payments=history,
        balance_cents=max(0, balance - loose_credit),
        late_cents=late,
        debit_cents=debit,
        mandate=mandate,
        paperless=bool(paperless) if paperless is not None else True,
    )


# --- One invoice --------------------------------------------------------------------------------


def household_invoice(household_id: int, invoice_id: int) -> Invoice | None:
    """The household's invoice or credit note with its lines; None for anyone else's."""
    return db.session.scalar(
        select(Invoice)
        .options(selectinload(Invoice.lines))
        .where(Invoice.id == invoice_id, Invoice.household_id == household_id)
    )


def invoice_for_staff(invoice_id: int) -> Invoice | None:
    return db.session.scalar(
        select(Invoice).options(selectinload(Invoice.lines)).where(Invoice.id == invoice_id)
    )


@dataclass
class InvoiceDetail:
    invoice: Invoice
    state: State
    open_cents: int
    payments: list[Payment]
    credits: list[Invoice]  # credit notes correcting this invoice
    original: Invoice | None  # for a credit note: the invoice it corrects
    mandate: Mandate | None

    @property
    def total_cents(self) -> int:
        return signed_total(self.invoice)

    @property
    def payable(self) -> bool:
        """Something is left to pay by the family itself (not under direct debit)."""
        return self.open_cents > 0


def invoice_detail(invoice: Invoice, today: date) -> InvoiceDetail:
    payments = list(
        db.session.scalars(
            with_receipts(
                select(Payment)
                .where(Payment.invoice_id == invoice.id)
                .order_by(Payment.paid_at.desc(), Payment.id.desc())
            )
        )
    )
    credits = list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.credit_for_id == invoice.id, Invoice.kind == "credit")
            .order_by(Invoice.id)
        )
    )
    original = None
    if invoice.credit_for_id is not None:
        original = db.session.get(Invoice, invoice.credit_for_id)
    mandate = db.session.get(Mandate, invoice.mandate_id) if invoice.mandate_id else None
    received, credited, paid_on, _loose = _settlements(credits, payments)
    left = open_amount(invoice, received[invoice.id], credited[invoice.id])
    state = invoice_state(
        invoice,
        today=today,
        paid_on=paid_on.get(invoice.id),
        open_cents=left if invoice.status == "issued" else None,
    )
    return InvoiceDetail(invoice, state, left, payments, credits, original, mandate)


def original_numbers(invoices: list[Invoice]) -> dict[int, str]:
    """For credit notes: the number of the invoice each corrects, in one query."""
    ids = {i.credit_for_id for i in invoices if i.credit_for_id is not None}
    if not ids:
        return {}
    return dict(
        db.session.execute(select(Invoice.id, Invoice.number).where(Invoice.id.in_(ids))).all()
    )
