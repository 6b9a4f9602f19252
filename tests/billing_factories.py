"""Factories for the billing tests: QF bands and prices, invoices made directly.

Each commits in its own app context and returns ids. Invoices made here take numbers
of their own ("T<year>-<n>"), so tests of other parts do not depend on the invoice run.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from citoyens.billing.models import Invoice, InvoiceLine, Mandate, Price, QfBand
from citoyens.extensions import db
from citoyens.households.models import Household

_sequence = itertools.count(1)

# (label, qf_max, unit price in cents) — five bands, the top one without limit.
BANDS = [
    ("Tranche 1 (QF ≤ 500 €)", 500, 100),
    ("Tranche 2 (QF 501 à 800 €)", 800, 200),
    ("Tranche 3 (QF 801 à 1 100 €)", 1100, 300),
    ("Tranche 4 (QF 1 101 à 1 500 €)", 1500, 400),
    ("Tranche 5 (QF > 1 500 € ou inconnu)", None, 500),
]


def make_bands(app, year_id: int, bands=BANDS) -> list[int]:
    with app.app_context():
        ids = []
        for position, (label, qf_max, _price) in enumerate(bands, start=1):
            band = QfBand(school_year_id=year_id, position=position, label=label, qf_max=qf_max)
            db.session.add(band)
            db.session.flush()
            ids.append(band.id)
        db.session.commit()
        return ids


def make_prices(app, activity_id: int, band_ids: list[int], factor: int = 1) -> None:
    """Prices of BANDS (times `factor`) for an activity."""
    with app.app_context():
        for band_id, (_label, _qf, cents) in zip(band_ids, BANDS, strict=True):
            db.session.add(
                Price(activity_id=activity_id, band_id=band_id, amount_cents=cents * factor)
            )
        db.session.commit()


def make_invoice(
    app,
    household_id: int,
    *,
    month: date = date(2030, 9, 1),
    lines: list[tuple[str, int, int]] | None = None,
    status: str = "issued",
    paperless: bool = True,
    due_on: date | None = None,
    mandate_id: int | None = None,
) -> int:
    """An issued invoice: lines are (label, unit price cents, quantity)."""
    lines = lines or [("Repas du midi", 350, 4)]
    n = next(_sequence)
    with app.app_context():
        household = db.session.get(Household, household_id)
        invoice = Invoice(
            household_id=household_id,
            kind="invoice",
            year=month.year,
            sequence=100_000 + n,
            number=f"T{month.year}-{n:06d}",
            month=month,
            due_on=due_on or (month + timedelta(days=60)),
            total_cents=sum(unit * quantity for _label, unit, quantity in lines),
            status=status,
            paperless=paperless,
            addressee=f"Famille {household.id}",
            address=None,
            mandate_id=mandate_id,
        )
        for label, unit, quantity in lines:
            invoice.lines.append(
                InvoiceLine(
                    kind="booked",
                    child_name="Léa",
                    label=label,
                    unit_price_cents=unit,
                    quantity=quantity,
                    amount_cents=unit * quantity,
                    days=",".join((month + timedelta(days=i)).isoformat() for i in range(quantity)),
                )
            )
        db.session.add(invoice)
        db.session.commit()
        return invoice.id


def make_mandate(app, household_id: int, *, first_month: date = date(2030, 9, 1)) -> int:
    n = next(_sequence)
    with app.app_context():
        mandate = Mandate(
            household_id=household_id,
            rum=f"TEST-{household_id}-{n}",
            holder_name="Camille Martin",
            iban="FR7630006000011234567890189",
            bic="AGRIFRPP",
            first_month=first_month,
        )
        db.session.add(mandate)
        db.session.commit()
        return mandate.id
