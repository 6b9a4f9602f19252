"""Billing rules (DOMAIN.md "Billing"): what a booking costs, QF bands, prices, the monthly
invoice run (numbering, re-runs, direct debit, e-mails), credit notes and the CLI.

Dates are fixed (school years 2030-2031 and 2031-2032); `today` is passed to the run,
so nothing depends on the day the suite runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from citoyens.billing import credit_notes, invoice_mail, invoice_run, month_plan, months, tariffs
from citoyens.billing.credit_notes import credit_note
from citoyens.billing.invoice_run import issue_month
from citoyens.billing.models import Invoice, InvoiceCounter, Mandate, Price, QfBand
from citoyens.billing.months import BillingError, debit_date, next_business_day, parse_month
from citoyens.billing.pricing import BookingRow, billing_kind, price_bookings
from citoyens.billing.tariffs import band_for, band_problem, euros, parse_euros
from citoyens.core.models import AuditEvent, MailMessage
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import SchoolYear, Service
from tests.billing_factories import make_bands, make_mandate, make_prices
from tests.documents_factories import make_document, make_type
from tests.enrolments_factories import make_activity, make_school_year, make_service
from tests.factories import make_user

# The run of September 2030 happens in October 2030.
OCTOBER = date(2030, 10, 5)
SEPTEMBER = date(2030, 9, 1)


# --- A small billing world --------------------------------------------------------------------


@dataclass
class World:
    service_id: int
    meal_id: int  # "Repas du midi": 100..500 (BANDS)
    evening_id: int  # "Accueil du soir": twice that
    year_id: int
    band_ids: list[int]


def make_world(app, *, surcharge: int = 200) -> World:
    service_id = make_service(app)
    with app.app_context():
        db.session.get(Service, service_id).walk_in_surcharge_cents = surcharge
        db.session.commit()
    meal = make_activity(app, service_id, name="Repas du midi")
    evening = make_activity(app, service_id, name="Accueil du soir")
    year_id = make_school_year(app, date(2030, 9, 1))
    band_ids = make_bands(app, year_id)
    make_prices(app, meal, band_ids)
    make_prices(app, evening, band_ids, factor=2)
    return World(service_id, meal, evening, year_id, band_ids)


def make_family(app, *, qf: int | None = 900, paperless: bool = True, children: int = 1):
    """(account, child ids) of a household; QF 900 is band 3 of BANDS."""
    account = make_user(app, role="parent", children=children)
    with app.app_context():
        household = db.session.get(Household, account.household_id)
        household.family_quotient = qf
        household.paperless_invoices = paperless
        household.address_line, household.postcode, household.city = (
            "3 rue de la Loire",
            "49290",
            "Chalonnes-sur-Loire",
        )
        db.session.commit()
        children_ids = list(
            db.session.scalars(
                select(HouseholdMember.person_id)
                .where(
                    HouseholdMember.household_id == account.household_id,
                    HouseholdMember.role == "child",
                )
                .order_by(HouseholdMember.id)
            )
        )
    return account, children_ids


def day_id(app, activity_id: int, year_id: int, day: date) -> int:
    """The activity's day (made on first use, whatever the calendar says)."""
    with app.app_context():
        row = db.session.scalar(
            select(ActivityDay).where(
                ActivityDay.activity_id == activity_id, ActivityDay.day == day
            )
        )
        if row is None:
            row = ActivityDay(activity_id=activity_id, school_year_id=year_id, day=day, capacity=50)
            db.session.add(row)
            db.session.commit()
        return row.id


def book(
    app,
    household_id: int,
    child_id: int,
    activity_id: int,
    year_id: int,
    day: date,
    status: str = "booked",
    *,
    attendance: str | None = None,
    late: bool = False,
    certificate: str | None = None,
) -> int:
    """A booking; `certificate`: the review status of its medical certificate, if any."""
    activity_day_id = day_id(app, activity_id, year_id, day)
    certificate_id = None
    if certificate:
        certificate_id = make_document(
            app,
            household_id=household_id,
            type_id=make_type(app),
            person_id=child_id,
            status=certificate,
        )
    with app.app_context():
        booking = Booking(
            activity_day_id=activity_day_id,
            child_id=child_id,
            household_id=household_id,
            status=status,
            attendance=attendance,
            late=late,
            certificate_id=certificate_id,
        )
        db.session.add(booking)
        db.session.commit()
        return booking.id


def invoices_of(app, household_id: int) -> list[dict]:
    with app.app_context():
        result = []
        for invoice in db.session.scalars(
            select(Invoice).where(Invoice.household_id == household_id).order_by(Invoice.id)
        ):
            result.append(
                {
                    "number": invoice.number,
                    "kind": invoice.kind,
                    "month": invoice.month,
                    "total": invoice.total_cents,
                    "status": invoice.status,
                    "lines": [
                        (line.kind, line.label, line.unit_price_cents, line.quantity, line.days)
                        for line in invoice.lines
                    ],
                    "invoice": invoice,
                }
            )
        return result


def counter(app, year: int) -> int | None:
    with app.app_context():
        return db.session.scalar(
            select(InvoiceCounter.last_number).where(InvoiceCounter.year == year)
        )


def run(app, month: date = SEPTEMBER, today: date = OCTOBER, **kwargs):
    with app.test_request_context():
        return issue_month(month, today=today, **kwargs)


# --- What a booking costs (pure) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "late", "attendance", "certificate", "expected"),
    [
        ("booked", False, None, None, "booked"),  # attendance not recorded
        ("booked", False, "present", None, "booked"),
        ("booked", False, "absent", None, "booked"),  # absent without justification
        ("booked", False, "excused", None, None),  # staff's own decision, no certificate
        # The family's declaration marks the day "excused": its certificate decides.
        ("booked", False, "excused", "pending", "booked"),
        ("booked", False, "excused", "refused", "booked"),
        ("booked", False, "excused", "accepted", None),
        ("booked", False, "absent", "accepted", None),
        ("booked", False, None, "accepted", None),
        ("booked", False, "present", "accepted", None),
        ("booked", False, None, "pending", "booked"),
        ("walk_in", False, "present", None, "walk_in"),
        ("walk_in", False, None, None, "walk_in"),
        ("walk_in", False, "present", "accepted", "walk_in"),  # surcharge waived, see below
        ("cancelled", True, None, None, "late_cancel"),
        ("cancelled", True, None, "accepted", None),  # late, but a certificate justifies it
        ("cancelled", True, None, "pending", "late_cancel"),
        ("cancelled", True, None, "refused", "late_cancel"),
        ("cancelled", False, None, None, None),  # cancelled in time
        ("waiting", False, None, None, None),
        ("waiting", True, None, None, None),
    ],
)
def test_billing_kind_follows_the_domain_rules(status, late, attendance, certificate, expected):
    assert billing_kind(status, late, attendance, certificate) == expected


def row(day: date, status="booked", **kwargs) -> BookingRow:
    values = {
        "household_id": 1,
        "child_id": 10,
        "child_name": "Léa Martin",
        "activity_id": 100,
        "activity_name": "Repas du midi",
        "school_year_id": 7,
        "day": day,
        "status": status,
        "surcharge_cents": 200,
    }
    values.update(kwargs)
    return BookingRow(**values)


@dataclass
class Band:
    id: int
    position: int
    label: str
    qf_max: int | None


BANDS_2030 = [
    Band(1, 1, "T1", 500),
    Band(2, 2, "T2", 800),
    Band(3, 3, "T3", None),
]


def test_price_bookings_makes_one_line_per_child_activity_price_and_kind():
    rows = [
        row(date(2030, 9, 5)),
        row(date(2030, 9, 2)),
        row(date(2030, 9, 3), attendance="present"),
        row(date(2030, 9, 6), "walk_in", attendance="present"),
        row(date(2030, 9, 9), "walk_in", attendance="present", certificate="accepted"),
        row(date(2030, 9, 10), "cancelled", late=True),
        row(date(2030, 9, 11), "cancelled"),
        row(date(2030, 9, 12), child_id=11, child_name="Hugo Martin"),
        row(date(2030, 9, 13), household_id=2),
    ]
    prices = {(100, 1): 120, (100, 2): 250, (100, 3): 420}
    bills, missing = price_bookings(rows, {1: 700, 2: None}, {7: BANDS_2030}, prices)
    assert missing == []
    assert set(bills) == {1, 2}
    lines = [
        (line.child_name, line.kind, line.label, line.unit_price_cents, line.days)
        for line in bills[1].lines
    ]
    assert lines == [
        ("Hugo Martin", "booked", "Repas du midi", 250, [date(2030, 9, 12)]),
        (
            "Léa Martin",
            "booked",
            "Repas du midi",
            250,
            [date(2030, 9, 2), date(2030, 9, 3), date(2030, 9, 5)],
        ),
        (
            "Léa Martin",
            "late_cancel",
            "Repas du midi — annulations tardives",
            250,
            [date(2030, 9, 10)],
        ),
        ("Léa Martin", "walk_in", "Repas du midi — sans réservation", 250, [date(2030, 9, 9)]),
        (
            "Léa Martin",
            "walk_in",
            "Repas du midi — sans réservation (majoration 2,00\xa0€)",
            450,
            [date(2030, 9, 6)],
        ),
    ]
    assert bills[1].total_cents == 250 + 3 * 250 + 250 + 250 + 450
    assert bills[1].band_labels == ["T2"]
    # Household 2's QF is unknown: the top band.
    assert bills[2].total_cents == 420 and bills[2].band_labels == ["T3"]


def test_price_bookings_reports_activities_without_tariff_and_bills_the_rest():
    rows = [
        row(date(2030, 9, 2)),
        row(date(2030, 9, 3), activity_id=101, activity_name="Accueil du soir"),
        row(date(2030, 9, 4), activity_id=101, activity_name="Accueil du soir", household_id=2),
        row(date(2030, 9, 5), school_year_id=8),  # a year without bands
    ]
    bills, missing = price_bookings(
        rows, {1: 300, 2: 300}, {7: BANDS_2030}, {(100, 1): 120, (101, 2): 500}
    )
    assert [line.days for line in bills[1].lines] == [[date(2030, 9, 2)]]
    assert 2 not in bills
    assert [(m.school_year_id, m.activity_name, m.band_label, m.days) for m in missing] == [
        (7, "Accueil du soir", "T1", 2),
        (8, "Repas du midi", None, 1),
    ]
    assert missing[0].households == {1, 2}


# --- QF bands and amounts ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qf", "expected"),
    [(0, 1), (500, 1), (501, 2), (800, 2), (801, 3), (100_000, 3), (None, 3)],
)
def test_band_is_the_first_whose_ceiling_reaches_the_qf(qf, expected):
    assert band_for(list(reversed(BANDS_2030)), qf).id == expected


def test_band_without_a_top_band():
    bands = BANDS_2030[:2]
    assert band_for(bands, 800).id == 2
    assert band_for(bands, 801) is None
    assert band_for(bands, None) is None
    assert band_for([], 100) is None


@pytest.mark.parametrize(
    ("position", "qf_max", "band_id", "problem"),
    [
        (4, None, None, ("position", "n'a pas de plafond")),  # after the top band
        (2, 900, None, ("position", "occupe déjà")),
        (0, None, None, ("qf_max", "Seule la dernière tranche")),
        (0, 500, None, ("qf_max", "rester sous celui de la tranche 1")),
        (2, 500, 2, ("qf_max", "dépasser celui de la tranche 1")),
        (2, 400, 2, ("qf_max", "dépasser celui de la tranche 1")),
        (0, 499, None, None),
        (2, 600, 2, None),
        (3, 5000, 3, None),  # the top band gets a ceiling: fine, the run reports the gap
    ],
)
def test_band_problem(position, qf_max, band_id, problem):
    found = band_problem(BANDS_2030, position, qf_max, band_id)
    if problem is None:
        assert found is None
    else:
        assert found[0] == problem[0] and problem[1] in found[1]


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("3,50", 350),
        ("3.5", 350),
        ("3", 300),
        ("0", 0),
        ("0,05", 5),
        (" 1 234,56 € ", 123456),
        ("1\u202f234,56\xa0€", 123456),
        ("99999,99", 9_999_999),
    ],
)
def test_parse_euros(typed, cents):
    assert parse_euros(typed) == cents


@pytest.mark.parametrize(
    "typed", ["", "  ", "abc", "-1", "-1,00", "3,555", "3,50,1", "1e3", "100000", "3,5x", None]
)
def test_parse_euros_refuses_with_a_french_message(typed):
    with pytest.raises(ValueError, match="Saisissez un montant|ne peut pas dépasser"):
        parse_euros(typed)


def test_euros_formats_french_style():
    assert euros(350) == "3,50\xa0€"
    assert euros(123456) == "1\u202f234,56\xa0€"
    assert euros(-1230) == "-12,30\xa0€"
    assert euros(0) == "0,00\xa0€"
    assert euros(None) == ""
    assert tariffs.euros_input(350) == "3,50" and tariffs.euros_input(None) == ""


def test_euros_is_a_template_filter_of_the_whole_app(app):
    with app.app_context():
        assert app.jinja_env.filters["euros"](350) == "3,50\xa0€"


# --- Months and dates (pure) ------------------------------------------------------------------


def test_parse_month():
    assert parse_month("2026-09") == date(2026, 9, 1)
    assert parse_month(" 2026-9 ") == date(2026, 9, 1)
    for bad in ("", None, "2026-13", "2026-00", "09-2026", "2026/09", "septembre", "1999-01"):
        with pytest.raises(BillingError, match="Mois invalide"):
            parse_month(bad)


def test_month_names_are_elided_before_a_vowel():
    assert months.of_month(date(2026, 9, 1)) == "de septembre 2026"
    assert months.of_month(date(2026, 10, 1)) == "d'octobre 2026"
    assert months.of_month(date(2027, 4, 1)) == "d'avril 2027"
    assert months.of_month(date(2027, 8, 1)) == "d'août 2027"


def test_a_month_is_issued_once_it_is_over():
    months.check_month_is_over(date(2030, 9, 1), date(2030, 10, 1))
    for today in (date(2030, 9, 30), date(2030, 9, 1), date(2030, 8, 31)):
        with pytest.raises(BillingError, match="n'est pas terminé"):
            months.check_month_is_over(date(2030, 9, 1), today)


@pytest.mark.parametrize(
    ("issued_on", "days", "expected"),
    [
        (date(2030, 10, 1), 14, date(2030, 10, 15)),  # the 15th: exactly 14 days' notice
        (date(2030, 9, 25), 14, date(2030, 10, 15)),
        (date(2030, 10, 2), 14, date(2030, 10, 16)),  # too soon: 14 days after issue
        (date(2030, 10, 5), 14, date(2030, 10, 21)),  # 19 October is a Saturday: Monday
        (date(2030, 10, 5), 5, date(2030, 10, 15)),  # a commune announcing five days
        (date(2030, 10, 11), 5, date(2030, 10, 16)),
        (date(2030, 12, 20), 5, date(2030, 12, 27)),  # 25 Dec + 26 Dec (TARGET), then Friday
    ],
)
def test_debit_date(issued_on, days, expected):
    assert debit_date(date(2030, 9, 1), issued_on, 15, days) == expected


def test_debit_day_on_a_weekend_moves_to_the_next_business_day():
    # 15 March 2031 is a Saturday.
    assert debit_date(date(2031, 2, 1), date(2031, 3, 1), 15, 14) == date(2031, 3, 17)
    assert next_business_day(date(2031, 5, 1)) == date(2031, 5, 2)  # 1 May, TARGET holiday
    assert next_business_day(date(2031, 5, 2)) == date(2031, 5, 2)
    # A debit day past the month's end is its last day.
    assert debit_date(date(2031, 1, 1), date(2031, 2, 1), 31, 14) == date(2031, 2, 28)


def test_the_pre_notification_is_a_setting_of_14_days_by_default(app, monkeypatch):
    with app.app_context():
        assert app.config["SEPA_PRENOTIFICATION_DAYS"] == 14
        assert debit_date(SEPTEMBER, date(2030, 10, 5), 15) == date(2030, 10, 21)
        assert months.debit_warning(SEPTEMBER, date(2030, 10, 5), 15) == (
            "Le prélèvement du mardi 15 octobre serait annoncé moins de 14 jours avant : "
            "il est reporté au lundi 21 octobre."
        )
        assert months.debit_warning(SEPTEMBER, date(2030, 10, 1), 15) is None
        monkeypatch.setitem(app.config, "SEPA_PRENOTIFICATION_DAYS", 5)  # the commune's own
        assert debit_date(SEPTEMBER, date(2030, 10, 5), 15) == date(2030, 10, 15)
        assert months.debit_warning(SEPTEMBER, date(2030, 10, 5), 15) is None


# --- The run ----------------------------------------------------------------------------------


def test_issue_month_applies_every_rule(app):
    """One child, one activity (band 3: 3 €), every status and attendance in September."""
    world = make_world(app)
    account, (child,) = make_family(app)
    h, y, meal = account.household_id, world.year_id, world.meal_id
    book(app, h, child, meal, y, date(2030, 9, 2))  # not recorded yet → billed
    book(app, h, child, meal, y, date(2030, 9, 3), attendance="present")
    book(app, h, child, meal, y, date(2030, 9, 5), attendance="absent")
    book(app, h, child, meal, y, date(2030, 9, 6), attendance="excused")
    book(app, h, child, meal, y, date(2030, 9, 9), attendance="absent", certificate="accepted")
    book(app, h, child, meal, y, date(2030, 9, 10), "cancelled", late=True)
    book(app, h, child, meal, y, date(2030, 9, 12), "cancelled")
    book(app, h, child, meal, y, date(2030, 9, 13), "waiting")
    book(app, h, child, meal, y, date(2030, 9, 16), "walk_in", attendance="present")
    book(
        app,
        h,
        child,
        meal,
        y,
        date(2030, 9, 17),
        "walk_in",
        attendance="present",
        certificate="accepted",
    )
    result = run(app)
    assert result.count == 1 and result.missing_tariffs == []
    (invoice,) = invoices_of(app, h)
    assert invoice["lines"] == [
        ("booked", "Repas du midi", 300, 3, "2030-09-02,2030-09-03,2030-09-05"),
        ("late_cancel", "Repas du midi — annulations tardives", 300, 1, "2030-09-10"),
        ("walk_in", "Repas du midi — sans réservation", 300, 1, "2030-09-17"),
        (
            "walk_in",
            "Repas du midi — sans réservation (majoration 2,00\xa0€)",
            500,
            1,
            "2030-09-16",
        ),
    ]
    assert invoice["total"] == 900 + 300 + 300 + 500 == result.total_cents
    assert invoice["status"] == "issued"
    with app.app_context():
        stored = db.session.get(Invoice, invoice["invoice"].id)
        assert [line.amount_cents for line in stored.lines] == [900, 300, 300, 500]
        assert {line.child_id for line in stored.lines} == {child}
        assert {line.activity_id for line in stored.lines} == {meal}
        assert stored.lines[0].child_name == "Enfant0 Test"


def test_invoice_copies_the_household_and_takes_the_year_of_issue(app):
    world = make_world(app)
    account, (child,) = make_family(app, qf=500, paperless=False)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 12, 2))
    result = run(app, date(2030, 12, 1), today=date(2031, 1, 6))
    (issued,) = result.issued
    with app.app_context():
        invoice = db.session.get(Invoice, issued.id)
        assert invoice.number == "F2031-000001" and invoice.year == 2031
        assert invoice.sequence == 1 and invoice.kind == "invoice"
        assert invoice.month == date(2030, 12, 1)
        assert invoice.due_on == date(2031, 1, 6) + timedelta(days=30)
        assert invoice.addressee.startswith("Prénom") and invoice.addressee.endswith(" Test")
        assert invoice.address == "3 rue de la Loire\n49290 Chalonnes-sur-Loire"
        assert invoice.family_quotient == 500
        assert invoice.band_label == "Tranche 1 (QF ≤ 500 €)"
        assert invoice.paperless is False and invoice.mailed_at is None
        assert invoice.mandate_id is None and invoice.debit_on is None
        assert invoice.total_cents == 100


def test_addressee_is_the_first_adult_when_nobody_has_an_account(app):
    world = make_world(app)
    with app.app_context():
        household = Household(family_quotient=None)
        adult = Person(first_name="Camille", last_name="Sanscompte")
        child = Person(first_name="Léo", last_name="Sanscompte")
        household.memberships += [
            HouseholdMember(person=adult, role="adult"),
            HouseholdMember(person=child, role="child"),
        ]
        db.session.add(household)
        db.session.commit()
        household_id, child_id = household.id, child.id
    book(app, household_id, child_id, world.meal_id, world.year_id, date(2030, 9, 2))
    result = run(app)
    (issued,) = result.issued
    assert issued.addressee == "Camille Sanscompte"
    assert issued.total_cents == 500  # unknown QF: the top band
    assert result.not_emailed == 1 and result.emailed == 0  # paperless, but no account


def test_month_boundaries_and_a_school_year_change_with_other_bands(app):
    """31 August belongs to August and to 2030-2031's bands; 1 September to September and
    to 2031-2032's, where the same QF falls in another band, at other prices."""
    world = make_world(app)
    next_year = make_school_year(app, date(2031, 9, 1))
    # 2031-2032: QF 900 is now band 2 ("≤ 1000"), at 7,00 € the meal.
    bands = [
        ("A (QF ≤ 400 €)", 400, 0),
        ("B (QF ≤ 1 000 €)", 1000, 0),
        ("C (QF > 1 000 €)", None, 0),
    ]
    band_ids = make_bands(app, next_year, bands)
    with app.app_context():
        for band_id, cents in zip(band_ids, (350, 700, 900), strict=True):
            db.session.add(Price(activity_id=world.meal_id, band_id=band_id, amount_cents=cents))
        db.session.commit()
    account, (child,) = make_family(app, qf=900)
    h, meal = account.household_id, world.meal_id
    book(app, h, child, meal, world.year_id, date(2031, 7, 31))
    book(app, h, child, meal, world.year_id, date(2031, 8, 1))
    book(app, h, child, meal, world.year_id, date(2031, 8, 31))
    book(app, h, child, meal, next_year, date(2031, 9, 1))
    book(app, h, child, meal, next_year, date(2031, 9, 30))
    book(app, h, child, meal, next_year, date(2031, 10, 1))
    august = run(app, date(2031, 8, 1), today=date(2031, 10, 2))
    september = run(app, date(2031, 9, 1), today=date(2031, 10, 2))
    assert august.count == september.count == 1
    invoices = {i["month"]: i for i in invoices_of(app, h)}
    assert invoices[date(2031, 8, 1)]["lines"] == [
        ("booked", "Repas du midi", 300, 2, "2031-08-01,2031-08-31")
    ]
    assert invoices[date(2031, 9, 1)]["lines"] == [
        ("booked", "Repas du midi", 700, 2, "2031-09-01,2031-09-30")
    ]
    with app.app_context():
        labels = {
            i.month: i.band_label
            for i in db.session.scalars(select(Invoice).where(Invoice.household_id == h))
        }
    assert labels == {
        date(2031, 8, 1): "Tranche 3 (QF 801 à 1 100 €)",
        date(2031, 9, 1): "B (QF ≤ 1 000 €)",
    }
    numbers = sorted(i["number"] for i in invoices.values())
    assert numbers == ["F2031-000001", "F2031-000002"]


def test_a_child_of_two_homes_is_billed_to_the_household_that_booked(app):
    world = make_world(app)
    mother, (child,) = make_family(app, qf=400)
    father, _ = make_family(app, qf=2000, children=0)
    with app.app_context():
        db.session.add(
            HouseholdMember(household_id=father.household_id, person_id=child, role="child")
        )
        db.session.commit()
    book(app, mother.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, father.household_id, child, world.meal_id, world.year_id, date(2030, 9, 3))
    run(app)
    (mine,) = invoices_of(app, mother.household_id)
    (his,) = invoices_of(app, father.household_id)
    assert mine["lines"] == [("booked", "Repas du midi", 100, 1, "2030-09-02")]
    assert his["lines"] == [("booked", "Repas du midi", 500, 1, "2030-09-03")]


def test_households_with_nothing_to_bill_get_no_invoice(app):
    world = make_world(app)
    account, (child,) = make_family(app)
    h = account.household_id
    book(app, h, child, world.meal_id, world.year_id, date(2030, 9, 2), "cancelled")
    book(app, h, child, world.meal_id, world.year_id, date(2030, 9, 3), "waiting")
    book(app, h, child, world.meal_id, world.year_id, date(2030, 9, 4), attendance="excused")
    book(app, h, child, world.meal_id, world.year_id, date(2030, 10, 1))  # next month
    result = run(app)
    assert result.count == 0 and invoices_of(app, h) == []
    assert counter(app, 2030) is None  # no number taken


def test_free_days_make_no_invoice(app):
    """A band priced 0 € (a free tariff): nothing to pay, so no invoice and no number."""
    world = make_world(app)
    with app.app_context():
        db.session.execute(
            update(Price)
            .where(Price.activity_id == world.meal_id, Price.band_id == world.band_ids[0])
            .values(amount_cents=0)
        )
        db.session.commit()
    account, (child,) = make_family(app, qf=100)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    assert run(app).count == 0
    assert counter(app, 2030) is None


def test_a_re_run_changes_nothing(app):
    world = make_world(app)
    first, (a,) = make_family(app)
    second, (b,) = make_family(app)
    book(app, first.household_id, a, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, second.household_id, b, world.evening_id, world.year_id, date(2030, 9, 2))
    result = run(app)
    assert result.count == 2 and counter(app, 2030) == 2
    before = invoices_of(app, first.household_id) + invoices_of(app, second.household_id)
    # A booking added since (a walk-in recorded late) does not reopen the month.
    book(app, first.household_id, a, world.meal_id, world.year_id, date(2030, 9, 3), "walk_in")
    again = run(app)
    assert again.count == 0 and again.already_invoiced == 2
    after = invoices_of(app, first.household_id) + invoices_of(app, second.household_id)
    assert [(i["number"], i["total"], i["lines"]) for i in after] == [
        (i["number"], i["total"], i["lines"]) for i in before
    ]
    assert counter(app, 2030) == 2
    # A household first billed in the second run gets the next number.
    third, (c,) = make_family(app)
    book(app, third.household_id, c, world.meal_id, world.year_id, date(2030, 9, 4))
    late = run(app)
    assert [i.number for i in late.issued] == ["F2030-000003"]
    assert late.already_invoiced == 2


def test_numbers_follow_each_other_within_a_year_and_restart_the_next(app):
    world = make_world(app)
    accounts = [make_family(app) for _ in range(3)]
    for account, (child,) in accounts:
        book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
        book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 12, 2))
    september = run(app, SEPTEMBER, today=date(2030, 10, 1))
    december = run(app, date(2030, 12, 1), today=date(2031, 1, 2))
    assert sorted(i.number for i in september.issued) == [
        "F2030-000001",
        "F2030-000002",
        "F2030-000003",
    ]
    assert sorted(i.number for i in december.issued) == [
        "F2031-000001",
        "F2031-000002",
        "F2031-000003",
    ]
    assert counter(app, 2030) == 3 and counter(app, 2031) == 3


def test_a_lost_race_gives_its_number_back(app):
    """The savepoint path a concurrent run takes on PostgreSQL: the household got its
    invoice meanwhile; the insert fails on the unique (household, month) and the number
    taken for it is rolled back with it."""
    world = make_world(app)
    account, (child,) = make_family(app)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    with app.app_context():
        plan = month_plan.plan_month(SEPTEMBER)
        (bill,) = plan.bills
        who = invoice_run.addressees([bill.household_id])[bill.household_id]
        first = invoice_run._insert_invoice(bill, SEPTEMBER, OCTOBER, who, None)
        assert first is not None and first.number == "F2030-000001"
        second = invoice_run._insert_invoice(bill, SEPTEMBER, OCTOBER, who, None)
        assert second is None
        db.session.commit()
    assert counter(app, 2030) == 1
    assert len(invoices_of(app, account.household_id)) == 1


def test_a_month_not_over_is_refused(app):
    world = make_world(app)
    account, (child,) = make_family(app)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    with pytest.raises(BillingError, match="n'est pas terminé"):
        run(app, SEPTEMBER, today=date(2030, 9, 30))
    assert invoices_of(app, account.household_id) == []


def test_price_change_after_issue_leaves_the_invoice_alone(app):
    world = make_world(app)
    account, (child,) = make_family(app)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    run(app)
    with app.app_context():
        db.session.execute(
            update(Price).where(Price.activity_id == world.meal_id).values(amount_cents=999)
        )
        db.session.execute(
            update(QfBand).where(QfBand.school_year_id == world.year_id).values(label="Autre")
        )
        db.session.commit()
    run(app)
    (invoice,) = invoices_of(app, account.household_id)
    assert invoice["lines"] == [("booked", "Repas du midi", 300, 1, "2030-09-02")]
    assert invoice["total"] == 300
    assert invoice["invoice"].band_label == "Tranche 3 (QF 801 à 1 100 €)"


def test_activities_without_tariff_are_reported_and_not_billed(app):
    world = make_world(app)
    service_id = make_service(app)
    sport = make_activity(app, service_id, name="Multisport")  # no price at all
    account, (child,) = make_family(app)
    h = account.household_id
    book(app, h, child, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, h, child, sport, world.year_id, date(2030, 9, 3))
    book(app, h, child, sport, world.year_id, date(2030, 9, 4))
    result = run(app)
    (gap,) = result.missing_tariffs
    assert (gap.activity_name, gap.band_label, gap.days, gap.households) == (
        "Multisport",
        "Tranche 3 (QF 801 à 1 100 €)",
        2,
        {h},
    )
    assert gap.school_year_name == "2030-2031"
    (invoice,) = invoices_of(app, h)
    assert invoice["lines"] == [("booked", "Repas du midi", 300, 1, "2030-09-02")]
    with app.app_context():
        details = db.session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == "invoice.run")
        )
    assert "days_without_tariff:2" in details


# --- Direct debit -----------------------------------------------------------------------------


def test_invoice_under_an_active_mandate_is_debited(app):
    world = make_world(app)
    account, (child,) = make_family(app)
    mandate_id = make_mandate(app, account.household_id, first_month=SEPTEMBER)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    result = run(app, today=date(2030, 10, 1))
    (issued,) = result.issued
    assert issued.status == "direct_debit" and issued.debit_on == date(2030, 10, 15)
    assert result.debit_warning is None
    with app.app_context():
        invoice = db.session.get(Invoice, issued.id)
        assert invoice.mandate_id == mandate_id and invoice.debit_on == date(2030, 10, 15)


def test_a_run_too_close_to_the_debit_day_postpones_it_and_warns(app):
    """Issued on 5 October, the 15th would give the family ten days' notice, not 14."""
    world = make_world(app)
    account, (child,) = make_family(app)
    make_mandate(app, account.household_id, first_month=SEPTEMBER)
    other, (kid,) = make_family(app)  # paying by card: no warning needed for it alone
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, other.household_id, kid, world.meal_id, world.year_id, date(2030, 9, 2))
    result = run(app, today=OCTOBER)
    debited = [invoice for invoice in result.issued if invoice.status == "direct_debit"]
    assert [invoice.debit_on for invoice in debited] == [date(2030, 10, 21)]
    assert result.debit_warning == (
        "Le prélèvement du mardi 15 octobre serait annoncé moins de 14 jours avant : "
        "il est reporté au lundi 21 octobre."
    )


def test_mandate_from_a_later_month_or_revoked_does_not_apply(app):
    world = make_world(app)
    later, (a,) = make_family(app)
    revoked, (b,) = make_family(app)
    make_mandate(app, later.household_id, first_month=date(2030, 10, 1))
    mandate_id = make_mandate(app, revoked.household_id, first_month=SEPTEMBER)
    with app.app_context():
        db.session.get(Mandate, mandate_id).revoked_at = utcnow()
        db.session.commit()
    book(app, later.household_id, a, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, revoked.household_id, b, world.meal_id, world.year_id, date(2030, 9, 2))
    result = run(app)
    assert {i.status for i in result.issued} == {"issued"}
    assert all(i.debit_on is None for i in result.issued)


# --- E-mails ----------------------------------------------------------------------------------


def test_paperless_households_are_told_and_paper_ones_listed(app, outbox):
    world = make_world(app)
    online, (a,) = make_family(app, paperless=True)
    paper, (b,) = make_family(app, paperless=False)
    book(app, online.household_id, a, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, paper.household_id, b, world.meal_id, world.year_id, date(2030, 9, 2))
    result = run(app)
    assert result.emailed == 1 and [i.household_id for i in result.paper] == [paper.household_id]
    (message,) = outbox
    assert message.recipients == [online.email]
    assert message.subject == "Votre facture de septembre 2030 est disponible"
    assert "3,00\xa0€" in message.body and "À régler avant le 04/11/2030" in message.body
    assert "http://localhost/" in message.body  # a link to the family's invoices
    assert "F2030-00000" in message.html
    with app.app_context():
        mailed = dict(db.session.execute(select(Invoice.household_id, Invoice.mailed_at)).all())
        assert mailed[online.household_id] is not None and mailed[paper.household_id] is None
        kinds = db.session.scalars(select(MailMessage.kind)).all()
        assert kinds == ["invoice-issued"]


def test_mail_of_an_invoice_under_direct_debit_gives_the_debit_date(app, outbox):
    world = make_world(app)
    account, (child,) = make_family(app)
    make_mandate(app, account.household_id, first_month=SEPTEMBER)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    run(app)
    (message,) = outbox
    assert "prélevée le 21/10/2030" in message.body  # 14 days after the run of 5 October
    assert "À régler" not in message.body


def test_invoice_link_falls_back_when_the_invoice_page_is_missing(app):
    with app.test_request_context():
        link = invoice_mail.invoice_link(42)
        views = app.view_functions
        if "billing.invoice" in views:
            assert link.endswith("/42") or "42" in link
        elif "billing.index" in views:
            assert link.startswith("http://localhost/")
        else:
            assert link is None


# --- Credit notes -----------------------------------------------------------------------------


def issued_invoice(app, world, *, days: int = 2, mandate: bool = False) -> int:
    account, (child,) = make_family(app)
    if mandate:
        make_mandate(app, account.household_id, first_month=SEPTEMBER)
    for offset in range(days):
        book(
            app,
            account.household_id,
            child,
            world.meal_id,
            world.year_id,
            date(2030, 9, 2) + timedelta(days=offset),
        )
    (issued,) = run(app).issued
    return issued.id


def write_credit(app, invoice_id, lines, reason="Repas compté deux fois", today=OCTOBER):
    with app.app_context():
        invoice = db.session.get(Invoice, invoice_id)
        try:
            credit = credit_note(invoice, lines, reason, actor=None, today=today)
            db.session.commit()
            return credit.id
        except BillingError:
            db.session.rollback()
            raise


def test_credit_note_takes_the_next_number_and_a_negative_total(app):
    world = make_world(app)
    invoice_id = issued_invoice(app, world)  # 2 × 3 € = 6 €, F2030-000001
    credit_id = write_credit(app, invoice_id, [("Repas du 2 septembre", 300)])
    with app.app_context():
        credit = db.session.get(Invoice, credit_id)
        invoice = db.session.get(Invoice, invoice_id)
        assert credit.kind == "credit" and credit.credit_for_id == invoice_id
        assert credit.number == "F2030-000002" and credit.sequence == 2
        assert credit.total_cents == -300
        assert [(line.kind, line.label, line.amount_cents) for line in credit.lines] == [
            ("credit", "Repas du 2 septembre", -300)
        ]
        assert credit.addressee == invoice.addressee and credit.month == invoice.month
        assert invoice.status == "issued" and invoice.total_cents == 600  # never edited
        assert credit_notes.creditable_cents(invoice) == 300
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "invoice.credit_note")
        )
        assert event.target == f"invoice:{invoice_id}" and "Repas compté" in event.details
    # The next invoice run continues the same series.
    account, (child,) = make_family(app)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 20))
    assert [i.number for i in run(app).issued] == ["F2030-000003"]


def test_credit_notes_covering_the_whole_invoice_cancel_it(app):
    world = make_world(app)
    invoice_id = issued_invoice(app, world, mandate=True)
    write_credit(app, invoice_id, [("Premier jour", 300)])
    write_credit(app, invoice_id, [("Second jour", 200), ("Frais", 100)])
    with app.app_context():
        assert db.session.get(Invoice, invoice_id).status == "cancelled"
    with pytest.raises(BillingError, match="déjà entièrement annulée"):
        write_credit(app, invoice_id, [("Encore", 1)])


@pytest.mark.parametrize(
    ("lines", "reason", "message"),
    [
        ([("Trop", 601)], "Motif", "dépasse ce qui reste à créditer"),
        ([("Rien", 0)], "Motif", "supérieur à zéro"),
        ([("Négatif", -100)], "Motif", "supérieur à zéro"),
        ([], "Motif", "supérieur à zéro"),
        ([("Ligne", 100)], "   ", "motif"),
        ([(" ", 100)], "Motif", "libellé"),
    ],
)
def test_credit_note_refuses_bad_amounts(app, lines, reason, message):
    world = make_world(app)
    invoice_id = issued_invoice(app, world)
    with pytest.raises(BillingError, match=message):
        write_credit(app, invoice_id, lines, reason=reason)
    assert counter(app, 2030) == 1  # no number taken
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(Invoice.kind == "credit")) == 0


def test_no_credit_note_on_a_credit_note(app):
    world = make_world(app)
    invoice_id = issued_invoice(app, world)
    credit_id = write_credit(app, invoice_id, [("Un jour", 300)])
    with pytest.raises(BillingError, match="pas sur un avoir"):
        write_credit(app, credit_id, [("Un jour", 100)])


# --- Command line -----------------------------------------------------------------------------


@pytest.fixture
def october(monkeypatch):
    """The command's clock: 5 October 2030."""
    monkeypatch.setattr("citoyens.billing.cli.today_in_paris", lambda: OCTOBER)
    monkeypatch.setattr("citoyens.billing.invoice_run.today_in_paris", lambda: OCTOBER)


def test_cli_issues_a_month_and_says_so_in_french(app, runner, october):
    world = make_world(app)
    online, (a,) = make_family(app)
    paper, (b,) = make_family(app, paperless=False)
    book(app, online.household_id, a, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, paper.household_id, b, world.evening_id, world.year_id, date(2030, 9, 2))
    result = runner.invoke(args=["invoices", "issue", "--month", "2030-09"])
    assert result.exit_code == 0, result.output
    assert "septembre 2030 : 2 factures émises, total 9,00\xa0€." in result.output
    assert "Par e-mail : 1 ; sur papier (à imprimer) : 1." in result.output
    again = runner.invoke(args=["invoices", "issue", "--month", "2030-09"])
    assert again.exit_code == 0
    assert "aucune nouvelle facture" in again.output
    assert "Familles déjà facturées pour ce mois : 2." in again.output


@pytest.mark.parametrize(
    ("month", "message"),
    [("2030-13", "Mois invalide"), ("septembre", "Mois invalide"), ("2030-10", "pas terminé")],
)
def test_cli_refuses_a_bad_month(app, runner, october, month, message):
    result = runner.invoke(args=["invoices", "issue", "--month", month])
    assert result.exit_code != 0
    assert message in result.output


def test_cli_stops_on_missing_tariffs_unless_told(app, runner, october):
    world = make_world(app)
    sport = make_activity(app, world.service_id, name="Multisport")
    account, (child,) = make_family(app)
    book(app, account.household_id, child, world.meal_id, world.year_id, date(2030, 9, 2))
    book(app, account.household_id, child, sport, world.year_id, date(2030, 9, 3))
    refused = runner.invoke(args=["invoices", "issue", "--month", "2030-09"])
    assert refused.exit_code != 0
    assert "Activités sans tarif en septembre 2030 : aucune facture émise." in refused.output
    assert "Multisport" in refused.output
    assert invoices_of(app, account.household_id) == []
    done = runner.invoke(args=["invoices", "issue", "--month", "2030-09", "--sans-tarif-ok"])
    assert done.exit_code == 0, done.output
    assert "1 facture émise, total 3,00\xa0€." in done.output
    assert "Multisport" in done.output and "1 jour, 1 famille" in done.output


# --- Demo -------------------------------------------------------------------------------------


def test_demo_tariffs_are_idempotent(app):
    from citoyens.billing.demo import DEMO_BANDS, seed_demo
    from citoyens.demo import seed_services

    with app.app_context():
        seed_services()
        created = seed_demo()
        assert created > 0
        assert seed_demo() == 0
        years = db.session.scalars(select(QfBand.school_year_id).distinct()).all()
        assert len(years) == 3
        for year_id in years:
            bands = tariffs.bands_of(year_id)
            assert [(b.label, b.qf_max) for b in bands] == DEMO_BANDS
            grid = tariffs.tariff_grid(db.session.get(SchoolYear, year_id))
            demo_rows = [
                row
                for group in grid.services
                for row in group.rows
                if group.service.code in ("aps", "restauration", "goulidons", "multiaccueil")
            ]
            assert demo_rows and all(row.complete for row in demo_rows)
        surcharges = dict(
            db.session.execute(select(Service.code, Service.walk_in_surcharge_cents)).all()
        )
        assert surcharges["aps"] == surcharges["restauration"] == 200


def test_price_rows_are_one_per_activity_and_band(app):
    """Guard for the demo and the forms: the table refuses a second price for a pair."""
    world = make_world(app)
    with app.app_context(), pytest.raises(IntegrityError):
        db.session.add(Price(activity_id=world.meal_id, band_id=world.band_ids[0], amount_cents=1))
        db.session.commit()
