"""Invoices, read side for staff: the month's invoices, filtered and paged, their summary,
and the paper invoices to print. Plain queries, no HTTP; a fixed number of queries per page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import selectinload

from citoyens.billing.models import Invoice, Payment
from citoyens.billing.month_totals import InvoiceMonthTotal
from citoyens.billing.rules import STATUS_FILTERS, State, invoice_state
from citoyens.extensions import db
from citoyens.pagination import QueuePage
from citoyens.services.scope import household_filter, household_ids_visible_to

STAFF_PAGE_SIZE = 50


def parse_month(value: str | None) -> date | None:
    """ "2026-09" → 1 September 2026; anything else → None."""
    value = (value or "").strip()
    if len(value) != 7 or value[4] != "-" or not value.replace("-", "").isdigit():
        return None
    year, month = int(value[:4]), int(value[5:])
    if not (2000 <= year <= 2200 and 1 <= month <= 12):
        return None
    return date(year, month, 1)


def latest_month() -> date | None:
    return db.session.scalar(select(func.max(Invoice.month)))


def shift_month(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _filter_conditions(status: str, today: date) -> list:
    if status == "credit":
        return [Invoice.kind == "credit"]
    if status == "issued":
        return [Invoice.kind == "invoice", Invoice.status == "issued", Invoice.due_on >= today]
    if status == "overdue":
        return [Invoice.kind == "invoice", Invoice.status == "issued", Invoice.due_on < today]
    if status in STATUS_FILTERS:
        return [Invoice.kind == "invoice", Invoice.status == status]
    return []


def _search_condition(q: str):
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(
        Invoice.number.ilike(pattern, escape="\\"), Invoice.addressee.ilike(pattern, escape="\\")
    )


def list_conditions(month: date, *, status: str, q: str, today: date, user=None) -> list:
    """The WHERE of the month's list with its filters (the page and its export)."""
    conditions = [Invoice.month == month, *_filter_conditions(status, today)]
    if user is not None:
        conditions.append(household_filter(Invoice.household_id, user))
    if q:
        conditions.append(_search_condition(q))
    return conditions


@dataclass
class MonthSummary:
    counts: dict[str, int] = field(default_factory=dict)  # per STATUS_FILTERS key
    invoice_count: int = 0
    invoiced_cents: int = 0
    credit_count: int = 0
    credited_cents: int = 0
    paper_count: int = 0  # invoices and credit notes to print

    @property
    def net_cents(self) -> int:
        return self.invoiced_cents - self.credited_cents

    def listed(self, status: str) -> int:
        """How many the month's list holds with this status filter ("" for all)."""
        if not status:
            return self.invoice_count + self.credit_count
        return self.counts.get(status, 0)


def month_summary(month: date, today: date, user=None) -> MonthSummary:
    """Counts and totals of the month, by status, in one query: read from the counts the
    database keeps (`month_totals`), or, for an agent who sees only some families
    (services.scope), counted from their invoices. By due date too (a run gives one or
    two) rather than by a computed "late" flag: an expression with a bound parameter in
    GROUP BY is refused by PostgreSQL with server-side parameters."""
    if user is None or household_ids_visible_to(user) is None:
        rows = kept_rows(month)
    else:
        rows = counted_rows(month, user)
    summary = MonthSummary(counts=dict.fromkeys(STATUS_FILTERS, 0))
    for kind, status, due_on, paperless, count, total in rows:
        if not paperless:
            summary.paper_count += count
        if kind == "credit":
            summary.counts["credit"] += count
            summary.credit_count += count
            summary.credited_cents += total
            continue
        summary.invoice_count += count
        summary.invoiced_cents += total
        key = "overdue" if status == "issued" and due_on < today else status
        summary.counts[key] = summary.counts.get(key, 0) + count
    return summary


def kept_rows(month: date) -> list[tuple]:
    """(kind, status, due_on, paperless, count, total) of the month, as the database keeps
    them."""
    return db.session.execute(
        select(
            InvoiceMonthTotal.kind,
            InvoiceMonthTotal.status,
            InvoiceMonthTotal.due_on,
            InvoiceMonthTotal.paperless,
            InvoiceMonthTotal.invoices,
            InvoiceMonthTotal.cents,
        ).where(InvoiceMonthTotal.month == month, InvoiceMonthTotal.invoices > 0)
    ).all()


def counted_rows(month: date, user=None) -> list[tuple]:
    """The same, counted from the month's invoices (of the families `user` may see)."""
    return db.session.execute(
        select(
            Invoice.kind,
            Invoice.status,
            Invoice.due_on,
            Invoice.paperless,
            func.count(Invoice.id),
            func.coalesce(func.sum(func.abs(Invoice.total_cents)), 0),
        )
        .where(
            Invoice.month == month,
            household_filter(Invoice.household_id, user) if user is not None else true(),
        )
        .group_by(Invoice.kind, Invoice.status, Invoice.due_on, Invoice.paperless)
    ).all()


def month_invoices(
    month: date,
    *,
    status: str = "",
    q: str = "",
    page: int = 1,
    today: date,
    per_page: int = STAFF_PAGE_SIZE,
    user=None,
    summary: MonthSummary | None = None,
) -> tuple[QueuePage, dict[int, State]]:
    """One page of the month's invoices and credit notes, filtered, by number; and each
    one's state; only the families `user` may see when given (services.scope). Three
    queries, whatever the page size; two when the month's `summary` (for the same user)
    gives the total of an unsearched list."""
    conditions = list_conditions(month, status=status, q=q, today=today, user=user)
    if summary is not None and not q:
        total = summary.listed(status)  # the month's counts already say it
    else:
        total = db.session.scalar(select(func.count(Invoice.id)).where(*conditions)) or 0
    last_page = max(1, -(-total // per_page))
    page = min(max(1, page), last_page)
    items = list(
        db.session.scalars(
            select(Invoice)
            .where(*conditions)
            .order_by(Invoice.number, Invoice.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    paid_on: dict[int, datetime] = {}
    if items:
        last_paid = func.max(Payment.paid_at).label("last_paid")
        paid_on = dict(
            db.session.execute(
                select(Payment.invoice_id, last_paid)
                .where(Payment.invoice_id.in_([i.id for i in items]), Payment.counts)
                .group_by(Payment.invoice_id)
            ).all()
        )
    states = {i.id: invoice_state(i, today=today, paid_on=paid_on.get(i.id)) for i in items}
    return QueuePage(items, total, page, per_page), states


def paper_invoices(month: date, user=None) -> list[Invoice]:
    """The month's invoices and credit notes of families without "facture en ligne", to print:
    one family's together, lines loaded; only the families `user` may see when given.
    Two queries."""
    scope = household_filter(Invoice.household_id, user) if user is not None else true()
    return list(
        db.session.scalars(
            select(Invoice)
            .options(selectinload(Invoice.lines))
            .where(Invoice.month == month, Invoice.paperless.is_(False), scope)
            .order_by(Invoice.addressee, Invoice.household_id, Invoice.kind.desc(), Invoice.number)
        )
    )
