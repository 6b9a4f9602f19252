"""Factories for the counter's tests: a receipt recorded through the real rule
(`billing.counter.record_receipt`), committed in its own app context; ids returned."""

from __future__ import annotations

from datetime import date

from citoyens.billing import counter
from citoyens.extensions import db
from citoyens.forms import today_in_paris


def make_receipt(
    app,
    household_id: int,
    invoice_ids: list[int],
    amount_cents: int,
    *,
    method: str = "cheque",
    received_on: date | None = None,
    today: date | None = None,
) -> int:
    today = today or today_in_paris()
    with app.test_request_context():
        receipt = counter.record_receipt(
            household_id,
            method=method,
            amount_cents=amount_cents,
            received_on=received_on or today,
            invoice_ids=invoice_ids,
            reference="1234567" if method in ("cheque", "cesu", "ancv") else None,
            issuer="Banque Exemple" if method in ("cheque", "cesu", "ancv") else None,
            today=today,
        )
        db.session.commit()
        return receipt.id
