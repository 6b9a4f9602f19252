"""Payment notifications under concurrency: the bank notifies several times at once, the
parent comes back at the same instant. One payment, one receipt, whatever the interleaving
(SECURITY.md "Data under load and faults").

Each test has its own database (a SQLite file, or on PostgreSQL a database created and
dropped here through TEST_DATABASE_URL), real commits, and threads released together by a
Barrier, each through the application's HTTP stack. The session `app` fixture is overridden
so nothing here touches the shared test database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from citoyens.billing import bank_sim, payment_start
from citoyens.billing.models import Invoice, Payment, PaymentAttempt
from citoyens.core.models import MailMessage
from citoyens.extensions import db
from tests.billing_factories import make_invoice
from tests.conftest import csrf_token, own_database_fixtures, post
from tests.factories import make_user

pytestmark = pytest.mark.own_database

RACE_DATABASE = "payments_race"
THREADS = 8


race_app, app = own_database_fixtures(RACE_DATABASE)


def test_this_module_runs_on_its_own_database(race_app):
    assert race_app.config["SQLALCHEMY_DATABASE_URI"].endswith(
        ("payments_race", "/payments_race.sqlite3")
    )


# --- Helpers ----------------------------------------------------------------------------------


def paid_at_the_bank(app) -> tuple[int, str]:
    """An invoice, an attempt opened at the simulated bank and paid there, nobody told yet:
    (invoice id, bank id)."""
    account = make_user(app, role="parent")
    invoice_id = make_invoice(app, account.household_id)
    with app.test_request_context():
        from citoyens.accounts.models import User

        user = db.session.get(User, account.id)
        url = payment_start.start_payment(
            invoice_id,
            account.household_id,
            user,
            return_url_for=lambda attempt_id: f"http://localhost/paiement/retour?a={attempt_id}",
            notification_url="http://localhost/paiement/notification",
        )
        db.session.remove()
    bank_id = url.rsplit("/", 1)[1]
    bank_sim.settle(bank_id, "paid")
    return invoice_id, bank_id


def race(jobs: list[Callable[[], int]]) -> list[int]:
    """Run each job in its own thread, all released at once; their HTTP statuses."""
    barrier = threading.Barrier(len(jobs))
    statuses: list[int | None] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int, job) -> None:
        try:
            barrier.wait(timeout=60)
            statuses[index] = job()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    assert not errors, errors
    return statuses


def notification(app, bank_id: str) -> Callable[[], int]:
    def job() -> int:
        client = app.test_client()
        return client.post("/paiement/notification", data={"idOp": bank_id}).status_code

    return job


def parent_return(app, bank_id: str) -> Callable[[], int]:
    def job() -> int:
        return app.test_client().get(f"/paiement/retour?idop={bank_id}").status_code

    return job


def outcome(app, invoice_id: int) -> tuple[list[tuple[int, str]], str, list[str], int]:
    """(payments, invoice status, attempt statuses, receipts recorded)."""
    with app.app_context():
        paid = db.session.execute(
            select(Payment.amount_cents, Payment.transaction_id).where(
                Payment.invoice_id == invoice_id
            )
        ).all()
        status = db.session.get(Invoice, invoice_id).status
        attempts = list(
            db.session.scalars(
                select(PaymentAttempt.status).where(PaymentAttempt.invoice_id == invoice_id)
            )
        )
        mails = db.session.scalar(
            select(func.count())
            .select_from(MailMessage)
            .where(MailMessage.kind == "payment-receipt")
        )
    return [tuple(row) for row in paid], status, attempts, mails


# --- Races ------------------------------------------------------------------------------------


def test_concurrent_notifications_record_one_payment_and_one_receipt(app):
    invoice_id, bank_id = paid_at_the_bank(app)

    statuses = race([notification(app, bank_id) for _ in range(THREADS)])

    assert statuses == [200] * THREADS
    assert outcome(app, invoice_id) == ([(1400, bank_id)], "paid", ["paid"], 1)


def test_notifications_and_the_parents_return_at_once_record_one_payment(app):
    invoice_id, bank_id = paid_at_the_bank(app)
    jobs = [notification(app, bank_id) for _ in range(THREADS // 2)]
    jobs += [parent_return(app, bank_id) for _ in range(THREADS // 2)]

    statuses = race(jobs)

    assert statuses == [200] * THREADS  # the return, without a session, shows a page
    assert outcome(app, invoice_id) == ([(1400, bank_id)], "paid", ["paid"], 1)


def test_a_notification_repeated_after_the_race_changes_nothing(app):
    invoice_id, bank_id = paid_at_the_bank(app)
    race([notification(app, bank_id) for _ in range(THREADS)])
    before = outcome(app, invoice_id)

    assert notification(app, bank_id)() == 200

    assert outcome(app, invoice_id) == before


def test_ten_concurrent_pay_presses_open_one_attempt_and_all_go_to_it(app):
    """« Payer » tapped ten times at once: one attempt, every answer a redirect to its bank
    page (or a clear message), never a 500; the database forbids a second pending attempt."""
    account = make_user(app, role="parent")
    invoice_id = make_invoice(app, account.household_id)
    login = app.test_client()
    post(login, "/connexion", {"email": account.email, "password": account.password})
    token = csrf_token(login)  # stored in the session: the cookie after it carries it
    cookie = login.get_cookie("session")
    answers: list[tuple[int, str]] = [(0, "")] * 10

    def press(index: int) -> Callable[[], int]:
        def job() -> int:
            tab = app.test_client()
            tab.set_cookie(cookie.key, cookie.value)
            response = tab.post(f"/factures/{invoice_id}/payer", data={"csrf_token": token})
            answers[index] = (response.status_code, response.headers.get("Location", ""))
            return response.status_code

        return job

    statuses = race([press(index) for index in range(10)])

    assert statuses == [303] * 10
    with app.app_context():
        attempts = db.session.execute(
            select(PaymentAttempt.status, PaymentAttempt.bank_url).where(
                PaymentAttempt.invoice_id == invoice_id
            )
        ).all()
    assert len(attempts) == 1 and attempts[0].status == "pending"
    bank_page = attempts[0].bank_url
    assert bank_page.startswith("/banque-simulee/paiement/")
    assert {location for _status, location in answers} == {bank_page}
