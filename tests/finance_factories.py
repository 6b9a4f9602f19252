"""Factories for the finance office's tests (reminders, unpaid list, exports): payments made
directly, invoices changed directly, and the files read back."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import UTC, date, datetime

from citoyens.billing.models import Invoice, Payment
from citoyens.extensions import db
from citoyens.tabular import read_xlsx

_sequence = itertools.count(1)


def make_payment(
    app,
    invoice_id: int,
    cents: int,
    *,
    method: str = "card",
    paid_at: datetime | None = None,
    rejected: bool = False,
) -> int:
    """A payment of the invoice (its household's), received at `paid_at` (UTC)."""
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        payment = Payment(
            invoice_id=invoice_id,
            household_id=invoice.household_id,
            method=method,
            amount_cents=cents,
            transaction_id=f"TEST-PAY-{next(_sequence)}",
            paid_at=paid_at or datetime.now(UTC),
            rejected_at=datetime.now(UTC) if rejected else None,
            rejection_reason="AM04 Provision insuffisante" if rejected else None,
        )
        db.session.add(payment)
        db.session.commit()
        return payment.id


def change_invoice(app, invoice_id: int, **values) -> None:
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        for name, value in values.items():
            setattr(invoice, name, value)
        db.session.commit()


def make_credit_note(app, invoice_id: int, cents: int, *, issued_at: datetime) -> int:
    """A credit note of `cents` (given back) on the invoice, issued at `issued_at`."""
    from citoyens.billing.credit_notes import credit_note

    with app.test_request_context():
        invoice = db.session.get(Invoice, invoice_id)
        credit = credit_note(invoice, [("Journée non due", cents)], "Erreur de pointage", None)
        credit.issued_at = issued_at
        db.session.commit()
        return credit.id


def csv_rows(response) -> list[list[str]]:
    """A CSV download (UTF-8 with BOM, `;`) as rows, the header first."""
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))


def xlsx_sheets(response) -> dict[str, list[list]]:
    return read_xlsx(response.get_data())


def number_of(app, invoice_id: int) -> str:
    with app.app_context():
        return db.session.get(Invoice, invoice_id).number


def day(value: str) -> date:
    return date.fromisoformat(value)
