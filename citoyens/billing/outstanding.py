"""What is left to pay on invoices, in SQL: the reminders, the unpaid invoices by age (the
Trésorerie's list) and the exports read it from here.

Left to pay = the invoice's total, less the credit notes that correct it, less the payments
that count (`counted_payments`). Only invoices still "issued" have anything left: paid,
debited, cancelled ones and those awaiting their direct debit are settled or on their way.
Everything is aggregated by the database: a page or an export runs a fixed number of
queries whatever the number of invoices.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select, true

from citoyens.billing.models import Invoice, InvoiceReminder, Payment
from citoyens.extensions import db
from citoyens.services.scope import household_filter

STREAM_BATCH = 1000  # rows fetched at a time by an export


def counted_payments() -> ColumnElement[bool]:
    """The payments that count as money received: neither rejected by the bank nor reversed
    at the counter (`Payment.counts`). The one condition the reminders, the unpaid list and
    the accounting export share."""
    return Payment.counts


def _open_invoice_ids() -> Select:
    return select(Invoice.id).where(Invoice.kind == "invoice", Invoice.status == "issued")


def _received():
    """Cents received per open invoice (payments that count)."""
    return (
        select(Payment.invoice_id, func.sum(Payment.amount_cents).label("cents"))
        .where(counted_payments(), Payment.invoice_id.in_(_open_invoice_ids()))
        .group_by(Payment.invoice_id)
        .subquery("received")
    )


def _credited():
    """Cents given back by credit notes per invoice they correct (stored either sign)."""
    credit = Invoice.__table__.alias("credit_note")
    return (
        select(
            credit.c.credit_for_id.label("invoice_id"),
            func.sum(func.abs(credit.c.total_cents)).label("cents"),
        )
        .where(credit.c.kind == "credit", credit.c.credit_for_id.is_not(None))
        .group_by(credit.c.credit_for_id)
        .subquery("credited")
    )


def _reminded():
    """When each invoice's reminders were sent: the one before its due date, the one after."""
    return (
        select(
            InvoiceReminder.invoice_id,
            func.max(
                case((InvoiceReminder.kind == "before", InvoiceReminder.sent_at), else_=None)
            ).label("before_at"),
            func.max(
                case((InvoiceReminder.kind == "after", InvoiceReminder.sent_at), else_=None)
            ).label("after_at"),
        )
        .group_by(InvoiceReminder.invoice_id)
        .subquery("reminded")
    )


def open_invoices(*columns, with_reminders: bool = False) -> Select:
    """SELECT `columns`, left_cents [, before_at, after_at] FROM the invoices still "issued"
    with something left to pay; add WHERE and ORDER BY to it. `left_cents` is labelled."""
    received, credited = _received(), _credited()
    left = (
        Invoice.total_cents
        - func.coalesce(credited.c.cents, 0)
        - func.coalesce(received.c.cents, 0)
    )
    extra = []
    reminded = None
    if with_reminders:
        reminded = _reminded()
        extra = [reminded.c.before_at, reminded.c.after_at]
    query = (
        select(*columns, left.label("left_cents"), *extra)
        .select_from(Invoice)
        .outerjoin(received, received.c.invoice_id == Invoice.id)
        .outerjoin(credited, credited.c.invoice_id == Invoice.id)
        .where(Invoice.kind == "invoice", Invoice.status == "issued", left > 0)
    )
    if reminded is not None:
        query = query.outerjoin(reminded, reminded.c.invoice_id == Invoice.id)
    return query


# --- Age since the due date ---------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    key: str  # in the URL: ?anciennete=31-60
    label: str
    low: int | None  # days past the due date, inclusive; None: no lower bound
    high: int | None

    def holds(self, days_late: int) -> bool:
        return (self.low is None or days_late >= self.low) and (
            self.high is None or days_late <= self.high
        )

    def condition(self, today: date) -> ColumnElement[bool]:
        """The due dates in this bucket on `today` (plain date bounds: no date arithmetic in
        SQL, the same on SQLite and PostgreSQL)."""
        conditions = []
        if self.low is not None:
            conditions.append(Invoice.due_on <= today - timedelta(days=self.low))
        if self.high is not None:
            conditions.append(Invoice.due_on >= today - timedelta(days=self.high))
        return and_(true(), *conditions)


BUCKETS = (
    Bucket("a-echoir", "Pas encore échues", None, 0),
    Bucket("1-30", "En retard de 1 à 30 jours", 1, 30),
    Bucket("31-60", "En retard de 31 à 60 jours", 31, 60),
    Bucket("61-90", "En retard de 61 à 90 jours", 61, 90),
    Bucket("plus-de-90", "En retard de plus de 90 jours", 91, None),
)
BUCKETS_BY_KEY = {bucket.key: bucket for bucket in BUCKETS}


def bucket_of(due_on: date, today: date) -> Bucket:
    days_late = (today - due_on).days
    return next(bucket for bucket in BUCKETS if bucket.holds(days_late))


# --- The unpaid invoices ------------------------------------------------------------------------


@dataclass
class UnpaidRow:
    id: int
    number: str
    household_id: int
    addressee: str
    month: date
    due_on: date
    total_cents: int
    left_cents: int
    before_at: datetime | None
    after_at: datetime | None

    def days_late(self, today: date) -> int:
        return max(0, (today - self.due_on).days)


@dataclass
class BucketTotal:
    bucket: Bucket
    count: int = 0
    left_cents: int = 0


def _search(q: str) -> ColumnElement[bool]:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(
        Invoice.number.ilike(pattern, escape="\\"), Invoice.addressee.ilike(pattern, escape="\\")
    )


def _filters(user, q: str, bucket: Bucket | None, today: date) -> list:
    conditions = [household_filter(Invoice.household_id, user) if user is not None else true()]
    if q:
        conditions.append(_search(q))
    if bucket is not None:
        conditions.append(bucket.condition(today))
    return conditions


def bucket_totals(today: date, *, user=None, q: str = "") -> list[BucketTotal]:
    """Count and amount left to pay per age bucket, of the invoices `user` may see. One
    query, grouped by due date (a run gives one or two), summed up here: a bucket computed
    in SQL would need a bound parameter in GROUP BY, which PostgreSQL refuses."""
    query = open_invoices(Invoice.due_on).where(*_filters(user, q, None, today)).subquery()
    rows = db.session.execute(
        select(query.c.due_on, func.count(), func.sum(query.c.left_cents)).group_by(query.c.due_on)
    )
    totals = {bucket.key: BucketTotal(bucket) for bucket in BUCKETS}
    for due_on, count, left in rows:
        total = totals[bucket_of(due_on, today).key]
        total.count += count
        total.left_cents += int(left or 0)
    return list(totals.values())


def _rows_query(today: date, user, q: str, bucket: Bucket | None) -> Select:
    return (
        open_invoices(
            Invoice.id,
            Invoice.number,
            Invoice.household_id,
            Invoice.addressee,
            Invoice.month,
            Invoice.due_on,
            Invoice.total_cents,
            with_reminders=True,
        )
        .where(*_filters(user, q, bucket, today))
        .order_by(Invoice.due_on, Invoice.number, Invoice.id)
    )


def unpaid_page(
    today: date, *, user=None, q: str = "", bucket: Bucket | None = None, offset: int, limit: int
) -> list[UnpaidRow]:
    """One page of the unpaid invoices, the most overdue first. One query."""
    query = _rows_query(today, user, q, bucket).offset(offset).limit(limit)
    return [UnpaidRow(*row) for row in db.session.execute(query)]


def unpaid_rows(
    today: date, *, user=None, q: str = "", bucket: Bucket | None = None
) -> Iterator[UnpaidRow]:
    """Every unpaid invoice of the filters, streamed (an export): one query. The query is
    built now (the user's scope read while the request's session has them); it runs when
    the rows are read."""
    query = _rows_query(today, user, q, bucket).execution_options(yield_per=STREAM_BATCH)

    def rows() -> Iterator[UnpaidRow]:
        result = db.session.execute(query)
        try:
            for row in result:
                yield UnpaidRow(*row)
        finally:
            result.close()

    return rows()
