"""Counter receipts, read side: what a family still owes (the form's invoices), one
receipt with the invoices it paid, a family's receipts, and the counter's list for the
daily cash-up with its totals by mode. Plain queries, a fixed number per page."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select, true

from citoyens.billing.counter_models import CounterReceipt
from citoyens.billing.direct_debit_export import amounts_due
from citoyens.billing.models import COUNTER_METHODS, Invoice, Payment
from citoyens.extensions import db
from citoyens.pagination import QueuePage
from citoyens.services.scope import household_filter

PAGE_SIZE = 100


@dataclass
class OpenInvoice:
    invoice: Invoice
    due_cents: int


def open_invoices(household_id: int) -> list[OpenInvoice]:
    """The household's invoices the counter may take money for (issued, something left to
    pay), oldest due date first: the order the amount is split in. Four queries."""
    invoices = list(
        db.session.scalars(
            select(Invoice)
            .where(
                Invoice.household_id == household_id,
                Invoice.kind == "invoice",
                Invoice.status == "issued",
            )
            .order_by(Invoice.due_on, Invoice.month, Invoice.id)
        )
    )
    dues = amounts_due(invoice.id for invoice in invoices)
    return [OpenInvoice(invoice, dues[invoice.id]) for invoice in invoices if dues[invoice.id] > 0]


@dataclass
class ReceiptLine:
    payment: Payment
    invoice_number: str
    month: date
    addressee: str


def receipt_lines(receipt_id: int) -> list[ReceiptLine]:
    """The invoices a receipt paid and how much of each, oldest due first. One query."""
    rows = db.session.execute(
        select(Payment, Invoice.number, Invoice.month, Invoice.addressee)
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(Payment.receipt_id == receipt_id)
        .order_by(Invoice.due_on, Invoice.month, Invoice.id)
    ).all()
    return [ReceiptLine(*row) for row in rows]


def household_receipt(household_id: int, receipt_id: int) -> CounterReceipt | None:
    """The household's receipt; None for anyone else's (and for ids out of range)."""
    if not 0 < receipt_id < 2**31:
        return None
    return db.session.scalar(
        select(CounterReceipt).where(
            CounterReceipt.id == receipt_id, CounterReceipt.household_id == household_id
        )
    )


def household_receipts(household_id: int) -> list[CounterReceipt]:
    """The family's counter receipts, newest first. One query."""
    return list(
        db.session.scalars(
            select(CounterReceipt)
            .where(CounterReceipt.household_id == household_id)
            .order_by(CounterReceipt.received_on.desc(), CounterReceipt.id.desc())
        )
    )


@dataclass
class CashUp:
    """The receipts of a span of days, and what was received by mode (reversed ones left
    out of the totals, counted apart)."""

    page: QueuePage
    totals: dict[str, int] = field(default_factory=dict)  # mode → cents, in COUNTER_METHODS order
    counts: dict[str, int] = field(default_factory=dict)
    reversed_count: int = 0
    reversed_cents: int = 0

    @property
    def total_cents(self) -> int:
        return sum(self.totals.values())

    @property
    def count(self) -> int:
        return sum(self.counts.values())


def cash_up(
    start: date, end: date, *, method: str = "", page: int = 1, user=None, per_page=PAGE_SIZE
) -> CashUp:
    """Receipts received from `start` to `end` (inclusive), of one mode or all, those of
    the families `user` may see when given (services.scope); by date received then number.
    Three queries."""
    conditions = [CounterReceipt.received_on >= start, CounterReceipt.received_on <= end]
    if method in COUNTER_METHODS:
        conditions.append(CounterReceipt.method == method)
    conditions.append(
        household_filter(CounterReceipt.household_id, user) if user is not None else true()
    )
    groups = db.session.execute(
        select(
            CounterReceipt.method,
            CounterReceipt.reversed_at.is_(None),
            func.count(CounterReceipt.id),
            func.coalesce(func.sum(CounterReceipt.amount_cents), 0),
        )
        .where(*conditions)
        .group_by(CounterReceipt.method, CounterReceipt.reversed_at.is_(None))
    ).all()
    totals = dict.fromkeys(COUNTER_METHODS, 0)
    counts = dict.fromkeys(COUNTER_METHODS, 0)
    result = CashUp(QueuePage([], 0, 1, per_page), totals, counts)
    total = 0
    for mode, live, count, cents in groups:
        total += count
        if live:
            totals[mode] += int(cents)
            counts[mode] += count
        else:
            result.reversed_count += count
            result.reversed_cents += int(cents)
    last_page = max(1, -(-total // per_page))
    page = min(max(1, page), last_page)
    items = list(
        db.session.scalars(
            select(CounterReceipt)
            .where(*conditions)
            .order_by(CounterReceipt.received_on, CounterReceipt.number)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    result.page = QueuePage(items, total, page, per_page)
    return result
