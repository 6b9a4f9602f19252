"""The demo shows every part of the product at once (issue 11): a newcomer who runs
`make run` sees a bill to pay, a document to review, a Goulidons child and a family
under direct debit without running a command."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from citoyens.billing.models import Invoice, Mandate
from citoyens.demo import PARENT, seed
from citoyens.demo_history import DEBIT_FAMILY, DEBIT_REF, first_of_previous_month
from citoyens.documents.models import Document
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households.models import Household
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity, Service


def _household(ref: str) -> Household:
    return db.session.scalar(select(Household).where(Household.external_ref == ref))


def test_demo_has_last_month_an_invoice_to_pay_and_a_direct_debit_family(app, client, auth):
    with app.test_request_context():
        seed()
        db.session.commit()
        month = first_of_previous_month(today_in_paris())
        family = _household("DEMO-0001")
        debit = _household(DEBIT_REF)

        # Last month's bookings with the attendance staff took.
        attendance = dict(
            db.session.execute(
                select(Booking.attendance, func.count())
                .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
                .where(Booking.household_id == family.id, ActivityDay.day >= month)
                .where(ActivityDay.day < today_in_paris().replace(day=1))
                .group_by(Booking.attendance)
            ).all()
        )
        assert attendance.get("present", 0) > 10
        assert attendance.get("absent") == 1

        invoice = db.session.scalar(
            select(Invoice).where(Invoice.household_id == family.id, Invoice.month == month)
        )
        assert invoice is not None and invoice.status == "issued" and invoice.total_cents > 0
        debit_invoice = db.session.scalar(
            select(Invoice).where(Invoice.household_id == debit.id, Invoice.month == month)
        )
        assert debit_invoice.status == "direct_debit" and debit_invoice.debit_on > date.today()
        assert db.session.scalar(
            select(Mandate.id).where(Mandate.household_id == debit.id, Mandate.revoked_at.is_(None))
        )

        # Léa at the Goulidons, both activities; a document waiting for review.
        names = set(
            db.session.scalars(
                select(Activity.name)
                .join(EnrolmentActivity, EnrolmentActivity.activity_id == Activity.id)
                .join(Enrolment, Enrolment.id == EnrolmentActivity.enrolment_id)
                .join(Service, Service.id == Enrolment.service_id)
                .where(Enrolment.household_id == family.id, Service.code == "goulidons")
                .where(Enrolment.status == "accepted")
            )
        )
        assert {"Mercredi journée", "Vacances journée"} <= names
        assert db.session.scalar(
            select(Document.id).where(
                Document.household_id == family.id, Document.status == "pending"
            )
        )
        invoice_id = invoice.id

        # Seeding again adds nothing.
        assert seed() == 0

    auth.login(email=PARENT[0], password=PARENT[1])
    page = client.get("/factures").get_data(as_text=True)
    assert "À payer" in page and invoice.number in page
    assert client.get(f"/factures/{invoice_id}").status_code == 200
    auth.logout()
    auth.login(email=DEBIT_FAMILY[0], password=DEBIT_FAMILY[1])
    assert "Prélèvement prévu" in client.get("/factures").get_data(as_text=True)


def test_demo_has_a_cheque_over_two_invoices_and_its_receipt(app, client, auth):
    from citoyens.billing.counter_models import CounterReceipt
    from citoyens.demo_counter import CHEQUE_NUMBER, COUNTER_FAMILY, COUNTER_REF

    with app.test_request_context():
        seed()
        db.session.commit()
        household = _household(COUNTER_REF)
        receipt = db.session.scalar(
            select(CounterReceipt).where(CounterReceipt.household_id == household.id)
        )
        assert receipt is not None and receipt.method == "cheque"
        assert receipt.reference == CHEQUE_NUMBER and receipt.reversed_at is None
        paid = {payment.invoice_id for payment in receipt.payments}
        statuses = db.session.scalars(select(Invoice.status).where(Invoice.id.in_(paid))).all()
        assert len(paid) == 2 and set(statuses) == {"paid"}
        assert receipt.credit_cents == 0
        receipt_id, number = receipt.id, receipt.number
        assert seed() == 0

    auth.login(email=COUNTER_FAMILY[0], password=COUNTER_FAMILY[1])
    page = client.get("/factures").get_data(as_text=True)
    assert f"Chèque n° {CHEQUE_NUMBER}" in page and number in page
    assert client.get(f"/factures/recus/{receipt_id}.pdf").status_code == 200


def test_demo_has_an_overdue_invoice_reminded_and_accounting_codes(app, client, auth):
    """The finance office's pages show something at once: an unpaid invoice past its due
    date, its reminder sent, and the activities' accounting codes in the export."""
    from citoyens.billing.models import InvoiceReminder
    from citoyens.demo import ADMIN

    with app.test_request_context():
        seed()
        db.session.commit()
        today = today_in_paris()
        family = _household("DEMO-0001")
        overdue = db.session.scalar(
            select(Invoice).where(
                Invoice.household_id == family.id,
                Invoice.status == "issued",
                Invoice.due_on < today,
            )
        )
        assert overdue is not None and overdue.total_cents > 0
        assert (
            db.session.scalar(
                select(InvoiceReminder.kind).where(InvoiceReminder.invoice_id == overdue.id)
            )
            == "after"
        )
        codes = set(db.session.scalars(select(Activity.accounting_code)))
        assert {"7067-APS", "7067-REST", "70632-ALSH"} <= codes
        number, month = overdue.number, overdue.month
        assert seed() == 0

    auth.login(email=ADMIN[0], password=ADMIN[1])
    unpaid = client.get("/admin/factures/impayes").get_data(as_text=True)
    assert number in unpaid and "Relance le" in unpaid
    lines = client.get(f"/admin/comptabilite/export?mois={month:%Y-%m}").get_data(as_text=True)
    assert number in lines and "7067-" in lines


def test_the_invoice_list_total_read_from_the_month_summary_is_the_counted_one(app):
    """Issue 15: /admin/factures takes its total from the month's grouped counts instead
    of counting the month's invoices again: both agree for every filter, every month."""
    from citoyens.billing import invoice_list, rules

    with app.test_request_context():
        seed()
        db.session.commit()
        today = rules.today()
        months = db.session.scalars(select(Invoice.month).distinct()).all()
        seen = set()
        for month in months:
            summary = invoice_list.month_summary(month, today)
            for status in ["", *rules.STATUS_FILTERS]:
                counted, _ = invoice_list.month_invoices(month, status=status, today=today)
                read, _ = invoice_list.month_invoices(
                    month, status=status, today=today, summary=summary
                )
                assert read.total == counted.total, (month, status)
                if counted.total:
                    seen.add(status)
        assert {"", "issued", "paid"} <= seen, seen
