"""An administrator reverses a counter receipt (a cheque returned unpaid, a mistake),
with a reason (DOMAIN.md "Paying"). Plain functions, run inside `write_transaction`.

A conditional UPDATE of the receipt: of two reversals at once, one does the work and the
other is told it is done. The invoices are locked first, in the order recording locks
them, so a reversal and a new payment of the same invoice never wait on each other
crosswise. The receipt's payments stop counting (`Payment.reversed_at`), the invoices it
settled are due again, and the credit it created is taken back, never more than the
balance still holds.
"""

from __future__ import annotations

from sqlalchemy import select, update

from citoyens import audit
from citoyens.billing.corrections import lock_household
from citoyens.billing.counter import CounterError, clean_text, lock_invoices
from citoyens.billing.counter_models import CounterReceipt
from citoyens.billing.credits import add_credit, credit_balance
from citoyens.billing.direct_debit_export import amounts_due
from citoyens.billing.models import HouseholdCredit, Invoice, Payment
from citoyens.billing.money import euros
from citoyens.database import utcnow
from citoyens.extensions import db


def reverse_receipt(receipt_id: int, reason: str | None, *, actor) -> CounterReceipt:
    """An administrator cancels a receipt (a cheque returned unpaid, a mistake): the
    receipt and its payments are marked reversed, the invoices are due again and the
    credit it created is taken back. Raises CounterError (nothing written)."""
    reason = clean_text(reason, 200)
    if not reason:
        raise CounterError("Indiquez le motif de l'annulation.", "reason")
    invoice_ids = list(
        db.session.scalars(select(Payment.invoice_id).where(Payment.receipt_id == receipt_id))
    )
    lock_invoices(invoice_ids)  # the same order as recording: no crossed waits
    now = utcnow()
    done = db.session.execute(
        update(CounterReceipt)
        .where(CounterReceipt.id == receipt_id, CounterReceipt.reversed_at.is_(None))
        .values(reversed_at=now, reversed_by_id=getattr(actor, "id", None), reversal_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise CounterError("Ce paiement est déjà annulé.", "reason")
    receipt = db.session.get(CounterReceipt, receipt_id, populate_existing=True)
    payment_ids = [payment.id for payment in receipt.payments]
    if receipt.credit_cents:
        _take_back_credit(receipt, payment_ids, actor)
    db.session.execute(
        update(Payment)
        .where(Payment.receipt_id == receipt_id, Payment.reversed_at.is_(None))
        .values(reversed_at=now)
        .execution_options(synchronize_session=False)
    )
    dues = amounts_due(invoice_ids)
    reopened = [invoice_id for invoice_id in invoice_ids if dues.get(invoice_id, 0) > 0]
    if reopened:
        db.session.execute(
            update(Invoice)
            .where(Invoice.id.in_(reopened), Invoice.status == "paid")
            .values(status="issued")
            .execution_options(synchronize_session=False)
        )
    audit.record(
        "counter.reversed",
        actor=actor,
        target=f"receipt:{receipt_id}",
        details=f"household:{receipt.household_id} amount:{receipt.amount_cents} "
        f"credit:{receipt.credit_cents} reason:{reason}",
    )
    return receipt


def _take_back_credit(receipt: CounterReceipt, payment_ids: list[int], actor) -> None:
    """The overpayment the receipt created leaves the balance, provided it is still there
    (not deducted from an invoice nor refunded meanwhile)."""
    lock_household(receipt.household_id)
    balance = credit_balance(receipt.household_id)
    if balance < receipt.credit_cents:
        raise CounterError(
            f"Ce paiement a laissé {euros(receipt.credit_cents)} au crédit de la famille, "
            f"mais son solde n'est plus que de {euros(balance)} (déduit d'une facture ou "
            "remboursé depuis) : il ne peut pas être annulé ici.",
            "reason",
        )
    add_credit(
        receipt.household_id,
        "reversal",
        -receipt.credit_cents,
        payment_id=payment_ids[-1] if payment_ids else None,
        note=f"Annulation de l'encaissement {receipt.number}",
        actor=actor,
    )
    # Nothing is left to look at: its overpayment leaves the staff's list.
    db.session.execute(
        update(HouseholdCredit)
        .where(
            HouseholdCredit.payment_id.in_(payment_ids),
            HouseholdCredit.kind == "overpayment",
            HouseholdCredit.reviewed_at.is_(None),
        )
        .values(reviewed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
