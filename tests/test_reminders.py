"""Reminders of invoices left to pay (issue 14): a polite e-mail before the due date to the
families paying themselves, a reminder after it while unpaid; never for a credit note, a
cancelled, paid or direct-debit invoice, nor when nothing is left; each sent once, whatever
the number of runs; the days as administrators set them; the staff invoice page lists them."""

from __future__ import annotations

import html
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from citoyens.billing import tasks as billing_tasks
from citoyens.billing.models import Invoice, InvoiceReminder
from citoyens.core.models import AuditEvent, Commune, MailMessage
from citoyens.extensions import db
from citoyens.households.models import Household
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import post
from tests.factories import make_user
from tests.finance_factories import make_credit_note, make_payment
from tests.test_admin_reservations import login
from tests.test_admin_settings import VALID

TODAY = date(2030, 11, 25)
MEALS = [("Repas du midi", 350, 4)]  # 14,00 €


@pytest.fixture(autouse=True)
def site_address(app, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://portail.example.org")


@pytest.fixture
def family(app):
    return make_user(app, role="parent")


def due(days: int) -> date:
    """The due date `days` after TODAY (negative: past)."""
    return TODAY + timedelta(days=days)


_months = itertools.count()


def invoice(app, household_id: int, days: int, **kwargs) -> int:
    """An invoice of 14,00 € due `days` after TODAY (one household has one per month: each
    gets a month of its own)."""
    n = next(_months)
    month = date(2010 + n // 12, n % 12 + 1, 1)
    return make_invoice(app, household_id, month=month, lines=MEALS, due_on=due(days), **kwargs)


def remind(runner, day: date = TODAY) -> str:
    result = runner.invoke(args=["invoices", "remind", "--date", day.isoformat()])
    assert result.exit_code == 0, result.output
    return result.output


def sent(app) -> set[tuple[int, str]]:
    with app.app_context():
        return set(db.session.execute(select(InvoiceReminder.invoice_id, InvoiceReminder.kind)))


def reminder_mails(app) -> list[MailMessage]:
    with app.app_context():
        mails = list(
            db.session.scalars(
                select(MailMessage)
                .where(MailMessage.kind.like("invoice-reminder-%"))
                .order_by(MailMessage.id)
            )
        )
        for mail in mails:
            db.session.expunge(mail)
        return mails


# --- Which invoices ----------------------------------------------------------------------------


def test_a_polite_reminder_before_the_due_date_only_to_families_paying_themselves(
    app, runner, family
):
    household = family.household_id
    soon = invoice(app, household, 3)
    edge = invoice(app, household, 5)  # exactly 5 days before: reminded
    later = invoice(app, household, 6)
    today = invoice(app, household, 0)  # due today: too late for "before", not yet "after"
    debit = invoice(
        app,
        household,
        3,
        status="direct_debit",
        mandate_id=make_mandate(app, household),
    )
    paid = invoice(app, household, 3, status="paid")
    settled = invoice(app, household, 3)  # still "issued", but paid in full
    make_payment(app, settled, 1400)
    partly = invoice(app, household, 3)  # 14,00 € - 4,00 € credited - 3,00 € paid
    credit = make_credit_note(app, partly, 400, issued_at=datetime(2030, 11, 20, tzinfo=UTC))
    make_payment(app, partly, 300)
    cancelled = invoice(app, household, 3)
    make_credit_note(app, cancelled, 1400, issued_at=datetime(2030, 11, 20, tzinfo=UTC))
    bounced = invoice(app, household, 3)  # its payment was rejected by the bank: still due
    make_payment(app, bounced, 1400, method="direct_debit", rejected=True)

    output = remind(runner)

    assert sent(app) == {
        (soon, "before"),
        (edge, "before"),
        (partly, "before"),
        (bounced, "before"),
    }
    assert "4 rappels avant l'échéance et 0 relance après l'échéance envoyés" in output
    for untouched in (later, today, debit, paid, settled, cancelled, credit):
        assert all(invoice_id != untouched for invoice_id, _kind in sent(app))
    mails = reminder_mails(app)
    assert len(mails) == 4 and {mail.recipient for mail in mails} == {family.email}
    with app.app_context():
        number = db.session.get(Invoice, partly).number
    (mail,) = [m for m in mails if number in m.subject]
    assert mail.subject == f"Rappel : votre facture {number} est à régler avant le 28/11/2030"
    assert mail.kind == "invoice-reminder-before"
    body = mail.body_text
    assert body.startswith("Bonjour,")
    assert "arrive à échéance le 28/11/2030" in body
    assert "Il reste 7,00\xa0€ à régler." in body
    assert "« Payer en ligne »" in body
    assert f"https://portail.example.org/factures/{partly}" in body
    assert f'href="https://portail.example.org/factures/{partly}"' in mail.body_html
    assert "Bien cordialement" in body
    with app.app_context():
        row = db.session.scalar(select(InvoiceReminder).where(InvoiceReminder.invoice_id == partly))
        assert (row.left_cents, row.recipients) == (700, 1)
        assert db.session.scalar(
            select(AuditEvent.id).where(
                AuditEvent.action == "invoice.reminder", AuditEvent.target == f"invoice:{partly}"
            )
        )


def test_a_reminder_after_the_due_date_while_the_invoice_is_unpaid(app, runner, family):
    household = family.household_id
    late = invoice(app, household, -10)  # 10 days late: reminded
    older = invoice(app, household, -45)
    recent = invoice(app, household, -9)
    debit = invoice(
        app, household, -30, status="direct_debit", mandate_id=make_mandate(app, household)
    )
    debited = invoice(app, household, -30, status="debited")
    paid_late = invoice(app, household, -20)
    make_payment(app, paid_late, 1000)  # 4,00 € still due: reminded
    cents_left = invoice(app, household, -20)
    make_payment(app, cents_left, 1350)  # 0,50 €: below the card's minimum, the counter only
    with app.app_context():
        nobody = Household()  # a family without an account: no address to write to
        db.session.add(nobody)
        db.session.commit()
        nobody_id = nobody.id
    orphan = invoice(app, nobody_id, -30)

    output = remind(runner)

    assert sent(app) == {
        (late, "after"),
        (older, "after"),
        (paid_late, "after"),
        (cents_left, "after"),
    }
    assert "0 rappel avant l'échéance et 4 relances après l'échéance envoyés" in output
    assert "Sans adresse e-mail (compte famille absent) : 1." in output
    assert all(i not in {recent, debit, debited, orphan} for i, _kind in sent(app))
    with app.app_context():
        number = db.session.get(Invoice, paid_late).number
    (mail,) = [m for m in reminder_mails(app) if number in m.subject]
    assert mail.subject == f"Relance : votre facture {number} reste à régler"
    assert "sa date d'échéance, le 05/11/2030, est passée" in mail.body_text
    assert "Il reste 4,00\xa0€ à régler" in mail.body_text
    assert "merci de ne pas tenir compte de ce message" in mail.body_text
    assert "« Payer en ligne »" in mail.body_text
    with app.app_context():
        number = db.session.get(Invoice, cents_left).number
    (mail,) = [m for m in reminder_mails(app) if number in m.subject]
    assert "Il reste 0,50\xa0€ à régler" in mail.body_text
    assert "Payer en ligne" not in mail.body_text
    assert "Vous pouvez la régler au guichet de la mairie." in mail.body_text


def test_each_reminder_is_sent_once_whatever_the_runs(app, runner, family, monkeypatch):
    household = family.household_id
    soon = invoice(app, household, 4)
    late = invoice(app, household, -12)
    remind(runner)
    again = remind(runner)
    assert "0 rappel avant l'échéance et 0 relance après l'échéance envoyés" in again
    # The morning job: the same work, nothing new either.
    monkeypatch.setattr("citoyens.billing.reminders.today_in_paris", lambda: TODAY)
    with app.app_context():
        billing_tasks.send_invoice_reminders.call_local()
    assert sent(app) == {(soon, "before"), (late, "after")}
    assert len(reminder_mails(app)) == 2
    # Days later the invoice due soon is overdue: its "after" reminder comes, once.
    remind(runner, TODAY + timedelta(days=14))
    remind(runner, TODAY + timedelta(days=15))
    assert sent(app) == {(soon, "before"), (soon, "after"), (late, "after")}
    assert len(reminder_mails(app)) == 3


def test_the_morning_job_is_scheduled_every_day(app):
    task = billing_tasks.send_invoice_reminders.task_class()
    assert task.validate_datetime(datetime(2030, 11, 25, 7, 30))
    assert not task.validate_datetime(datetime(2030, 11, 25, 8, 30))
    assert task.validate_datetime(datetime(2030, 11, 26, 7, 30))


def test_the_command_refuses_a_bad_date(runner):
    result = runner.invoke(args=["invoices", "remind", "--date", "2030-13-01"])
    assert result.exit_code != 0
    assert "Date invalide : « 2030-13-01 »" in result.output


# --- The days, as administrators set them -----------------------------------------------------


def test_the_days_are_set_by_administrators(app, runner, family, admin, staff):
    household = family.household_id
    soon = invoice(app, household, 3)
    three_late = invoice(app, household, -3)
    client = login(app, admin)
    page = html.unescape(client.get("/admin/reglages").get_data(as_text=True))
    assert "Rappels des factures" in page
    assert "Actuellement : 5 jours avant l'échéance." in page
    assert "Actuellement : 10 jours après l'échéance." in page
    data = {**VALID, "invoice_reminder_days_before": "0", "invoice_reminder_days_after": "3"}
    assert post(client, "/admin/reglages", data).status_code == 303
    with app.app_context():
        row = db.session.scalar(select(Commune))
        assert (row.invoice_reminder_days_before, row.invoice_reminder_days_after) == (0, 3)
    page = html.unescape(client.get("/admin/reglages").get_data(as_text=True))
    assert "Actuellement : aucun rappel." in page and "3 jours après l'échéance" in page
    remind(runner)
    assert sent(app) == {(three_late, "after")}
    assert all(invoice_id != soon for invoice_id, _kind in sent(app))
    # Both at 0: nothing is sent at all.
    data = {**VALID, "invoice_reminder_days_before": "0", "invoice_reminder_days_after": "0"}
    assert post(client, "/admin/reglages", data).status_code == 303
    assert "désactivés" in remind(runner, TODAY + timedelta(days=20))
    assert sent(app) == {(three_late, "after")}
    # Emptied: the server's values again (5 and 10).
    data = {**VALID, "invoice_reminder_days_before": "", "invoice_reminder_days_after": ""}
    assert post(client, "/admin/reglages", data).status_code == 303
    with app.app_context():
        row = db.session.scalar(select(Commune))
        assert row.invoice_reminder_days_before is None
    remind(runner)
    assert (soon, "before") in sent(app)
    # Agents do not set them.
    assert post(login(app, staff), "/admin/reglages", data).status_code == 403


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "entre 0 et 90"),
        ("91", "entre 0 et 90"),
        ("abc", "nombre de jours entier"),
        ("2,5", "nombre de jours entier"),
    ],
)
def test_bad_days_are_refused_in_french_and_nothing_is_saved(app, admin, value, message):
    client = login(app, admin)
    response = post(client, "/admin/reglages", {**VALID, "invoice_reminder_days_after": value})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Commune)) is None


# --- What staff see --------------------------------------------------------------------------


def test_the_staff_invoice_page_lists_the_reminders_sent(app, runner, family, admin):
    late = invoice(app, family.household_id, -15)
    client = login(app, admin)
    page = html.unescape(client.get(f"/admin/factures/{late}").get_data(as_text=True))
    assert "Rappels envoyés" in page and "Aucun rappel envoyé pour cette facture." in page
    remind(runner)
    page = html.unescape(client.get(f"/admin/factures/{late}").get_data(as_text=True))
    assert "Relance après l'échéance" in page and "14,00\xa0€" in page
    assert "1 adresse e-mail" in page
    assert "Aucun rappel envoyé" not in page
