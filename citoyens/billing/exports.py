"""The staff's billing tables as files (CSV, XLSX through citoyens.tabular): the month's
invoice list with its filters, the payments received over a period, the unpaid invoices
by age. The accounting export (billing/accounting.py) reuses the payments' sheets.

Builders are plain functions returning `Sheet`s whose rows are generators: each runs one
query when the file is written, streamed in batches, so a large export never sits in
memory and a worker job could write it as well as a request. Only the families `user` may
see are included when a user is given (services.scope); none for the accounting export.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from citoyens.billing import invoice_list
from citoyens.billing.models import INVOICE_STATUSES, PAYMENT_METHODS, Invoice, Payment
from citoyens.billing.outstanding import (
    STREAM_BATCH,
    Bucket,
    bucket_of,
    counted_payments,
    unpaid_rows,
)
from citoyens.billing.rules import invoice_state, signed_total
from citoyens.extensions import db
from citoyens.forms import PARIS
from citoyens.services.scope import household_filter
from citoyens.tabular import Sheet, cents_to_euros

# --- Helpers ----------------------------------------------------------------------------------


def paris_time(value: datetime | None) -> datetime | None:
    """A stored UTC timestamp as the wall clock in Paris (naive: a spreadsheet has no zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(PARIS).replace(tzinfo=None)


def paris_day(value: datetime) -> date:
    return paris_time(value).date()


def paris_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[first 00:00, the day after `last` 00:00) in Paris, as UTC instants."""
    start = datetime.combine(first, time(), tzinfo=PARIS)
    end = datetime.combine(last + timedelta(days=1), time(), tzinfo=PARIS)
    return start.astimezone(UTC), end.astimezone(UTC)


def month_key(month: date | None) -> str:
    """The month billed as text, "2026-09": sorts and reads the same in any spreadsheet."""
    return f"{month:%Y-%m}" if month else ""


def method_label(code: str) -> str:
    """A payment mode in words; a mode this build does not know yet shows as its code."""
    return PAYMENT_METHODS.get(code, code)


def stream_rows(query) -> Iterator:
    """The rows of `query`, fetched in batches (the export is written as they come)."""
    result = db.session.execute(query.execution_options(yield_per=STREAM_BATCH))
    try:
        yield from result
    finally:
        result.close()


# --- The month's invoices (the list's export) ---------------------------------------------------

INVOICE_COLUMNS = (
    "Numéro",
    "Type",
    "Mois facturé",
    "Émise le",
    "Échéance",
    "Famille",
    "N° de foyer",
    "Montant",
    "Statut",
    "État",
    "Envoi",
)


def build_invoice_list(
    month: date, *, status: str = "", q: str = "", today: date, user=None
) -> list[Sheet]:
    """The month's invoices and credit notes as the list shows them with its filters."""
    conditions = invoice_list.list_conditions(month, status=status, q=q, today=today, user=user)
    last_paid = (
        select(Payment.invoice_id, func.max(Payment.paid_at).label("paid_at"))
        .where(counted_payments())
        .group_by(Payment.invoice_id)
        .subquery("last_paid")
    )

    def rows():
        query = (
            select(Invoice, last_paid.c.paid_at)
            .outerjoin(last_paid, last_paid.c.invoice_id == Invoice.id)
            .where(*conditions)
            .order_by(Invoice.number, Invoice.id)
        )
        for invoice, paid_on in stream_rows(query):
            yield (
                invoice.number,
                "Avoir" if invoice.kind == "credit" else "Facture",
                month_key(invoice.month),
                paris_day(invoice.issued_at),
                None if invoice.kind == "credit" else invoice.due_on,
                invoice.addressee,
                invoice.household_id,
                cents_to_euros(signed_total(invoice)),
                "Avoir" if invoice.kind == "credit" else INVOICE_STATUSES[invoice.status],
                invoice_state(invoice, today=today, paid_on=paid_on).label,
                "En ligne" if invoice.paperless else "Papier",
            )

    return [Sheet("Factures", INVOICE_COLUMNS, rows(), money_columns=[7])]


# --- Payments received over a period --------------------------------------------------------------

PAYMENT_COLUMNS = (
    "Reçu le",
    "Mode de paiement",
    "Code du mode",
    "Montant",
    "Facture",
    "Mois facturé",
    "Famille",
    "N° de foyer",
    "Référence",
)


@dataclass
class ModeTotal:
    method: str
    label: str
    count: int
    cents: int


def _payment_conditions(first: date, last: date, user) -> list:
    start, end = paris_bounds(first, last)
    conditions = [counted_payments(), Payment.paid_at >= start, Payment.paid_at < end]
    if user is not None:
        conditions.append(household_filter(Invoice.household_id, user))
    return conditions


def payment_totals(first: date, last: date, *, user=None) -> list[ModeTotal]:
    """Count and amount of the payments received from `first` to `last` (Paris days), per
    mode, in PAYMENT_METHODS' order (unknown modes last, by code). One query."""
    rows = db.session.execute(
        select(Payment.method, func.count(Payment.id), func.sum(Payment.amount_cents))
        .join(Invoice, Invoice.id == Payment.invoice_id)
        .where(*_payment_conditions(first, last, user))
        .group_by(Payment.method)
    ).all()
    order = {code: index for index, code in enumerate(PAYMENT_METHODS)}
    totals = [
        ModeTotal(code, method_label(code), count, int(cents or 0)) for code, count, cents in rows
    ]
    return sorted(totals, key=lambda total: (order.get(total.method, len(order)), total.method))


def build_payments(first: date, last: date, *, user=None) -> list[Sheet]:
    """« Paiements » (one row per payment that counts, received in the period) and
    « Paiements par mode » (the totals per mode and overall)."""
    conditions = _payment_conditions(first, last, user)

    def rows():
        query = (
            select(
                Payment.paid_at,
                Payment.method,
                Payment.amount_cents,
                Invoice.number,
                Invoice.month,
                Invoice.addressee,
                Invoice.household_id,
                Payment.transaction_id,
            )
            .join(Invoice, Invoice.id == Payment.invoice_id)
            .where(*conditions)
            .order_by(Payment.paid_at, Payment.id)
        )
        for (
            paid_at,
            method,
            cents,
            number,
            month,
            addressee,
            household_id,
            reference,
        ) in stream_rows(query):
            yield (
                paris_time(paid_at),
                method_label(method),
                method,
                cents_to_euros(cents),
                number,
                month_key(month),
                addressee,
                household_id,
                reference,
            )

    def totals():
        found = payment_totals(first, last, user=user)
        for total in found:
            yield (total.label, total.method, total.count, cents_to_euros(total.cents))
        yield (
            "Total des paiements",
            "",
            sum(total.count for total in found),
            cents_to_euros(sum(total.cents for total in found)),
        )

    return [
        Sheet("Paiements", PAYMENT_COLUMNS, rows(), money_columns=[3]),
        Sheet(
            "Paiements par mode",
            ("Mode de paiement", "Code du mode", "Nombre", "Montant"),
            totals(),
            money_columns=[3],
        ),
    ]


# --- Unpaid invoices by age ---------------------------------------------------------------------

UNPAID_COLUMNS = (
    "Famille",
    "N° de foyer",
    "Facture",
    "Mois facturé",
    "Échéance",
    "Jours de retard",
    "Ancienneté",
    "Montant",
    "Reste à payer",
    "Rappel avant l'échéance",
    "Relance après l'échéance",
)


def build_unpaid(
    today: date, *, user=None, q: str = "", bucket: Bucket | None = None
) -> list[Sheet]:
    unpaid = unpaid_rows(today, user=user, q=q, bucket=bucket)

    def rows():
        for row in unpaid:
            yield (
                row.addressee,
                row.household_id,
                row.number,
                month_key(row.month),
                row.due_on,
                row.days_late(today),
                bucket_of(row.due_on, today).label,
                cents_to_euros(row.total_cents),
                cents_to_euros(row.left_cents),
                paris_time(row.before_at),
                paris_time(row.after_at),
            )

    return [Sheet("Impayés", UNPAID_COLUMNS, rows(), money_columns=[7, 8])]
