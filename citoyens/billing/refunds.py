"""Staff and the credit balance: its movements, refunds, and the overpayments to look at
(DOMAIN.md "Billing", "Paying"). Plain functions; the views commit through
`write_transaction`.

A refund takes money out of the balance: the household row is locked first (PostgreSQL;
SQLite's BEGIN IMMEDIATE serialises writers), so a refund and an invoice run deducting the
same balance at once never take more than there is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, true, update

from citoyens import audit
from citoyens.billing.corrections import lock_household
from citoyens.billing.credits import add_credit, credit_balance, credit_balances
from citoyens.billing.models import HouseholdCredit, Invoice
from citoyens.billing.money import euros
from citoyens.database import utcnow
from citoyens.extensions import db

REFUND_METHODS = {"transfer": "Virement", "cheque": "Chèque"}


class RefundError(ValueError):
    """A refund that cannot be recorded; the message is French, `field` the form's field."""

    def __init__(self, message: str, field: str = "amount"):
        super().__init__(message)
        self.field = field


@dataclass
class Movement:
    credit: HouseholdCredit
    invoice_number: str | None


def movements(household_id: int) -> list[Movement]:
    """The household's balance movements, newest first, with the invoice each concerns.
    One query."""
    rows = db.session.execute(
        select(HouseholdCredit, Invoice.number)
        .outerjoin(Invoice, Invoice.id == HouseholdCredit.invoice_id)
        .where(HouseholdCredit.household_id == household_id)
        .order_by(HouseholdCredit.created_at.desc(), HouseholdCredit.id.desc())
    ).all()
    return [Movement(credit, number) for credit, number in rows]


def record_refund(household_id: int, amount_cents: int, method: str, note: str, *, actor):
    """Staff paid the family back (bank transfer or cheque): a `refund` row with who and
    why, audited. Never more than the balance."""
    if method not in REFUND_METHODS:
        raise RefundError(
            "Choisissez comment la famille est remboursée : virement ou chèque.", "method"
        )
    if amount_cents <= 0:
        raise RefundError("Le montant du remboursement doit être supérieur à zéro.")
    lock_household(household_id)
    balance = credit_balance(household_id)
    if amount_cents > balance:
        raise RefundError(
            f"Le remboursement ne peut pas dépasser le solde créditeur ({euros(balance)})."
        )
    note = " ".join((note or "").split())
    text = f"{REFUND_METHODS[method]}{' — ' + note if note else ''}"[:200]
    row = add_credit(household_id, "refund", -amount_cents, note=text, actor=actor)
    _mark_reviewed(household_id)
    audit.record(
        "credit.refund",
        actor=actor,
        target=f"household:{household_id}",
        details=f"amount:{amount_cents} method:{method}",
    )
    return row


def mark_overpayments_reviewed(household_id: int, *, actor) -> int:
    """Staff looked at the household's overpayments and keep them as credit (used on the
    next invoice). Returns how many were waiting."""
    count = _mark_reviewed(household_id)
    if count:
        audit.record("credit.overpayment_reviewed", actor=actor, target=f"household:{household_id}")
    return count


def _mark_reviewed(household_id: int) -> int:
    return db.session.execute(
        update(HouseholdCredit)
        .where(
            HouseholdCredit.household_id == household_id,
            HouseholdCredit.kind == "overpayment",
            HouseholdCredit.reviewed_at.is_(None),
        )
        .values(reviewed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount


@dataclass
class OverpaymentToReview:
    household_id: int
    amount_cents: int  # the overpayments not reviewed yet
    since: datetime
    balance_cents: int


def overpayments_to_review(user=None) -> list[OverpaymentToReview]:
    """Households with an overpayment no one has looked at yet, oldest first; only those
    `user` may see when given (services.scope). Two queries."""
    from citoyens.services.scope import household_filter

    scope = household_filter(HouseholdCredit.household_id, user) if user is not None else true()
    rows = db.session.execute(
        select(
            HouseholdCredit.household_id,
            func.sum(HouseholdCredit.amount_cents),
            func.min(HouseholdCredit.created_at),
        )
        .where(HouseholdCredit.kind == "overpayment", HouseholdCredit.reviewed_at.is_(None), scope)
        .group_by(HouseholdCredit.household_id)
        .order_by(func.min(HouseholdCredit.created_at), HouseholdCredit.household_id)
    ).all()
    balances = credit_balances(household_id for household_id, _a, _s in rows)
    return [
        OverpaymentToReview(household_id, int(amount), since, balances.get(household_id, 0))
        for household_id, amount, since in rows
    ]
