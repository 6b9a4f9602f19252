"""Starting a payment: « Payer en ligne » sends the parent to the bank's page for the
invoice's one open attempt (DOMAIN.md "Paying": at most one open attempt per invoice).

The partial unique index `uq_payment_attempts_pending_invoice` lets one attempt per invoice
be pending; a « Payer » that finds it goes back to its page while it is recent (a PayFiP
idOp lives PAYMENT_ATTEMPT_MINUTES, 15), after asking the bank whether it was paid. Past
that time, still unpaid, it is closed here ("expired") and a new one opens; if the bank
says "paid" for it later, the payment is recorded all the same (`payments.apply_status`)
and what exceeds the amount due becomes the family's credit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from citoyens import audit
from citoyens.billing.bank_orders import PaymentOrder
from citoyens.billing.models import Invoice, PaymentAttempt
from citoyens.billing.payfip import BankNotConfigured, BankUnavailable, bank
from citoyens.billing.payments import (
    UNAVAILABLE,
    PaymentError,
    amount_due,
    bank_reference,
    card_refusal,
    check_attempt,
    settle,
)
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.transactions import write_transaction

log = logging.getLogger("citoyens.payments")

# « Payer » pressed again at once: how often the open attempt is looked at before giving up.
OPEN_TRIES = 3
# An attempt another request is sending to the bank: wait this long (seconds) for its page;
# one still without a bank id after BANK_START_GRACE was never sent and is closed.
BANK_START_WAIT = 10
BANK_START_GRACE = timedelta(minutes=2)
NOT_AVAILABLE_YET = (
    "Le paiement en ligne n'est pas encore disponible : réglez cette facture au guichet de "
    "la mairie."
)
STARTING = (
    "Le paiement de cette facture est en cours d'ouverture : patientez quelques secondes, "
    "puis appuyez de nouveau sur « Payer en ligne »."
)


# --- Starting a payment -----------------------------------------------------------------------


def start_payment(
    invoice_id: int,
    household_id: int,
    user,
    *,
    return_url_for: Callable[[int], str],
    notification_url: str,
) -> str:
    """The bank's page for what remains due: the invoice's open attempt while it is recent,
    else a new attempt. At most one attempt is pending per invoice (a partial unique index):
    « Payer » pressed ten times at once opens one, and every press is sent to it.

    `return_url_for(attempt_id)` is where the browser comes back. Raises PaymentError.
    """
    try:
        chosen = bank()
    except BankNotConfigured as error:
        log.error("Paiement en ligne désactivé : %s", error)
        raise PaymentError(NOT_AVAILABLE_YET) from error
    except BankUnavailable as error:
        log.error("online payment not available: %s", error)
        raise PaymentError(UNAVAILABLE) from error
    for _ in range(OPEN_TRIES):
        found = write_transaction(lambda: _open_or_find(invoice_id, household_id, user))
        if found.new:
            return _send_to_bank(chosen, found, user, return_url_for, notification_url)
        url = _back_to_open_attempt(found)
        if url:
            return url
        # The open attempt was settled or closed meanwhile: look again (it may be paid).
    raise PaymentError(STARTING)


@dataclass(frozen=True)
class _Attempt:
    """The invoice's pending attempt, new or found."""

    attempt_id: int
    new: bool
    created_at: datetime
    amount_cents: int = 0
    reference: str = ""
    year: int = 0
    number: str = ""
    bank_id: str | None = None
    bank_url: str | None = None
    refusal: str | None = None  # nothing to pay by card any more (found attempts only)


def _open_or_find(invoice_id: int, household_id: int, user) -> _Attempt:
    """In one write transaction: the invoice's pending attempt, or a new one for what
    remains due. Two of these at once cannot both insert: the partial unique index refuses
    the second, and `write_transaction` runs it again, when it finds the first."""
    invoice = db.session.scalar(
        select(Invoice).where(Invoice.id == invoice_id, Invoice.household_id == household_id)
    )
    if invoice is None:
        raise PaymentError("Cette facture est introuvable.")
    pending = db.session.scalar(
        select(PaymentAttempt).where(
            PaymentAttempt.invoice_id == invoice.id, PaymentAttempt.status == "pending"
        )
    )
    due = amount_due(invoice)
    refusal = card_refusal(invoice, due)
    if pending is not None:
        # The bank may have been paid for it and not told us yet: the caller asks it.
        found = pending
        return _Attempt(
            found.id,
            False,
            found.created_at,
            bank_id=found.bank_id,
            bank_url=found.bank_url,
            refusal=refusal,
        )
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
    return _Attempt(
        attempt.id, True, attempt.created_at, due, reference, invoice.year, invoice.number
    )


def _send_to_bank(chosen, opened: _Attempt, user, return_url_for, notification_url) -> str:
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
        write_transaction(lambda: settle(opened.attempt_id, "cancelled"))
        raise PaymentError(UNAVAILABLE) from error
    write_transaction(lambda: _attach_bank_id(opened.attempt_id, redirect.bank_id, redirect.url))
    return redirect.url


def _back_to_open_attempt(found: _Attempt) -> str | None:
    """The bank's page of the pending attempt while it is recent and still open there;
    None once it is settled or closed here (the caller looks again)."""
    age = utcnow() - found.created_at
    attempt_id = found.attempt_id
    if found.refusal:
        # Settled meanwhile (at the counter, a credit note): never back to the bank's page.
        # Asked about all the same: a payment made there is recorded (a credit, if over).
        if found.bank_id is not None:
            try:
                check_attempt(attempt_id)
            except BankUnavailable as error:
                log.warning("payment attempt %s could not be checked: %s", attempt_id, error)
        raise PaymentError(found.refusal)
    if found.bank_id is None:
        if age >= BANK_START_GRACE:
            # Never sent to the bank (the process stopped on the way): nobody can pay it.
            write_transaction(lambda: settle(attempt_id, "cancelled", unsent=True))
            return None
        # Another « Payer » opened it a moment ago and is asking the bank: wait for it.
        status, url = _wait_for_bank_url(attempt_id)
        if status != "pending":
            return None
        if url:
            return url
        raise PaymentError(STARTING)
    recent = age < _attempt_lifetime() and found.bank_url is not None
    try:
        status = check_attempt(attempt_id)  # paid meanwhile? then recorded, not paid twice
    except BankUnavailable as error:
        log.warning("payment attempt %s could not be checked: %s", attempt_id, error)
        if recent:
            return found.bank_url
        raise PaymentError(UNAVAILABLE) from error
    if status != "pending":
        return None
    if recent:
        return found.bank_url
    # Past its time at the bank and not paid: closed here, so a new one can open. Should the
    # bank still say "paid" later, that payment is recorded (see `apply_status`).
    if write_transaction(lambda: settle(attempt_id, "expired")):
        log.info("payment attempt %s expired", attempt_id)
    return None


def _wait_for_bank_url(attempt_id: int) -> tuple[str | None, str | None]:
    """(status, bank page) of an attempt another request is opening, once it has its page
    or after BANK_START_WAIT seconds."""
    deadline = time.monotonic() + BANK_START_WAIT
    while True:
        db.session.commit()  # a fresh read each time
        row = db.session.execute(
            select(PaymentAttempt.status, PaymentAttempt.bank_url).where(
                PaymentAttempt.id == attempt_id
            )
        ).first()
        if row is None:
            return None, None
        if row.status != "pending" or row.bank_url or time.monotonic() > deadline:
            return row.status, row.bank_url
        time.sleep(0.05)


def _attempt_lifetime() -> timedelta:
    return timedelta(minutes=int(current_app.config.get("PAYMENT_ATTEMPT_MINUTES", 15)))


def _attach_bank_id(attempt_id: int, bank_id: str, bank_url: str) -> None:
    db.session.execute(
        update(PaymentAttempt)
        .where(PaymentAttempt.id == attempt_id)
        .values(bank_id=bank_id, bank_url=bank_url, updated_at=utcnow())
    )
