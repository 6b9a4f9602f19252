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
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.billing.models import Invoice, Payment, PaymentAttempt
from citoyens.billing.money import euros
from citoyens.billing.payfip import BankStatus, BankUnavailable, PaymentOrder, bank
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
# Pending attempts looked at again before a new one starts (a notification may be late).
PENDING_CHECKED = 3
UNAVAILABLE = (
    "Le paiement en ligne est momentanément indisponible. Réessayez dans quelques minutes "
    "ou réglez cette facture au guichet de la mairie."
)


class PaymentError(ValueError):
    """A payment that cannot start; the message is French, for the parent."""


# --- What is due, and whether a card may pay it ------------------------------------------------


def amount_paid(invoice_id: int) -> int:
    """Cents received for the invoice: card, direct debit and counter, less rejected debits."""
    return db.session.scalar(
        select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
            Payment.invoice_id == invoice_id, Payment.rejected_at.is_(None)
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


# --- Starting a payment -----------------------------------------------------------------------


def start_payment(
    invoice_id: int,
    household_id: int,
    user,
    *,
    return_url_for: Callable[[int], str],
    notification_url: str,
) -> str:
    """Open an attempt for what remains due and the bank's page for it; its address.

    `return_url_for(attempt_id)` is where the browser comes back. Raises PaymentError.
    """
    try:
        chosen = bank()
    except BankUnavailable as error:
        log.error("online payment not available: %s", error)
        raise PaymentError(UNAVAILABLE) from error
    # A notification may not have come yet for an earlier trip: ask before charging twice.
    for pending in _pending_attempts(invoice_id):
        try:
            check_attempt(pending)
        except BankUnavailable as error:
            log.warning("payment attempt %s could not be checked: %s", pending, error)
            break  # the bank is down: no point waiting for it again
    opened = write_transaction(lambda: _open_attempt(invoice_id, household_id, user))
    order = PaymentOrder(
        amount_cents=opened.amount_cents,
        reference=opened.reference,
        year=opened.year,
        email=user.email,
        subject=f"Facture {opened.number}",
        return_url=return_url_for(opened.attempt_id),
        notification_url=notification_url,
    )
    try:
        redirect = chosen.start(order)
    except BankUnavailable as error:
        log.error("payment attempt %s could not start: %s", opened.attempt_id, error)
        write_transaction(lambda: _settle(opened.attempt_id, "cancelled"))
        raise PaymentError(UNAVAILABLE) from error
    write_transaction(lambda: _attach_bank_id(opened.attempt_id, redirect.bank_id))
    return redirect.url


@dataclass(frozen=True)
class _Opened:
    attempt_id: int
    amount_cents: int
    reference: str
    year: int
    number: str


def _pending_attempts(invoice_id: int) -> list[int]:
    return list(
        db.session.scalars(
            select(PaymentAttempt.id)
            .where(
                PaymentAttempt.invoice_id == invoice_id,
                PaymentAttempt.status == "pending",
                PaymentAttempt.bank_id.is_not(None),
            )
            .order_by(PaymentAttempt.id.desc())
            .limit(PENDING_CHECKED)
        )
    )


def _open_attempt(invoice_id: int, household_id: int, user) -> _Opened:
    invoice = db.session.scalar(
        select(Invoice).where(Invoice.id == invoice_id, Invoice.household_id == household_id)
    )
    if invoice is None:
        raise PaymentError("Cette facture est introuvable.")
    due = amount_due(invoice)
    refusal = card_refusal(invoice, due)
    if refusal:
        raise PaymentError(refusal)
    attempt = PaymentAttempt(
        invoice_id=invoice.id,
        household_id=household_id,
        amount_cents=due,
        status="pending",
        created_by_id=getattr(user, "id", None),
    )
    db.session.add(attempt)
    db.session.flush()
    audit.record(
        "payment.started",
        actor=user,
        target=f"invoice:{invoice.id}",
        details=f"attempt {attempt.id}, {due} cents",
    )
    reference = bank_reference(invoice.number, attempt.id)
    return _Opened(attempt.id, due, reference, invoice.year, invoice.number)


def _attach_bank_id(attempt_id: int, bank_id: str) -> None:
    db.session.execute(
        update(PaymentAttempt)
        .where(PaymentAttempt.id == attempt_id)
        .values(bank_id=bank_id, updated_at=utcnow())
    )


def _settle(attempt_id: int, status: str) -> bool:
    """Move a pending attempt to `status`; False when it was not pending any more (another
    notification settled it first: on PostgreSQL this UPDATE waits for it, then re-reads)."""
    result = db.session.execute(
        update(PaymentAttempt)
        .where(PaymentAttempt.id == attempt_id, PaymentAttempt.status == "pending")
        .values(status=status, updated_at=utcnow())
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
    attempt = db.session.get(PaymentAttempt, attempt_id)
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
    settle it and, when paid, record the payment. Returns the attempt's status."""
    attempt = db.session.get(PaymentAttempt, attempt_id, populate_existing=True)
    invoice = db.session.get(Invoice, attempt.invoice_id)
    target = f"invoice:{invoice.id}"
    if report.status == "pending":
        return attempt.status
    if attempt.status != "pending":
        if report.status == "paid" and attempt.status != "paid":
            # The bank took money for an attempt closed here: nothing recorded, staff check.
            audit.record(
                "payment.late",
                target=target,
                details=f"attempt {attempt.id} {attempt.status}, the bank says paid",
            )
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
    if not _settle(attempt.id, report.status):
        db.session.refresh(attempt)
        return attempt.status
    if report.status != "paid":
        audit.record(f"payment.{report.status}", target=target, details=f"attempt {attempt.id}")
        return report.status
    record_payment(attempt, invoice)
    return "paid"


def record_payment(attempt: PaymentAttempt, invoice: Invoice) -> Payment:
    """The card payment of a settled attempt, the invoice paid when nothing remains due,
    and the receipt once committed."""
    payment = Payment(
        invoice_id=invoice.id,
        household_id=attempt.household_id,
        method="card",
        amount_cents=attempt.amount_cents,
        transaction_id=attempt.bank_id,
    )
    db.session.add(payment)
    db.session.flush()
    left = amount_left(invoice)
    if left <= 0 and invoice.status in ("issued", "direct_debit"):
        invoice.status = "paid"
    details = f"attempt {attempt.id}, {payment.amount_cents} cents"
    audit.record("payment.recorded", target=f"invoice:{invoice.id}", details=details)
    if left < 0 or invoice.status == "cancelled":
        # Two tabs paid the same invoice, or it was cancelled meanwhile: staff refund.
        audit.record("payment.overpaid", target=f"invoice:{invoice.id}", details=details)
    payment_id = payment.id
    after_commit(lambda: send_receipt(payment_id))
    return payment


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
