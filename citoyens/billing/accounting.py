"""The accounting export of a month (/admin/comptabilite), for the finance office.

- « Lignes de factures »: one row per line of the invoices of the month billed (the monthly
  run's invoices, whatever became of them since), with the activity's accounting code;
  credit lines and the credit balance deducted are lines too, negative.
- « Avoirs »: the lines of the credit notes issued during the month (Paris time), whatever
  month they correct: a credit note written later is never lost from a month already sent.
- « Paiements »: the payments received during the month that count (billing/outstanding.py).
- « Totaux »: the invoices' total, which is the run's to the cent (the sum of the invoices'
  totals), its lines per kind, the credit notes, and the payments per mode.

`build_accounting(month)` is a plain function returning the sheets; their rows are
generators, one streamed query each, so a month of 100,000 households never sits in memory
and the export could as well be written by a worker job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from citoyens.billing.exports import (
    ModeTotal,
    build_payments,
    month_key,
    paris_bounds,
    paris_day,
    payment_totals,
    stream_rows,
)
from citoyens.billing.models import LINE_KINDS, Invoice, InvoiceLine
from citoyens.billing.months import month_bounds
from citoyens.extensions import db
from citoyens.formatting import month_fr
from citoyens.services.models import Activity, Service
from citoyens.tabular import Sheet, cents_to_euros

LINE_COLUMNS = (
    "Facture",
    "Date",
    "Mois facturé",
    "Famille",
    "N° de foyer",
    "Enfant",
    "Service",
    "Activité",
    "Code comptable",
    "Nature",
    "Libellé",
    "Quantité",
    "Prix unitaire",
    "Montant",
)
CREDIT_COLUMNS = (
    "Avoir",
    "Date",
    "Mois facturé",
    "Facture corrigée",
    "Famille",
    "N° de foyer",
    "Libellé",
    "Quantité",
    "Prix unitaire",
    "Montant",
)
TOTAL_COLUMNS = ("Rubrique", "Nombre", "Montant")
# The sheets, in the workbook's order; the CSV links name one of them (?feuille=).
SHEETS = {
    "lignes": "Lignes de factures",
    "avoirs": "Avoirs",
    "paiements": "Paiements",
    "totaux": "Totaux",
}


def _invoices_of(month: date) -> list:
    return [Invoice.kind == "invoice", Invoice.month == month]


def _credit_notes_issued_in(month: date) -> list:
    start, end = paris_bounds(*month_bounds(month))
    return [Invoice.kind == "credit", Invoice.issued_at >= start, Invoice.issued_at < end]


@dataclass
class AccountingTotals:
    month: date
    invoice_count: int = 0
    invoiced_cents: int = 0  # the run's total: the sum of the invoices' totals
    line_count: int = 0
    lines_by_kind: dict[str, int] = field(default_factory=dict)  # kind → cents
    credit_count: int = 0
    credited_cents: int = 0  # negative
    payments: list[ModeTotal] = field(default_factory=list)

    @property
    def lines_cents(self) -> int:
        return sum(self.lines_by_kind.values())

    @property
    def net_cents(self) -> int:
        return self.invoiced_cents + self.credited_cents

    @property
    def paid_count(self) -> int:
        return sum(total.count for total in self.payments)

    @property
    def paid_cents(self) -> int:
        return sum(total.cents for total in self.payments)


def accounting_totals(month: date) -> AccountingTotals:
    """The month's totals. Four queries."""
    totals = AccountingTotals(month)
    count, cents = db.session.execute(
        select(func.count(Invoice.id), func.coalesce(func.sum(Invoice.total_cents), 0)).where(
            *_invoices_of(month)
        )
    ).one()
    totals.invoice_count, totals.invoiced_cents = count, int(cents)
    for kind, count, cents in db.session.execute(
        select(InvoiceLine.kind, func.count(InvoiceLine.id), func.sum(InvoiceLine.amount_cents))
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .where(*_invoices_of(month))
        .group_by(InvoiceLine.kind)
    ):
        totals.line_count += count
        totals.lines_by_kind[kind] = int(cents or 0)
    count, cents = db.session.execute(
        select(
            func.count(Invoice.id), func.coalesce(func.sum(func.abs(Invoice.total_cents)), 0)
        ).where(*_credit_notes_issued_in(month))
    ).one()
    totals.credit_count, totals.credited_cents = count, -int(cents)
    totals.payments = payment_totals(*month_bounds(month))
    return totals


def _lines(month: date):
    query = (
        select(
            Invoice.number,
            Invoice.issued_at,
            Invoice.month,
            Invoice.addressee,
            Invoice.household_id,
            InvoiceLine.child_name,
            Service.name,
            Activity.name,
            Activity.accounting_code,
            InvoiceLine.kind,
            InvoiceLine.label,
            InvoiceLine.quantity,
            InvoiceLine.unit_price_cents,
            InvoiceLine.amount_cents,
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .outerjoin(Activity, Activity.id == InvoiceLine.activity_id)
        .outerjoin(Service, Service.id == Activity.service_id)
        .where(*_invoices_of(month))
        .order_by(Invoice.year, Invoice.sequence, InvoiceLine.id)
    )
    for (
        number,
        issued_at,
        billed,
        addressee,
        household_id,
        child,
        service,
        activity,
        code,
        kind,
        label,
        quantity,
        unit_cents,
        cents,
    ) in stream_rows(query):
        yield (
            number,
            paris_day(issued_at),
            month_key(billed),
            addressee,
            household_id,
            child or None,
            service,
            activity,
            code,
            LINE_KINDS.get(kind, kind),
            label,
            quantity,
            cents_to_euros(unit_cents),
            cents_to_euros(cents),
        )


def _credit_lines(month: date):
    corrected = aliased(Invoice)
    query = (
        select(
            Invoice.number,
            Invoice.issued_at,
            Invoice.month,
            corrected.number,
            Invoice.addressee,
            Invoice.household_id,
            InvoiceLine.label,
            InvoiceLine.quantity,
            InvoiceLine.unit_price_cents,
            InvoiceLine.amount_cents,
        )
        .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
        .outerjoin(corrected, corrected.id == Invoice.credit_for_id)
        .where(*_credit_notes_issued_in(month))
        .order_by(Invoice.year, Invoice.sequence, InvoiceLine.id)
    )
    for (
        number,
        issued_at,
        billed,
        original,
        addressee,
        household_id,
        label,
        quantity,
        unit_cents,
        cents,
    ) in stream_rows(query):
        # A credit note gives money back: negative, whatever sign its rows were stored with.
        yield (
            number,
            paris_day(issued_at),
            month_key(billed),
            original,
            addressee,
            household_id,
            label,
            quantity,
            cents_to_euros(-abs(unit_cents)),
            cents_to_euros(-abs(cents)),
        )


def _kind_order(kind: str) -> int:
    kinds = list(LINE_KINDS)
    return kinds.index(kind) if kind in kinds else len(kinds)


def _total_rows(month: date):
    totals = accounting_totals(month)
    label = month_fr(month)
    yield (f"Factures du mois facturé ({label})", totals.invoice_count, totals.invoiced_cents)
    for kind, cents in sorted(totals.lines_by_kind.items(), key=lambda item: _kind_order(item[0])):
        yield (f"dont lignes « {LINE_KINDS.get(kind, kind)} »", None, cents)
    yield ("Total des lignes de factures", totals.line_count, totals.lines_cents)
    yield (f"Avoirs émis en {label}", totals.credit_count, totals.credited_cents)
    yield ("Net (factures et avoirs)", None, totals.net_cents)
    for mode in totals.payments:
        yield (f"Paiements reçus : {mode.label}", mode.count, mode.cents)
    yield (f"Total des paiements reçus en {label}", totals.paid_count, totals.paid_cents)


def build_accounting(month: date) -> list[Sheet]:
    """The month's workbook: invoice lines, credit notes, payments, totals. No query runs
    until a sheet's rows are read."""

    def totals():
        for label, count, cents in _total_rows(month):
            yield (label, count, cents_to_euros(cents))

    payments = build_payments(*month_bounds(month))[0]
    return [
        Sheet(SHEETS["lignes"], LINE_COLUMNS, _lines(month), money_columns=[12, 13]),
        Sheet(SHEETS["avoirs"], CREDIT_COLUMNS, _credit_lines(month), money_columns=[8, 9]),
        Sheet(SHEETS["paiements"], payments.columns, payments.rows, payments.money_columns),
        Sheet(SHEETS["totaux"], TOTAL_COLUMNS, totals(), money_columns=[2]),
    ]
