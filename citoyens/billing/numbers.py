"""Invoice numbers: one counter row per year, incremented in the transaction that inserts
the invoice, inside a savepoint with it: a number is only ever kept together with its
invoice, so the numbering stays gapless even when two runs race. Counter receipts number
themselves the same way, from their own counter table."""

from __future__ import annotations

from sqlalchemy import insert, update

from citoyens.billing.models import (
    InvoiceCounter,
)
from citoyens.extensions import db


def format_number(year: int, sequence: int) -> str:
    """F2026-000042: the year of issue and six digits (credit notes share the series)."""
    return f"F{year}-{sequence:06d}"


def take_number(year: int, model=InvoiceCounter, count: int = 1) -> int:
    """The next number of `year`, taken in the current transaction (the counter row stays
    locked until it ends): the first of `count` consecutive numbers, all taken by one
    UPDATE (a batch of the invoice run). The year's row is created on first use, safely
    under races. `model`: the counter table of the series (invoices; counter receipts)."""
    counter = model.__table__
    bump = (
        update(counter)
        .where(counter.c.year == year)
        .values(last_number=counter.c.last_number + count)
        .returning(counter.c.last_number)
    )
    number = db.session.execute(bump).scalar_one_or_none()
    if number is None:
        db.session.execute(_insert_counter_if_missing(year, counter))
        number = db.session.execute(bump).scalar_one()
    return number - count + 1


def _insert_counter_if_missing(year: int, counter):
    dialect = db.session.get_bind().dialect.name
    values = {"year": year, "last_number": 0}
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - the project runs on SQLite and PostgreSQL
        return insert(counter).values(**values)
    return dialect_insert(counter).values(**values).on_conflict_do_nothing(index_elements=["year"])
