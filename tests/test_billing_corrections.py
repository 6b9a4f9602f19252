"""Certificates and days already invoiced (DOMAIN.md "Billing", issue 11): only an accepted
certificate exempts a day; a certificate pending at the run is billed, then credited on
the next invoice once accepted; a refused one stays billed; credit lines beyond a month's
charges go to the credit balance, which the next invoice deducts.

Through the run (`issue_month`, as the back office and the command call it) and the
family's and staff's pages.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select, update

from citoyens.billing.credits import add_credit, credit_balance
from citoyens.billing.models import BilledDay, HouseholdCredit, Invoice, InvoiceLine
from citoyens.core.models import AuditEvent
from citoyens.documents.models import Document
from citoyens.extensions import db
from citoyens.reservations.models import Booking
from tests.conftest import post
from tests.requests_factories import assign_staff, make_request
from tests.test_billing_rules import book, invoices_of, make_family, make_world, run

SEPTEMBER, OCTOBER, NOVEMBER, DECEMBER = (date(2030, m, 1) for m in (9, 10, 11, 12))


def run_month(app, month: date):
    """The run of `month`, early in the month after (band 3 of BANDS: a meal costs 3 €)."""
    following = date(month.year + month.month // 12, month.month % 12 + 1, 5)
    return run(app, month, following)


def review(app, booking_id: int, status: str, reason: str | None = None) -> None:
    with app.app_context():
        booking = db.session.get(Booking, booking_id)
        db.session.execute(
            update(Document)
            .where(Document.id == booking.certificate_id)
            .values(status=status, refusal_reason=reason)
        )
        db.session.commit()


def billed_rows(app, household_id: int) -> list[tuple]:
    with app.app_context():
        return list(
            db.session.execute(
                select(BilledDay.booking_id, BilledDay.day, BilledDay.amount_cents)
                .where(BilledDay.household_id == household_id)
                .order_by(BilledDay.day, BilledDay.id)
            )
        )


def live_rows(app, booking_id: int) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count())
            .select_from(BilledDay)
            .where(BilledDay.booking_id == booking_id, BilledDay.credited_by_line_id.is_(None))
        )


@pytest.fixture
def family(app):
    world = make_world(app)
    account, (child,) = make_family(app)
    return world, account, child


def meal(app, family, day: date, *args, **kwargs) -> int:
    world, account, child = family
    return book(
        app, account.household_id, child, world.meal_id, world.year_id, day, *args, **kwargs
    )


# --- Certificate states through invoice runs -------------------------------------------------


def test_a_certificate_pending_at_the_run_is_billed_then_credited_once_accepted(app, family):
    _world, account, _child = family
    h = account.household_id
    sick = meal(app, family, date(2030, 9, 9), attendance="excused", certificate="pending")
    meal(app, family, date(2030, 9, 10))
    run_month(app, SEPTEMBER)
    (september,) = invoices_of(app, h)
    assert september["total"] == 600  # the pending certificate does not exempt the day
    assert [row[1] for row in billed_rows(app, h)] == [date(2030, 9, 9), date(2030, 9, 10)]
    assert all(row[2] == 300 for row in billed_rows(app, h))

    review(app, sick, "accepted")
    meal(app, family, date(2030, 10, 1))
    meal(app, family, date(2030, 10, 2))
    run_month(app, OCTOBER)
    _september, october = invoices_of(app, h)
    assert october["lines"] == [
        ("booked", "Repas du midi", 300, 2, "2030-10-01,2030-10-02"),
        (
            "credit",
            "Avoir : Repas du midi — absence justifiée le 9 septembre",
            -300,
            1,
            "2030-09-09",
        ),
    ]
    assert october["total"] == 300 and october["status"] == "issued"
    assert live_rows(app, sick) == 0
    with app.app_context():
        credit_line = db.session.scalar(select(InvoiceLine).where(InvoiceLine.kind == "credit"))
        assert credit_line.child_name == "Enfant0 Test" and credit_line.amount_cents == -300
        credited = db.session.scalar(select(BilledDay).where(BilledDay.booking_id == sick))
        assert credited.credited_by_line_id == credit_line.id

    meal(app, family, date(2030, 11, 4))
    run_month(app, NOVEMBER)
    november = invoices_of(app, h)[-1]
    assert [line[0] for line in november["lines"]] == ["booked"]  # never credited twice
    assert november["total"] == 300


def test_a_refused_certificate_stays_billed_and_is_not_credited(app, family):
    _world, account, _child = family
    h = account.household_id
    sick = meal(app, family, date(2030, 9, 9), attendance="excused", certificate="pending")
    run_month(app, SEPTEMBER)
    review(app, sick, "refused", "Certificat illisible")
    meal(app, family, date(2030, 10, 1))
    run_month(app, OCTOBER)
    september, october = invoices_of(app, h)
    assert september["total"] == 300
    assert october["total"] == 300 and [line[0] for line in october["lines"]] == ["booked"]
    assert live_rows(app, sick) == 1


def test_a_certificate_accepted_before_the_run_exempts_the_day(app, family):
    _world, account, _child = family
    meal(app, family, date(2030, 9, 9), attendance="excused", certificate="accepted")
    meal(app, family, date(2030, 9, 10))
    run_month(app, SEPTEMBER)
    (september,) = invoices_of(app, account.household_id)
    assert september["total"] == 300


def test_staff_excusing_an_invoiced_day_is_credited_on_the_next_invoice(app, family):
    _world, account, _child = family
    day = meal(app, family, date(2030, 9, 9), attendance="absent")
    run_month(app, SEPTEMBER)
    with app.app_context():
        db.session.get(Booking, day).attendance = "excused"  # corrected at the call list
        db.session.commit()
    meal(app, family, date(2030, 10, 1))
    run_month(app, OCTOBER)
    october = invoices_of(app, account.household_id)[-1]
    assert october["lines"][1][:3] == (
        "credit",
        "Avoir : Repas du midi — absence justifiée le 9 septembre",
        -300,
    )


def test_credits_beyond_the_month_go_to_the_balance_which_later_invoices_deduct(app, family):
    _world, account, _child = family
    h = account.household_id
    sick = [
        meal(app, family, date(2030, 9, d), attendance="excused", certificate="pending")
        for d in (9, 10)
    ]
    run_month(app, SEPTEMBER)
    for booking in sick:
        review(app, booking, "accepted")
    # October: nothing booked, yet an invoice shows the credit (nothing to pay).
    run_month(app, OCTOBER)
    october = invoices_of(app, h)[-1]
    assert october["month"] == OCTOBER and october["total"] == 0
    assert october["status"] == "paid"
    assert october["lines"] == [
        ("credit", "Avoir : Repas du midi — absences justifiées", -300, 2, "2030-09-09,2030-09-10"),
        (
            "balance",
            "Avoir supérieur au montant du mois : reporté sur votre solde créditeur",
            600,
            1,
            None,
        ),
    ]
    with app.app_context():
        assert credit_balance(h) == 600

    meal(app, family, date(2030, 11, 4))
    run_month(app, NOVEMBER)
    november = invoices_of(app, h)[-1]
    assert november["lines"][-1] == ("balance", "Solde créditeur déduit", -300, 1, None)
    assert november["total"] == 0 and november["status"] == "paid"

    for d in (2, 3, 4):
        meal(app, family, date(2030, 12, d))
    run(app, DECEMBER, date(2031, 1, 5))
    december = invoices_of(app, h)[-1]
    assert december["total"] == 900 - 300
    with app.app_context():
        assert credit_balance(h) == 0
        kinds = db.session.execute(
            select(HouseholdCredit.kind, HouseholdCredit.amount_cents)
            .where(HouseholdCredit.household_id == h)
            .order_by(HouseholdCredit.id)
        ).all()
    assert kinds == [("correction", 600), ("applied", -300), ("applied", -300)]


def test_an_overpayment_is_deducted_never_beyond_the_invoice(app, family):
    _world, account, _child = family
    h = account.household_id
    with app.app_context():
        add_credit(h, "overpayment", 1000)
        db.session.commit()
    meal(app, family, date(2030, 9, 9))
    run_month(app, SEPTEMBER)
    (september,) = invoices_of(app, h)
    assert september["total"] == 0
    with app.app_context():
        assert credit_balance(h) == 700


def test_the_run_preview_shows_the_credits(app, client, auth, admin, family):
    sick = meal(app, family, date(2030, 9, 9), attendance="excused", certificate="pending")
    run_month(app, SEPTEMBER)
    review(app, sick, "accepted")
    auth.login(admin)
    html = client.get("/admin/facturation?mois=2030-10").get_data(as_text=True)
    assert "Avoir : Repas du midi — absence justifiée le 9 septembre" in html
    assert "Avoirs sur jours déjà facturés" in html


# --- What the family sees -------------------------------------------------------------------


def test_the_family_sees_its_balance_and_the_credit_lines_with_their_days(
    app, client, auth, family
):
    _world, account, _child = family
    sick = meal(app, family, date(2030, 9, 9), attendance="excused", certificate="pending")
    meal(app, family, date(2030, 9, 10))
    run_month(app, SEPTEMBER)
    review(app, sick, "accepted")
    run_month(app, OCTOBER)  # credit only: 3 € to the balance
    with app.app_context():
        add_credit(account.household_id, "overpayment", 930)
        db.session.commit()
        october = db.session.scalar(select(Invoice).where(Invoice.month == OCTOBER))
    auth.login(account)
    index = client.get("/factures").get_data(as_text=True)
    assert "Vous avez un avoir de 12,30\xa0€" in index
    page = client.get(f"/factures/{october.id}").get_data(as_text=True)
    assert "Avoir : Repas du midi — absence justifiée le 9 septembre" in page
    assert "-3,00\xa0€" in page and "9 septembre" in page
    pdf = client.get(f"/factures/{october.id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


# --- Staff: balance, refunds, overpayments ----------------------------------------------------


def with_balance(app, household_id: int, cents: int = 2000) -> None:
    with app.app_context():
        add_credit(household_id, "overpayment", cents)
        db.session.commit()


def refund_url(household_id: int) -> str:
    return f"/admin/factures/familles/{household_id}/solde/rembourser"


def test_an_administrator_records_a_refund(app, client, auth, admin, family):
    _world, account, _child = family
    h = account.household_id
    with_balance(app, h)
    auth.login(admin)
    page = client.get(f"/admin/factures/familles/{h}/solde").get_data(as_text=True)
    assert "20,00\xa0€" in page and "Trop-perçu" in page and "(à traiter)" in page
    response = post(
        client, refund_url(h), {"amount": "12,50", "method": "cheque", "note": "n° 1234567"}
    )
    assert response.status_code == 303
    with app.app_context():
        refund = db.session.scalar(select(HouseholdCredit).where(HouseholdCredit.kind == "refund"))
        assert refund.amount_cents == -1250 and refund.created_by_id == admin.id
        assert refund.note == "Chèque — n° 1234567"
        assert credit_balance(h) == 750
        assert db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "credit.refund")
        )
        # Refunding looked at the overpayment: it leaves the list.
        assert (
            db.session.scalar(
                select(func.count())
                .select_from(HouseholdCredit)
                .where(HouseholdCredit.reviewed_at.is_(None), HouseholdCredit.kind == "overpayment")
            )
            == 0
        )


@pytest.mark.parametrize(
    ("amount", "method", "message"),
    [
        ("-5", "cheque", "Saisissez un montant en euros"),
        ("0", "cheque", "supérieur à zéro"),
        ("20,01", "transfer", "ne peut pas dépasser le solde créditeur (20,00\xa0€)"),
        ("abc", "transfer", "Saisissez un montant en euros"),
        ("", "transfer", "Indiquez le montant remboursé"),
        ("5", "cash", "virement ou chèque"),
    ],
)
def test_a_bad_refund_is_refused_in_french_and_saves_nothing(
    app, client, auth, admin, family, amount, method, message
):
    _world, account, _child = family
    h = account.household_id
    with_balance(app, h)
    auth.login(admin)
    response = post(client, refund_url(h), {"amount": amount, "method": method})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert credit_balance(h) == 2000


def test_an_agent_reads_the_balance_but_cannot_refund(app, client, auth, staff, family):
    world, account, _child = family
    h = account.household_id
    with_balance(app, h)
    # An agent of a service the family has an open request with (services.scope).
    assign_staff(app, staff.id, world.service_id)
    make_request(app, h, service_id=world.service_id)
    auth.login(staff)
    assert client.get(f"/admin/factures/familles/{h}/solde").status_code == 200
    assert post(client, refund_url(h), {"amount": "5", "method": "cheque"}).status_code == 403
    assert client.get("/admin/factures/familles/999999/solde").status_code == 404


def test_overpayments_to_review_are_listed_until_marked_reviewed(app, client, auth, admin, family):
    _world, account, _child = family
    h = account.household_id
    with_balance(app, h, 450)
    auth.login(admin)
    listing = client.get("/admin/factures/trop-percus").get_data(as_text=True)
    assert "4,50\xa0€" in listing and f"/admin/factures/familles/{h}/solde" in listing
    assert post(client, f"/admin/factures/familles/{h}/solde/vu").status_code == 303
    listing = client.get("/admin/factures/trop-percus").get_data(as_text=True)
    assert "Aucun trop-perçu à traiter" in listing
    with app.app_context():
        assert credit_balance(h) == 450  # kept, to be deducted from the next invoice
