"""Invoice numbers under concurrency (SECURITY.md "Invoice numbers stay gapless under
concurrent runs"): several runs of the same month, runs of different months and credit
notes at the same instant.

Each test has its own database (a SQLite file, or on PostgreSQL a database created and
dropped here through TEST_DATABASE_URL), real commits, and threads released together by
a Barrier, each in its own app context, each going through `issue_month` (which commits
through `write_transaction`) as the view and the command do. The session `app` fixture
is overridden so nothing here touches the shared test database.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import date

import pytest
from sqlalchemy import select

from citoyens.billing.credit_notes import credit_note
from citoyens.billing.invoice_run import issue_month
from citoyens.billing.models import Invoice, InvoiceCounter
from citoyens.billing.months import BillingError
from citoyens.extensions import db
from citoyens.transactions import write_transaction
from tests.conftest import own_database_fixtures, scratch_database_name
from tests.test_billing_rules import book, make_family, make_world

pytestmark = pytest.mark.own_database

RACE_DATABASE = "billing_race"
# Every run below happens on this day: September to November 2030 are over.
TODAY = date(2030, 12, 5)
SEPTEMBER, OCTOBER, NOVEMBER = date(2030, 9, 1), date(2030, 10, 1), date(2030, 11, 1)


race_app, app = own_database_fixtures(RACE_DATABASE)


def test_this_module_runs_on_its_own_database(race_app):
    assert race_app.config["SQLALCHEMY_DATABASE_URI"].endswith(
        (f"/{scratch_database_name(RACE_DATABASE)}", f"/{RACE_DATABASE}.sqlite3")
    )


# --- Helpers ----------------------------------------------------------------------------------


def households(app, count: int, months=(SEPTEMBER,)) -> list[int]:
    """`count` households, each with a booked day in every month given."""
    world = make_world(app)
    ids = []
    for index in range(count):
        account, (child,) = make_family(app, paperless=index % 3 != 0)
        for month in months:
            day = month.replace(day=2 + index % 20)
            book(app, account.household_id, child, world.meal_id, world.year_id, day)
        ids.append(account.household_id)
    return ids


def race(app, jobs: list[Callable[[], object]]) -> list[object]:
    """Run each job in its own thread, all released at once; what each returned (or the
    BillingError it raised), in the jobs' order. Any other exception fails the test."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[object] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int, job) -> None:
        with app.app_context():
            try:
                barrier.wait(timeout=60)
                outcomes[index] = job()
            except BillingError as error:
                outcomes[index] = error
            except BaseException as error:  # reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    assert not errors, errors
    return outcomes


def issuing(month: date):
    return lambda: issue_month(month, today=TODAY)


def crediting(invoice_id: int, cents: int):
    def job():
        def work():
            invoice = db.session.get(Invoice, invoice_id)
            return credit_note(invoice, [("Correction", cents)], "Correction", None, today=TODAY)

        return write_transaction(work).number

    return job


def stored(app) -> list[tuple[int, int, str, str, int, date]]:
    """(year, sequence, number, kind, household, month) of every invoice, in number order."""
    with app.app_context():
        return [
            tuple(row)
            for row in db.session.execute(
                select(
                    Invoice.year,
                    Invoice.sequence,
                    Invoice.number,
                    Invoice.kind,
                    Invoice.household_id,
                    Invoice.month,
                ).order_by(Invoice.year, Invoice.sequence)
            )
        ]


def assert_gapless(app, year: int = 2030) -> list[tuple]:
    rows = stored(app)
    sequences = [sequence for row_year, sequence, *_ in rows if row_year == year]
    assert sequences == list(range(1, len(sequences) + 1))
    assert [number for _y, _s, number, *_ in rows] == [
        f"F{year}-{sequence:06d}" for sequence in sequences
    ]
    with app.app_context():
        assert db.session.get(InvoiceCounter, year).last_number == len(sequences)
    invoices = Counter(
        (household, month) for *_x, kind, household, month in rows if kind == "invoice"
    )
    assert not [key for key, count in invoices.items() if count > 1]
    return rows


# --- Races ------------------------------------------------------------------------------------


def test_concurrent_runs_of_the_same_month_issue_each_invoice_once(app):
    ids = households(app, 10)
    results = race(app, [issuing(SEPTEMBER) for _ in range(6)])
    assert sum(result.count for result in results) == 10
    assert all(result.count + result.already_invoiced == 10 for result in results)
    rows = assert_gapless(app)
    assert sorted(household for *_x, household, _month in rows) == sorted(ids)
    # Each paperless invoice was mailed once, by the run that issued it.
    assert sum(result.emailed for result in results) == sum(
        1 for result in results for invoice in result.paperless
    )


def test_concurrent_runs_of_different_months_share_one_gapless_series(app):
    ids = households(app, 8, months=(SEPTEMBER, OCTOBER, NOVEMBER))
    jobs = [issuing(month) for month in (SEPTEMBER, OCTOBER, NOVEMBER) for _ in range(3)]
    results = race(app, jobs)
    assert sum(result.count for result in results) == 24
    rows = assert_gapless(app)
    assert Counter(month for *_x, month in rows) == {SEPTEMBER: 8, OCTOBER: 8, NOVEMBER: 8}
    assert {household for *_x, household, _month in rows} == set(ids)


def test_credit_notes_and_runs_at_once_keep_the_series_gapless(app):
    """Credit notes on September's invoices while October and November are issued: one
    counter, no gap, no duplicate; two credit notes for the whole of one invoice give one."""
    households(app, 6, months=(SEPTEMBER, OCTOBER, NOVEMBER))
    (september,) = race(app, [issuing(SEPTEMBER)])
    assert september.count == 6
    first, *others = [invoice.id for invoice in september.issued]
    whole = september.issued[0].total_cents
    jobs = [issuing(OCTOBER), issuing(OCTOBER), issuing(NOVEMBER)]
    jobs += [crediting(first, whole), crediting(first, whole)]
    jobs += [crediting(invoice_id, 100) for invoice_id in others]
    outcomes = race(app, jobs)
    refused = [outcome for outcome in outcomes[3:5] if isinstance(outcome, BillingError)]
    assert len(refused) == 1  # the second full credit found the invoice cancelled
    assert all(isinstance(outcome, str) for outcome in outcomes[5:])
    rows = assert_gapless(app)
    assert Counter(kind for _y, _s, _n, kind, *_x in rows) == {"invoice": 18, "credit": 6}
    with app.app_context():
        assert db.session.get(Invoice, first).status == "cancelled"
