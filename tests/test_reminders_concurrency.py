"""Reminders under concurrency: several workers run the morning job at the same instant (a
cron and a manual command, two consumers): each reminder is recorded and e-mailed once.

A database of its own (a SQLite file, or a PostgreSQL database created and dropped here
through TEST_DATABASE_URL), real commits, threads released together by a Barrier."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from citoyens.billing.models import InvoiceReminder
from citoyens.billing.reminders import send_due_reminders
from citoyens.core.models import MailMessage
from citoyens.extensions import db
from tests.billing_factories import make_invoice
from tests.conftest import own_database_fixtures
from tests.factories import make_user

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("reminders_race")
TODAY = date(2030, 11, 25)
THREADS = 4


def test_this_module_runs_on_its_own_database(race_app):
    assert race_app.config["SQLALCHEMY_DATABASE_URI"].endswith(
        ("reminders_race", "/reminders_race.sqlite3")
    )


def race(app, runs: int) -> list[tuple[int, int]]:
    """`runs` reminder runs at once, each in its own thread and app context:
    (reminders sent, found already sent) per run."""
    barrier = threading.Barrier(runs)
    outcomes: list[tuple[int, int] | None] = [None] * runs
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            with app.app_context():
                barrier.wait(timeout=60)
                result = send_due_reminders(TODAY)
                outcomes[index] = (result.count, result.already)
                db.session.remove()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    assert not errors, errors
    return outcomes


def test_workers_at_once_send_each_reminder_once(race_app):
    app = race_app
    invoices = []
    for _family in range(3):
        account = make_user(app, role="parent")
        for n, days in enumerate((2, 4, -10, -30)):
            invoices.append(
                make_invoice(
                    app,
                    account.household_id,
                    month=date(2030, n + 1, 1),
                    due_on=TODAY + timedelta(days=days),
                )
            )

    outcomes = race(app, THREADS)

    assert sum(sent for sent, _already in outcomes) == len(invoices)
    with app.app_context():
        rows = db.session.execute(select(InvoiceReminder.invoice_id, InvoiceReminder.kind)).all()
        assert sorted(invoice_id for invoice_id, _kind in rows) == sorted(invoices)
        assert {kind for _id, kind in rows} == {"before", "after"}
        mails = db.session.scalar(
            select(func.count(MailMessage.id)).where(MailMessage.kind.like("invoice-reminder-%"))
        )
        assert mails == len(invoices)  # one account per family: one e-mail per reminder
    # And once more, all together: nothing new.
    assert sum(sent for sent, _already in race(app, THREADS)) == 0
    with app.app_context():
        assert db.session.scalar(select(func.count(InvoiceReminder.id))) == len(invoices)
