"""The month's invoice counts kept by the database (issue 15, `billing.month_totals`):
whatever writes the invoices (the ORM, the batched run, a bulk UPDATE, a delete), the
kept counts are those counted from the invoices."""

from __future__ import annotations

from collections import Counter
from datetime import date

from sqlalchemy import delete, func, select, update

from citoyens.billing import invoice_list
from citoyens.billing.models import Invoice
from citoyens.billing.month_totals import InvoiceMonthTotal
from citoyens.demo import seed
from citoyens.extensions import db


def kept_everywhere() -> Counter:
    # Never below zero: a count taken twice or lost would show here first.
    assert (db.session.scalar(select(func.min(InvoiceMonthTotal.invoices))) or 0) >= 0
    months = db.session.scalars(select(InvoiceMonthTotal.month).distinct()).all()
    return Counter(
        {
            (month, *row[:4]): (row[4], row[5])
            for month in months
            for row in invoice_list.kept_rows(month)
        }
    )


def counted_everywhere() -> Counter:
    months = db.session.scalars(select(Invoice.month).distinct()).all()
    return Counter(
        {
            (month, *row[:4]): (row[4], row[5])
            for month in months
            for row in invoice_list.counted_rows(month)
        }
    )


def test_the_kept_counts_are_the_counted_ones_whatever_writes_the_invoices(app):
    with app.test_request_context():
        seed()  # invoice runs, card payments, a direct debit, credit notes
        db.session.commit()
        counted = counted_everywhere()
        assert len(counted) >= 3 and kept_everywhere() == counted

        # A bulk UPDATE (many rows, several keys), then one through the ORM.
        first = db.session.scalars(select(Invoice).order_by(Invoice.id)).first()
        db.session.execute(update(Invoice).where(Invoice.kind == "invoice").values(status="paid"))
        first.total_cents += 250
        first.due_on = date(2031, 1, 5)
        db.session.flush()
        assert kept_everywhere() == counted_everywhere()

        # An update that changes no key leaves them alone; an insert and a delete count.
        db.session.execute(update(Invoice).values(mailed_at=None))
        extra = Invoice(
            household_id=first.household_id,
            year=2031,
            sequence=999_999,
            number="F2031-999999",
            month=date(2031, 2, 1),
            due_on=date(2031, 3, 15),
            total_cents=-1234,
            addressee="Famille test",
        )
        db.session.add(extra)
        db.session.flush()
        assert kept_everywhere()[
            (date(2031, 2, 1), "invoice", "issued", date(2031, 3, 15), True)
        ] == (
            1,
            1234,
        )
        db.session.execute(delete(Invoice).where(Invoice.id == extra.id))
        db.session.commit()
        assert kept_everywhere() == counted_everywhere()


def test_the_summary_for_administrators_reads_the_kept_counts(app, admin):
    from citoyens.accounts.models import User
    from citoyens.billing import rules

    with app.test_request_context():
        seed()
        db.session.commit()
        admin = db.session.get(User, admin.id)
        today = rules.today()
        for month in db.session.scalars(select(Invoice.month).distinct()):
            read = invoice_list.month_summary(month, today, user=admin)
            counted = invoice_list.month_summary(month, today)
            assert read == counted
            assert sorted(invoice_list.kept_rows(month)) == sorted(invoice_list.counted_rows(month))


def test_create_all_again_on_a_database_that_has_the_triggers(app):
    """`create_all` on a database that has the table and its triggers (the bench scripts
    run it on a database generated before) leaves them as they are, working."""
    with app.test_request_context():
        db.metadata.create_all(bind=db.session.connection())
        seed()
        db.session.commit()
        assert kept_everywhere() == counted_everywhere() != Counter()
