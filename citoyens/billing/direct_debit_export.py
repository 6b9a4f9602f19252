"""The monthly direct-debit file (pain.008.001.02), exported by staff.

- Only invoices in status "direct_debit" are taken, each claimed by a conditional UPDATE
  (`status = 'direct_debit'` → "debited") in the exporting transaction, so an invoice
  is never exported twice, even by two exports at once. One file (DirectDebitBatch) per
  collection date: normally one a month, since the invoice run gives every invoice of a
  month the same `debit_on`. A planned date less than `MIN_LEAD_DAYS` away (the bank
  needs the file before the date) moves to the next possible weekday, and the invoice
  shows the new date.
- FRST for a mandate's first collection (no earlier item that was not rejected), RCUR
  after. Each invoice becomes a transaction for what is left to collect (its total less
  the credit notes that correct it and the payments not rejected; nothing left → not in
  the file), with its own end-to-end id, and a Payment (method "direct_debit",
  transaction_id = end-to-end id, paid_at = collection date at noon, Paris).
- The file is built by `sepaxml` and validated against the pain.008.001.02 XSD it ships;
  a file that does not validate rolls the whole export back.

Functions flush and never commit: callers run them inside `write_transaction`.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from citoyens import audit, crypto
from citoyens.billing import creditor_id, mandates
from citoyens.billing.mandates import add_months, creditor, signed_on
from citoyens.billing.models import (
    DirectDebitBatch,
    DirectDebitItem,
    Invoice,
    Mandate,
    Payment,
)
from citoyens.core import settings
from citoyens.extensions import db
from citoyens.formatting import month_fr
from citoyens.forms import PARIS

log = logging.getLogger("citoyens.sepa")

SCHEMA = "pain.008.001.02"


# Days between the export and the earliest collection date the file may ask for.
MIN_LEAD_DAYS = 2


class DirectDebitError(ValueError):
    """An export or a rejection that cannot be done; the message is French."""


def decimal_amount(cents: int) -> str:
    """1230 → "12.30", as in the XML file."""
    return f"{cents // 100}.{cents % 100:02d}"


def creditor_problem() -> str | None:
    """Why no pain.008 file may leave now (the ICS is invalid, or the demo one in
    production), in French; None when files may be exported."""
    config = current_app.config
    return creditor_id.problem(
        settings.current()["SEPA_CREDITOR_ID"], production=config["PRODUCTION"]
    )


def default_debit_on(month: date) -> date:
    """DIRECT_DEBIT_DAY of the month after the billed one (the month of issue)."""
    day = min(max(int(current_app.config.get("DIRECT_DEBIT_DAY", 15)), 1), 28)
    return add_months(month, 1).replace(day=day)


def collection_date(invoice: Invoice, on: date) -> date:
    """The invoice's planned debit date, or the earliest weekday the bank can still take
    when that date is too close or past."""
    planned = invoice.debit_on or default_debit_on(invoice.month)
    earliest = on + timedelta(days=MIN_LEAD_DAYS)
    while earliest.weekday() >= 5:  # no collection on a Saturday or Sunday
        earliest += timedelta(days=1)
    return max(planned, earliest)


def _exportable_where(month: date) -> tuple:
    return (
        Invoice.month == month,
        Invoice.kind == "invoice",
        Invoice.status == "direct_debit",
        Invoice.total_cents > 0,
        Mandate.revoked_at.is_(None),
    )


def exportable_debits(month: date) -> list[tuple[Invoice, Mandate]]:
    """The month's invoices under direct debit that the next file will take."""
    rows = db.session.execute(
        select(Invoice, Mandate)
        .join(Mandate, Mandate.id == Invoice.mandate_id)
        .where(*_exportable_where(month))
        .order_by(Invoice.number)
    )
    return [(row[0], row[1]) for row in rows]


def blocked_count(month: date, exportable: int | None = None) -> int:
    """Invoices of the month in status "direct_debit" that the next file will not take (no
    mandate, a revoked one, or nothing left to collect): staff look at them one by one."""
    total = db.session.scalar(
        select(func.count(Invoice.id)).where(
            Invoice.month == month, Invoice.kind == "invoice", Invoice.status == "direct_debit"
        )
    )
    if exportable is None:
        rows = exportable_debits(month)
        due = amounts_due(invoice.id for invoice, _ in rows)
        exportable = sum(1 for invoice, _ in rows if due[invoice.id] > 0)
    return total - exportable


def amounts_due(invoice_ids) -> dict[int, int]:
    """What is left to collect on each invoice: its total less the credit notes that
    correct it and the payments that count (`Payment.counts`: not rejected, not reversed),
    as `billing.payments.amount_left`, in three queries for the whole month."""
    ids = list(set(invoice_ids))
    if not ids:
        return {}
    due = dict(
        db.session.execute(select(Invoice.id, Invoice.total_cents).where(Invoice.id.in_(ids))).all()
    )
    credited = db.session.execute(
        select(Invoice.credit_for_id, func.sum(func.abs(Invoice.total_cents)))
        .where(Invoice.credit_for_id.in_(ids), Invoice.kind == "credit")
        .group_by(Invoice.credit_for_id)
    ).all()
    paid = db.session.execute(
        select(Payment.invoice_id, func.sum(Payment.amount_cents))
        .where(Payment.invoice_id.in_(ids), Payment.counts)
        .group_by(Payment.invoice_id)
    ).all()
    for invoice_id, cents in (*credited, *paid):
        due[invoice_id] -= int(cents or 0)
    return due


def sequence_types(mandate_ids) -> dict[int, str]:
    """FRST for a mandate without an earlier collection that was not rejected, else RCUR."""
    ids = list(set(mandate_ids))
    if not ids:
        return {}
    collected = set(
        db.session.scalars(
            select(DirectDebitItem.mandate_id)
            .where(DirectDebitItem.mandate_id.in_(ids), DirectDebitItem.rejected_at.is_(None))
            .distinct()
        )
    )
    return {mandate_id: "RCUR" if mandate_id in collected else "FRST" for mandate_id in ids}


def end_to_end_id(invoice: Invoice) -> str:
    """ "F2026-000042-3FA9C1": the invoice number and a random part (≤ 35 characters)."""
    return f"{invoice.number[:27]}-{secrets.token_hex(3).upper()}"


def remittance(invoice: Invoice) -> str:
    """What the family reads on its bank statement (≤ 140 characters)."""
    commune = settings.current().name
    return f"Facture {invoice.number} {commune} {month_fr(invoice.month)}"[:140]


@dataclass
class Debit:
    invoice: Invoice
    mandate: Mandate
    sequence_type: str
    end_to_end_id: str
    amount_cents: int


IBANS_UNREADABLE = (
    "Les IBAN des mandats ne peuvent pas être déchiffrés avec la clé configurée "
    "(DATA_ENCRYPTION_KEYS) : aucun fichier n'a été créé et aucune facture modifiée. "
    "Ajoutez l'ancienne clé après la nouvelle, puis réessayez."
)


def mandate_ibans(mandate_ids) -> dict[int, str]:
    """The full IBANs of these mandates, decrypted (one query): for the pain.008 file only.
    DirectDebitError when the configured keys cannot open them."""
    ids = list(set(mandate_ids))
    try:
        query = select(Mandate.id, Mandate.iban).where(Mandate.id.in_(ids))
        return dict(db.session.execute(query).all())
    except (crypto.DecryptionError, crypto.EncryptionKeyError) as exc:
        log.error("pain.008 export refused: %s", exc)
        raise DirectDebitError(IBANS_UNREADABLE) from None


def build_pain008(debits: list[Debit], when: date) -> tuple[str, bytes]:
    """(message id, XML) of a pain.008.001.02 file, validated against the XSD."""
    from sepaxml import SepaDD

    settings = creditor()
    if creditor_problem():  # export_month checked already: never a file without a valid ICS
        raise DirectDebitError(creditor_id.INVALID)
    ibans = mandate_ibans(debit.mandate.id for debit in debits)
    config = {
        "name": settings["name"],
        "IBAN": settings["iban"],
        "BIC": settings["bic"],
        "batch": True,
        "creditor_id": settings["id"],
        "currency": "EUR",
        "instrument": "CORE",
    }
    try:
        sepa = SepaDD(config, schema=SCHEMA, clean=True)
        for debit in debits:
            sepa.add_payment(
                {
                    "name": debit.mandate.holder_name,
                    "IBAN": ibans[debit.mandate.id],
                    "BIC": debit.mandate.bic,
                    "amount": int(debit.amount_cents),
                    "type": debit.sequence_type,
                    "collection_date": when,
                    "mandate_id": debit.mandate.rum,
                    "mandate_date": signed_on(debit.mandate),
                    "description": remittance(debit.invoice),
                    "endtoend_id": debit.end_to_end_id,
                }
            )
        xml = sepa.export(validate=True)
    except Exception as exc:  # noqa: BLE001 - the message may quote an IBAN: never passed on
        cause = exc.__cause__ or exc
        log.error(
            "pain.008 file refused: %s at %s",
            type(cause).__name__,
            getattr(cause, "path", None) or "-",
        )
        raise DirectDebitError(
            "Le fichier de prélèvement n'a pas pu être créé (il ne respecte pas le format "
            "SEPA). Aucune facture n'a été modifiée. Vérifiez les coordonnées du créancier "
            "dans la configuration, puis réessayez."
        ) from None
    return sepa.msg_id, xml


@dataclass
class ExportResult:
    batch_ids: list[int]
    count: int
    total_cents: int


def export_month(month: date, *, actor, on: date | None = None) -> ExportResult:
    """The month's invoices under direct debit into new files, one per collection date.

    Invoices are claimed by a conditional UPDATE first: an invoice another export took
    meanwhile is left out, and a second export of the month adds nothing."""
    on = on or mandates.today()  # the tests' clock patches mandates.today
    refusal = creditor_problem()
    if refusal:
        log.error("pain.008 export refused: SEPA_CREDITOR_ID is not a valid creditor id")
        raise DirectDebitError(refusal)
    rows = exportable_debits(month)
    due = amounts_due(invoice.id for invoice, _ in rows)
    # Nothing left to collect (a credit note or a payment at the counter settled it): the
    # invoice stays out of the file, and among the ones staff look at.
    rows = [(invoice, mandate) for invoice, mandate in rows if due[invoice.id] > 0]
    if not rows:
        return ExportResult([], 0, 0)
    claimed = set(
        db.session.scalars(
            update(Invoice)
            .where(
                Invoice.id.in_([invoice.id for invoice, _ in rows]),
                Invoice.status == "direct_debit",
            )
            .values(status="debited")
            .returning(Invoice.id)
            .execution_options(synchronize_session=False)
        )
    )
    rows = [(invoice, mandate) for invoice, mandate in rows if invoice.id in claimed]
    sequences = sequence_types(mandate.id for _, mandate in rows)
    groups: dict[date, list[Debit]] = {}
    for invoice, mandate in rows:
        sequence = sequences[mandate.id]
        sequences[mandate.id] = "RCUR"  # a second invoice of the mandate in this run
        groups.setdefault(collection_date(invoice, on), []).append(
            Debit(invoice, mandate, sequence, end_to_end_id(invoice), due[invoice.id])
        )
    result = ExportResult([], 0, 0)
    for when in sorted(groups):
        debits = groups[when]
        message_id, xml = build_pain008(debits, when)
        total = sum(debit.amount_cents for debit in debits)
        batch = DirectDebitBatch(
            month=month,
            message_id=message_id,
            collection_date=when,
            count=len(debits),
            total_cents=total,
            xml=xml.decode("utf-8"),
            created_by_id=getattr(actor, "id", None),
        )
        db.session.add(batch)
        db.session.flush()
        paid_at = datetime.combine(when, time(12), tzinfo=PARIS)
        for debit in debits:
            invoice = debit.invoice
            db.session.add(
                DirectDebitItem(
                    batch_id=batch.id,
                    invoice_id=invoice.id,
                    mandate_id=debit.mandate.id,
                    sequence_type=debit.sequence_type,
                    amount_cents=debit.amount_cents,
                    end_to_end_id=debit.end_to_end_id,
                )
            )
            db.session.add(
                Payment(
                    invoice_id=invoice.id,
                    household_id=invoice.household_id,
                    method="direct_debit",
                    amount_cents=debit.amount_cents,
                    transaction_id=debit.end_to_end_id,
                    paid_at=paid_at,
                )
            )
            invoice.status = "debited"
            invoice.debit_on = when
        audit.record(
            "direct_debit.exported",
            actor=actor,
            target=f"direct_debit_batch:{batch.id}",
            details=f"month:{month:%Y-%m} collection:{when.isoformat()} "
            f"count:{len(debits)} total_cents:{total}",
        )
        result.batch_ids.append(batch.id)
        result.count += len(debits)
        result.total_cents += total
    db.session.flush()
    return result
