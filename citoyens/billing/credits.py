"""A household's credit balance: money in the family's favour, used on the next invoice
or refunded by staff (DOMAIN.md "Billing", "Paying"). Rows of `HouseholdCredit`; the
balance is their sum. Callers run these inside their own write transaction."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from citoyens.billing.models import HouseholdCredit
from citoyens.extensions import db


def credit_balance(household_id: int) -> int:
    """Cents in the household's favour (0 when none)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(HouseholdCredit.amount_cents), 0)).where(
            HouseholdCredit.household_id == household_id
        )
    )
    return int(total or 0)


def credit_balances(household_ids: Iterable[int]) -> dict[int, int]:
    """Balances of many households in one query; households without credit are absent."""
    ids = list(household_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        select(HouseholdCredit.household_id, func.sum(HouseholdCredit.amount_cents))
        .where(HouseholdCredit.household_id.in_(ids))
        .group_by(HouseholdCredit.household_id)
        .having(func.sum(HouseholdCredit.amount_cents) != 0)
    )
    return {household_id: int(total) for household_id, total in rows}


def add_credit(
    household_id: int,
    kind: str,
    amount_cents: int,
    *,
    invoice_id: int | None = None,
    payment_id: int | None = None,
    note: str | None = None,
    actor=None,
) -> HouseholdCredit:
    """Record a movement: positive for `overpayment`/`correction`, negative for
    `applied`/`refund` (the table's CHECK refuses the wrong sign)."""
    row = HouseholdCredit(
        household_id=household_id,
        kind=kind,
        amount_cents=amount_cents,
        invoice_id=invoice_id,
        payment_id=payment_id,
        note=note,
        created_by_id=getattr(actor, "id", None),
    )
    db.session.add(row)
    db.session.flush()
    return row
