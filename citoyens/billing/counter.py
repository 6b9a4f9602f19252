"""Recording money taken at the counter (DOMAIN.md "Paying"); its reversal is in
`billing.counter_reversal`. Plain functions; the views run them inside
`write_transaction` and commit.

Recording: the invoices named are locked (PostgreSQL row locks, in id order; SQLite's
BEGIN IMMEDIATE already runs writers one at a time) before what they still owe is read,
so two agents recording at once against the same invoice never both count the same
remaining due: the second sees the first's payment. The amount goes to the invoices
oldest due date first; each must receive something; what is left over becomes the
household's credit (an overpayment, flagged to staff like any other). The receipt number
is taken from the year's counter row in the same transaction: gapless.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import select, update

from citoyens import audit
from citoyens.billing.counter_models import TITLE_METHODS, CounterReceipt, ReceiptCounter
from citoyens.billing.credits import add_credit
from citoyens.billing.direct_debit_export import amounts_due
from citoyens.billing.models import COUNTER_METHODS, Invoice, Payment
from citoyens.billing.money import euros
from citoyens.billing.numbers import take_number
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.forms import PARIS, today_in_paris

# The most invoices one receipt may cover (a form posting thousands is refused).
MAX_INVOICES = 60
MAX_DAYS_BACK = 366


class CounterError(ValueError):
    """A receipt that cannot be recorded or reversed; the message is French, `field` the
    form's field it concerns."""

    def __init__(self, message: str, field: str = "invoices"):
        super().__init__(message)
        self.field = field


def format_receipt_number(year: int, sequence: int) -> str:
    """R2026-000042: the year of recording and six digits."""
    return f"R{year}-{sequence:06d}"


@dataclass
class Share:
    invoice: Invoice
    due_cents: int  # what it owed before this receipt
    cents: int  # what this receipt pays of it

    @property
    def settles(self) -> bool:
        return self.cents == self.due_cents


def allocate(dues: list[tuple[Invoice, int]], amount_cents: int) -> tuple[list[Share], int]:
    """Split `amount_cents` over the invoices, oldest due date first (then month, id):
    each gets what it owes while money is left. Returns the shares and what is left over.
    CounterError when an invoice would get nothing."""
    remaining = amount_cents
    shares = []
    for invoice, due in sorted(dues, key=lambda d: (d[0].due_on, d[0].month, d[0].id)):
        cents = min(remaining, due)
        if cents <= 0:
            raise CounterError(
                f"Le montant ne suffit pas pour la facture {invoice.number} : il est déjà "
                "affecté aux factures plus anciennes. Décochez-la ou corrigez le montant."
            )
        shares.append(Share(invoice, due, cents))
        remaining -= cents
    return shares, remaining


def refusal(invoice: Invoice | None, household_id: int, due_cents: int) -> str | None:
    """Why this invoice cannot be paid at the counter now, in French; None when it can."""
    if invoice is None or invoice.household_id != household_id:
        return "Une des factures cochées n'est pas une facture de cette famille."
    if invoice.kind == "credit":
        return f"{invoice.number} est un avoir : il ne se paie pas, il vient en déduction."
    if invoice.status == "cancelled":
        return f"La facture {invoice.number} a été annulée par un avoir : rien n'est à payer."
    if invoice.status in ("direct_debit", "debited"):
        return (
            f"La facture {invoice.number} est réglée par prélèvement automatique : elle ne "
            "s'encaisse au guichet que si la banque rejette le prélèvement."
        )
    if invoice.status != "issued" or due_cents <= 0:
        return f"La facture {invoice.number} est déjà réglée : il n'y reste rien à payer."
    return None


def lock_invoices(invoice_ids) -> list[Invoice]:
    """The invoices, locked until the transaction ends (PostgreSQL; in id order, so two
    transactions never wait on each other crosswise), read afresh."""
    return list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.id.in_(sorted(set(invoice_ids))))
            .order_by(Invoice.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def check_details(
    method: str, amount_cents: int | None, received_on: date | None, reference, issuer, today: date
) -> None:
    """The receipt's own fields; CounterError naming the field otherwise."""
    if method not in COUNTER_METHODS:
        raise CounterError("Choisissez le mode de paiement dans la liste.", "method")
    if amount_cents is None or amount_cents <= 0:
        raise CounterError("Le montant reçu doit être supérieur à zéro.", "amount")
    if received_on is None:
        raise CounterError("Indiquez la date de réception.", "received_on")
    if received_on > today:
        raise CounterError("La date de réception ne peut pas être dans le futur.", "received_on")
    if (today - received_on).days > MAX_DAYS_BACK:
        raise CounterError(
            "La date de réception ne peut pas remonter à plus d'un an.", "received_on"
        )
    if method in TITLE_METHODS:
        what = "du chèque" if method == "cheque" else "du titre"
        if not reference:
            raise CounterError(f"Indiquez le numéro {what}.", "reference")
        if not issuer:
            bank = "la banque" if method == "cheque" else "l'émetteur"
            raise CounterError(f"Indiquez {bank} {what}.", "issuer")


def paid_at(received_on: date, today: date) -> datetime:
    """When the payment counts as made: now when received today, else noon (Paris) on
    the day received, so pages and exports show the day the money came in."""
    if received_on == today:
        return utcnow()
    return datetime.combine(received_on, time(12), PARIS)


def clean_text(value: str | None, limit: int) -> str | None:
    """Typed text on one line, spaces collapsed, cut to `limit`; None when empty."""
    text = " ".join((value or "").split())[:limit]
    return text or None


def record_receipt(
    household_id: int,
    *,
    method: str,
    amount_cents: int | None,
    received_on: date | None,
    invoice_ids,
    reference: str | None = None,
    issuer: str | None = None,
    note: str | None = None,
    actor=None,
    today: date | None = None,
) -> CounterReceipt:
    """Record money received at the counter for some of the household's invoices: the
    receipt, one payment per invoice it pays, the invoices settled marked paid, and the
    credit kept beyond what they owed. Raises CounterError (nothing written)."""
    today = today or today_in_paris()
    reference, issuer = clean_text(reference, 60), clean_text(issuer, 80)
    note = clean_text(note, 200)
    if method not in TITLE_METHODS and method != "transfer":
        reference = issuer = None  # cash has neither
    check_details(method, amount_cents, received_on, reference, issuer, today)
    ids = sorted({int(i) for i in invoice_ids or ()})
    if not ids:
        raise CounterError("Cochez au moins une facture réglée par ce paiement.")
    if len(ids) > MAX_INVOICES:
        raise CounterError(f"Un paiement couvre au plus {MAX_INVOICES} factures.")
    invoices = {invoice.id: invoice for invoice in lock_invoices(ids)}
    dues = amounts_due(ids)
    for invoice_id in ids:
        invoice = invoices.get(invoice_id)
        problem = refusal(invoice, household_id, dues.get(invoice_id, 0))
        if problem:
            raise CounterError(problem)
    shares, credit = allocate([(invoices[i], dues[i]) for i in ids], amount_cents)

    sequence = take_number(today.year, ReceiptCounter)
    receipt = CounterReceipt(
        household_id=household_id,
        year=today.year,
        sequence=sequence,
        number=format_receipt_number(today.year, sequence),
        method=method,
        amount_cents=amount_cents,
        credit_cents=credit,
        reference=reference,
        issuer=issuer,
        received_on=received_on,
        note=note,
        recorded_by_id=getattr(actor, "id", None),
    )
    db.session.add(receipt)
    db.session.flush()
    when = paid_at(received_on, today)
    payments = [
        Payment(
            invoice_id=share.invoice.id,
            household_id=household_id,
            method=method,
            amount_cents=share.cents,
            transaction_id=f"{receipt.number}/{share.invoice.number}"[:64],
            paid_at=when,
            receipt_id=receipt.id,
        )
        for share in shares
    ]
    db.session.add_all(payments)
    db.session.flush()
    settled = [share.invoice.id for share in shares if share.settles]
    if settled:
        db.session.execute(
            update(Invoice)
            .where(Invoice.id.in_(settled), Invoice.status == "issued")
            .values(status="paid")
            .execution_options(synchronize_session="fetch")
        )
    numbers = ", ".join(share.invoice.number for share in shares)
    if credit:
        last = shares[-1]
        add_credit(
            household_id,
            "overpayment",
            credit,
            invoice_id=last.invoice.id,
            payment_id=payments[-1].id,
            note=f"Encaissement {receipt.number} de {euros(amount_cents)} pour {numbers}, "
            f"dont il ne restait que {euros(amount_cents - credit)} à payer"[:200],
            actor=actor,
        )
    audit.record(
        "counter.recorded",
        actor=actor,
        target=f"receipt:{receipt.id}",
        details=f"household:{household_id} method:{method} amount:{amount_cents} "
        f"invoices:{numbers} credit:{credit}",
    )
    return receipt
