"""Credits and the credit balance under concurrency (DOMAIN.md "Billing"): a day invoiced
then justified is credited once, even by two runs of different months at the same
instant; a refund and a run deducting the same balance never take more than there is.

Its own database, real commits, threads released together (see test_billing_concurrency).
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, update

from citoyens.billing.credits import add_credit, credit_balance
from citoyens.billing.models import BilledDay, HouseholdCredit, InvoiceLine
from citoyens.billing.refunds import RefundError, record_refund
from citoyens.documents.models import Document
from citoyens.extensions import db
from citoyens.transactions import write_transaction
from tests.conftest import own_database_fixtures
from tests.test_billing_concurrency import issuing, race
from tests.test_billing_rules import book, make_family, make_world

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("credits_race")
SEPTEMBER, OCTOBER, NOVEMBER = date(2030, 9, 1), date(2030, 10, 1), date(2030, 11, 1)


def test_a_justified_day_is_credited_once_by_concurrent_runs(app):
    world = make_world(app)
    households = []
    for _ in range(4):
        account, (child,) = make_family(app)
        h = account.household_id
        args = (app, h, child, world.meal_id, world.year_id)
        book(*args, date(2030, 9, 9), attendance="excused", certificate="pending")
        book(*args, date(2030, 10, 1))
        book(*args, date(2030, 11, 4))
        households.append(h)
    (september,) = race(app, [issuing(SEPTEMBER)])
    assert september.count == 4
    with app.app_context():
        db.session.execute(update(Document).values(status="accepted"))
        db.session.commit()
    results = race(app, [issuing(OCTOBER), issuing(NOVEMBER), issuing(OCTOBER)])
    assert sum(result.count for result in results) == 8
    with app.app_context():
        credit_lines = db.session.scalar(
            select(func.count()).select_from(InvoiceLine).where(InvoiceLine.kind == "credit")
        )
        assert credit_lines == 4  # one per household, on October's or November's invoice
        credited = db.session.scalars(
            select(BilledDay.credited_by_line_id).where(BilledDay.day == date(2030, 9, 9))
        ).all()
        assert len(credited) == 4 and None not in credited and len(set(credited)) == 4


def test_a_refund_and_a_run_never_take_more_than_the_balance(app):
    world = make_world(app)
    account, (child,) = make_family(app)
    h = account.household_id
    book(app, h, child, world.meal_id, world.year_id, date(2030, 9, 9))  # 3 €
    with app.app_context():
        add_credit(h, "overpayment", 500)
        db.session.commit()

    def refunding():
        write_transaction(lambda: record_refund(h, 500, "transfer", "", actor=None))
        return "refunded"

    def job_or_refusal(job):
        def wrapped():
            try:
                return job()
            except RefundError as error:
                return error

        return wrapped

    outcomes = race(app, [issuing(SEPTEMBER), job_or_refusal(refunding)])
    with app.app_context():
        balance = credit_balance(h)
        kinds = dict(
            db.session.execute(
                select(HouseholdCredit.kind, HouseholdCredit.amount_cents).where(
                    HouseholdCredit.household_id == h
                )
            ).all()
        )
    assert balance >= 0
    if outcomes[1] == "refunded":  # the refund went first: nothing left to deduct
        assert "applied" not in kinds and balance == 0
    else:  # the run deducted 3 € first: 5 € could no longer be refunded
        assert isinstance(outcomes[1], RefundError)
        assert kinds["applied"] == -300 and balance == 200
