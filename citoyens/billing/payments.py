"""Paying an invoice online: attempts, the bank's verdict, the payment and its receipt.

A trip to the bank is a PaymentAttempt for what remains due, computed here, never read
from a form. What happened there is only ever learnt by asking the bank (`fetch_status`):
a notification or the parent's return merely triggers that check, so a forged one asks the
bank and learns nothing new. The verdict is applied in one transaction that moves the
attempt out of "pending" by a conditional UPDATE: of notifications repeated, late or
concurrent, one does the work, the others find the attempt settled. The payment's unique
`transaction_id` (the bank id) is the last guard. The payment counts without the parent
coming back: the bank's notification is enough.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.billing.bank_orders import BankStatus
from citoyens.billing.credits import add_credit
from citoyens.billing.models import HouseholdCredit, Invoice, Payment, PaymentAttempt
from citoyens.billing.money import euros
from citoyens.billing.payfip import bank
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.formatting import date_fr
from citoyens.mail import absolute_url
from citoyens.transactions import after_commit, write_transaction

log = logging.getLogger("citoyens.payments")

# PayFiP takes 1,00 € at least (eopayment's `minimal_amount`); the simulated bank follows.
MIN_CARD_CENTS = 100
# PayFiP's refdet: 1 to 30 letters and digits (eopayment's REFDET_RE).
REFDET_LENGTH = 30
# What the bank may still say "paid" about: the money is then taken, and recorded.
PAYABLE = ("pending", "expired", "cancelled", "refused")
UNAVAILABLE = (
    "Le paiement en ligne est momentanément indisponible. Réessayez dans quelques minutes "
    "ou réglez cette facture au guichet de la mairie."
)


class PaymentError(ValueError):
    """A payment that cannot start; the message is French, for the parent."""


# --- What is due, and whether a card may pay it ------------------------------------------------


def amount_paid(invoice_id: int) -> int:
    """Cents received for the invoice: card, direct debit and counter, less rejected debits
    and reversed counter payments."""
    return db.session.scalar(
        select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
            Payment.invoice_id == invoice_id, Payment.counts
        )
    )


def amount_credited(invoice_id: int) -> int:
    """Cents of the credit notes that correct the invoice (shown negative, stored either way)."""
    return db.session.scalar(
        select(func.coalesce(func.sum(func.abs(Invoice.total_cents)), 0)).where(
            Invoice.credit_for_id == invoice_id, Invoice.kind == "credit"
        )
    )


def amount_left(invoice: Invoice) -> int:
    """The total less credit notes and payments received; below zero when overpaid."""
    return invoice.total_cents - amount_credited(invoice.id) - amount_paid(invoice.id)


def amount_due(invoice: Invoice) -> int:
    """What remains to pay, whatever the status: the invoice page's « Reste à payer »
    (`rules.open_amount`) for an issued invoice."""
    return max(0, amount_left(invoice))


def card_refusal(invoice: Invoice, due_cents: int) -> str | None:
    """Why this invoice cannot be paid by card now, in French; None when it can."""
    if invoice.kind == "credit":
        return "Un avoir ne se paie pas : il vient en déduction d'une facture."
    if invoice.status == "cancelled":
        return "Cette facture a été annulée par un avoir : il n'y a rien à payer."
    if invoice.status == "direct_debit":
        return f"Cette facture sera prélevée{debit_day(invoice)} : elle ne se paie pas par carte."
    if invoice.status in ("paid", "debited") or due_cents <= 0:
        return "Cette facture est déjà réglée : il ne reste rien à payer."
    if due_cents < MIN_CARD_CENTS:
        return (
            f"Le paiement en ligne n'est possible qu'à partir de {euros(MIN_CARD_CENTS)} : "
            f"réglez les {euros(due_cents)} restants au guichet de la mairie."
        )
    return None


def debit_day(invoice: Invoice) -> str:
    """The planned debit as ' le 15/10/2030', or '' while its date is not set."""
    return f" le {date_fr(invoice.debit_on)}" if invoice.debit_on else ""


def bank_reference(invoice_number: str, attempt_id: int) -> str:
    """The refdet of an attempt: the invoice number's letters and digits, "P", the attempt
    id ("F2026000042P17"); 30 characters at most, the attempt id always whole."""
    suffix = f"P{attempt_id}"
    prefix = re.sub(r"[^A-Za-z0-9]", "", invoice_number)
    return prefix[: REFDET_LENGTH - len(suffix)] + suffix


# --- Settling an attempt ---------------------------------------------------------------------


def settle(
    attempt_id: int,
    status: str,
    *,
    from_statuses: tuple[str, ...] = ("pending",),
    unsent: bool = False,
) -> bool:
    """Move an attempt from one of `from_statuses` to `status`; False when it was not in
    them any more (another notification settled it first: on PostgreSQL this UPDATE waits
    for it, then re-reads). `unsent`: only while it has no bank id."""
    conditions = [PaymentAttempt.id == attempt_id, PaymentAttempt.status.in_(from_statuses)]
    if unsent:
        conditions.append(PaymentAttempt.bank_id.is_(None))
    result = db.session.execute(
        update(PaymentAttempt).where(*conditions).values(status=status, updated_at=utcnow())
    )
    return result.rowcount == 1


# --- The bank's verdict -----------------------------------------------------------------------


def attempt_for_bank_id(bank_id: str) -> PaymentAttempt | None:
    return db.session.scalar(select(PaymentAttempt).where(PaymentAttempt.bank_id == bank_id))


def check_attempt(attempt_id: int) -> str:
    """Ask the bank about an attempt and apply the answer; the attempt's status after.

    Idempotent: a notification, a return to the site and a new "Payer" all call it.
    Raises BankUnavailable when the bank cannot say.
    """
    attempt = db.session.get(PaymentAttempt, attempt_id, populate_existing=True)
    if attempt.status == "paid" or attempt.bank_id is None:
        return attempt.status  # repeated: the payment is already recorded
    bank_id, started_at = attempt.bank_id, attempt.created_at
    db.session.commit()  # no transaction stays open while the bank answers
    report = bank().fetch_status(bank_id, started_at=started_at)
    try:
        return write_transaction(lambda: apply_status(attempt_id, report))
    except IntegrityError:
        # The transaction id is taken although the attempt was pending on every try:
        # recorded by other means. Nothing more is written; staff see the log.
        log.error("payment for attempt %s already recorded elsewhere", attempt_id)
        return db.session.get(PaymentAttempt, attempt_id).status


def apply_status(attempt_id: int, report: BankStatus) -> str:
    """In the caller's transaction: check what the bank said against the attempt, then
    settle it and, when paid, record the payment. Returns the attempt's status.

    A "paid" is recorded whatever became of the attempt here (expired, abandoned in
    another tab, the invoice paid meanwhile): the money was taken. What exceeds the amount
    still due becomes the household's credit, flagged to staff (`record_payment`)."""
    attempt = db.session.get(PaymentAttempt, attempt_id, populate_existing=True)
    if report.status == "pending":
        return attempt.status
    # A payment's share of what is due is computed under the invoice's lock: two attempts
    # paid at once cannot both count as the one that settled it (PostgreSQL; SQLite's
    # write transactions run one at a time).
    invoice = db.session.get(
        Invoice,
        attempt.invoice_id,
        with_for_update=report.status == "paid",
        populate_existing=True,
    )
    db.session.refresh(attempt)
    target = f"invoice:{invoice.id}"
    if attempt.status == "paid":
        return attempt.status
    if attempt.status != "pending" and report.status != "paid":
        if attempt.status == "expired":  # the bank's final word on an attempt closed here
            settle(attempt.id, report.status, from_statuses=("expired",))
            db.session.refresh(attempt)
        return attempt.status
    reference = bank_reference(invoice.number, attempt.id)
    wrong_reference = report.reference is not None and report.reference != reference
    wrong_amount = report.status == "paid" and (
        report.amount_cents != attempt.amount_cents or report.reference is None
    )
    if wrong_reference or wrong_amount:
        audit.record(
            "payment.mismatch",
            target=target,
            details=(
                f"attempt {attempt.id}: the bank says {report.status}, {report.amount_cents} "
                f"cents, reference {report.reference}; expected {attempt.amount_cents} cents, "
                f"reference {reference}"
            ),
        )
        return attempt.status
    before = attempt.status
    settleable = PAYABLE if report.status == "paid" else ("pending",)
    if not settle(attempt.id, report.status, from_statuses=settleable):
        db.session.refresh(attempt)
        return attempt.status
    if report.status != "paid":
        audit.record(f"payment.{report.status}", target=target, details=f"attempt {attempt.id}")
        return report.status
    if before != "pending":
        # The bank took money for an attempt closed here: recorded all the same.
        audit.record("payment.late", target=target, details=f"attempt {attempt.id} {before}, paid")
    record_payment(attempt, invoice)
    return "paid"


def record_payment(attempt: PaymentAttempt, invoice: Invoice) -> Payment:
    """The card payment of a settled attempt, the invoice paid when nothing remains due,
    and the receipt once committed. Whatever exceeds what was still due (another attempt,
    a direct debit or a credit note settled it meanwhile) goes to the household's credit
    balance as an overpayment not yet reviewed: staff see it and refund or keep it."""
    due = 0 if invoice.status == "cancelled" else amount_due(invoice)
    payment = Payment(
        invoice_id=invoice.id,
        household_id=attempt.household_id,
        method="card",
        amount_cents=attempt.amount_cents,
        transaction_id=attempt.bank_id,
    )
    db.session.add(payment)
    db.session.flush()
    if amount_left(invoice) <= 0 and invoice.status in ("issued", "direct_debit"):
        invoice.status = "paid"
    details = f"attempt {attempt.id}, {payment.amount_cents} cents"
    audit.record("payment.recorded", target=f"invoice:{invoice.id}", details=details)
    excess = payment.amount_cents - due
    if excess > 0:
        add_credit(
            attempt.household_id,
            "overpayment",
            excess,
            payment_id=payment.id,
            invoice_id=invoice.id,
            note=f"Paiement en ligne de {euros(payment.amount_cents)} pour la facture "
            f"{invoice.number}, dont il ne restait que {euros(due)} à payer",
        )
        audit.record(
            "payment.overpaid",
            target=f"invoice:{invoice.id}",
            details=f"{details}, {excess} cents over what was due",
        )
        log.warning("payment %s overpaid invoice %s by %s cents", payment.id, invoice.id, excess)
    payment_id = payment.id
    after_commit(lambda: send_receipt(payment_id))
    return payment


def overpayments(invoice_id: int) -> dict[int, int]:
    """Cents each payment of the invoice paid over what was due (payments without any are
    absent): the staff invoice page shows them."""
    rows = db.session.execute(
        select(HouseholdCredit.payment_id, func.sum(HouseholdCredit.amount_cents))
        .where(
            HouseholdCredit.invoice_id == invoice_id,
            HouseholdCredit.kind == "overpayment",
            HouseholdCredit.payment_id.is_not(None),
        )
        .group_by(HouseholdCredit.payment_id)
    )
    return {payment_id: int(cents) for payment_id, cents in rows}


def send_receipt(payment_id: int) -> None:
    """The receipt, to the household's account holders."""
    from citoyens.mail import send_mail
    from citoyens.requests.operations import family_recipients

    payment = db.session.get(Payment, payment_id)
    invoice = payment.invoice
    link = absolute_url("billing.invoice", invoice_id=invoice.id)
    for email in family_recipients(payment.household_id):
        send_mail(
            "payment-receipt",
            email,
            f"Paiement reçu : facture {invoice.number}",
            "payment_receipt",
            amount=euros(payment.amount_cents),
            number=invoice.number,
            paid_at=payment.paid_at,
            reference=payment.transaction_id,
            link=link,
        )
