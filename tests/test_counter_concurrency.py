"""Money at the counter under concurrency: agents recording against the same invoice at
once never allocate more than it owes; receipt numbers stay gapless; a reversal clicked
twice at once happens once.

Each test has its own database (a SQLite file, or on PostgreSQL a database created and
dropped here through TEST_DATABASE_URL), real commits, and threads released together by a
Barrier, each through the application's HTTP stack with its own logged-in client.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from citoyens.billing import rules
from citoyens.billing.counter_models import CounterReceipt
from citoyens.billing.credits import credit_balance
from citoyens.billing.models import HouseholdCredit, Invoice, Payment
from citoyens.extensions import db
from tests.billing_factories import make_invoice
from tests.conftest import csrf_token, own_database_fixtures
from tests.counter_factories import make_receipt
from tests.factories import make_user
from tests.test_access import login_client
from tests.test_payments_concurrency import race

pytestmark = pytest.mark.own_database

THREADS = 8
TODAY = date(2030, 11, 20)

race_app, app = own_database_fixtures("counter_race")


@pytest.fixture(autouse=True)
def frozen_today(monkeypatch):
    monkeypatch.setattr(rules, "today", lambda: TODAY)


def test_this_module_runs_on_its_own_database(race_app):
    assert race_app.config["SQLALCHEMY_DATABASE_URI"].endswith(
        ("counter_race", "/counter_race.sqlite3")
    )


def recording(app, household_id: int, invoice_id: int, amount: str):
    """A job: an administrator (own session) records a cash payment for the invoice."""
    client = login_client(app, make_user(app, role="admin"))
    token = csrf_token(client)
    path = f"/admin/factures/familles/{household_id}/encaissement"
    data = {
        "csrf_token": token,
        "method": "cash",
        "amount": amount,
        "received_on": TODAY.isoformat(),
        "invoices": [str(invoice_id)],
    }
    return lambda: client.post(path, data=data).status_code


def money(app, invoice_id: int) -> tuple[str, list[int], int]:
    """(invoice status, payments that count, household credit balance)."""
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        paid = list(
            db.session.scalars(
                select(Payment.amount_cents).where(Payment.invoice_id == invoice_id, Payment.counts)
            )
        )
        return invoice.status, sorted(paid), credit_balance(invoice.household_id)


def test_agents_paying_the_same_invoice_at_once_never_pay_it_twice(app):
    family = make_user(app, role="parent")
    invoice_id = make_invoice(app, family.household_id)  # 14,00 €
    jobs = [recording(app, family.household_id, invoice_id, "14,00") for _ in range(THREADS)]

    statuses = race(jobs)

    assert sorted(statuses) == [303] + [422] * (THREADS - 1)
    assert money(app, invoice_id) == ("paid", [1400], 0)
    with app.app_context():
        assert db.session.scalar(select(func.count(CounterReceipt.id))) == 1


def test_partial_payments_at_once_add_up_to_the_invoice_and_no_more(app):
    """Eight agents take 3,00 € each for a 14,00 € invoice: four pay 3,00 €, the fifth
    pays the last 2,00 € and leaves 1,00 € to the family's credit, the others are told
    the invoice is paid."""
    family = make_user(app, role="parent")
    invoice_id = make_invoice(app, family.household_id)
    jobs = [recording(app, family.household_id, invoice_id, "3,00") for _ in range(THREADS)]

    statuses = race(jobs)

    assert sorted(statuses) == [303] * 5 + [422] * 3
    assert money(app, invoice_id) == ("paid", [200, 300, 300, 300, 300], 100)
    with app.app_context():
        credits = db.session.scalars(select(HouseholdCredit.amount_cents)).all()
    assert credits == [100]


def test_receipt_numbers_stay_gapless_when_recorded_at_once(app):
    jobs = []
    for _ in range(THREADS):
        family = make_user(app, role="parent")
        invoice_id = make_invoice(app, family.household_id)
        jobs.append(recording(app, family.household_id, invoice_id, "5"))

    assert race(jobs) == [303] * THREADS

    with app.app_context():
        numbers = db.session.scalars(
            select(CounterReceipt.number).order_by(CounterReceipt.sequence)
        ).all()
    assert numbers == [f"R2030-{n:06d}" for n in range(1, THREADS + 1)]


def test_a_reversal_clicked_twice_at_once_happens_once(app):
    family = make_user(app, role="parent")
    first = make_invoice(app, family.household_id)
    second = make_invoice(app, family.household_id, month=date(2030, 10, 1))
    receipt_id = make_receipt(app, family.household_id, [first, second], 3000, today=TODAY)
    assert money(app, first)[2] == 200  # 28,00 € due, 30,00 € received

    def reversal():
        client = login_client(app, make_user(app, role="admin"))
        data = {"csrf_token": csrf_token(client), "reason": "Chèque rejeté"}
        path = f"/admin/factures/encaissements/{receipt_id}/annuler"
        return lambda: client.post(path, data=data).status_code

    statuses = race([reversal() for _ in range(THREADS)])

    assert sorted(statuses) == [303] + [409] * (THREADS - 1)
    assert money(app, first) == ("issued", [], 0)
    assert money(app, second) == ("issued", [], 0)
    with app.app_context():
        movements = db.session.scalars(
            select(HouseholdCredit.amount_cents).order_by(HouseholdCredit.id)
        ).all()
    assert movements == [200, -200]


def test_recording_and_reversing_at_once_leave_the_invoice_consistent(app):
    """A reversal of an old receipt and new payments for the same invoice, all at once:
    whatever the order, what counts never exceeds the invoice and its status says so."""
    family = make_user(app, role="parent")
    invoice_id = make_invoice(app, family.household_id)
    receipt_id = make_receipt(app, family.household_id, [invoice_id], 1000, today=TODAY)

    def reversal():
        client = login_client(app, make_user(app, role="admin"))
        data = {"csrf_token": csrf_token(client), "reason": "Erreur de saisie"}
        path = f"/admin/factures/encaissements/{receipt_id}/annuler"
        return lambda: client.post(path, data=data).status_code

    jobs = [reversal()] + [
        recording(app, family.household_id, invoice_id, "4,00") for _ in range(THREADS - 1)
    ]
    statuses = race(jobs)

    assert statuses[0] == 303
    status, paid, credit = money(app, invoice_id)
    assert sum(paid) <= 1400
    assert status == ("paid" if sum(paid) == 1400 else "issued")
    with app.app_context():
        credited = db.session.scalar(
            select(func.coalesce(func.sum(CounterReceipt.credit_cents), 0))
        )
    assert credit == credited  # the reversed receipt had none
