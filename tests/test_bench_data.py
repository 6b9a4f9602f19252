"""`flask bench-data` (issue 15): a realistic commune, consistent with what the app writes."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.bench_data import BENCH_PASSWORD, REF_PREFIX, BenchDataError, generate
from citoyens.billing.models import BilledDay, Invoice, InvoiceCounter, InvoiceLine, Payment
from citoyens.billing.months import previous_month
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households.models import Household, HouseholdMember
from citoyens.reservations.models import ActivityDay, Booking


def _bench_households() -> list[int]:
    return list(
        db.session.scalars(
            select(Household.id).where(Household.external_ref.like(f"{REF_PREFIX}%"))
        )
    )


def test_generates_a_consistent_commune(app, client, auth):
    today = today_in_paris()
    with app.test_request_context():
        result = generate(30)
        households = _bench_households()
        assert result.households == len(households) == 30
        members = Counter(
            (household_id, role)
            for household_id, role in db.session.execute(
                select(HouseholdMember.household_id, HouseholdMember.role).where(
                    HouseholdMember.household_id.in_(households)
                )
            )
        )
        for household_id in households:
            assert 1 <= members[(household_id, "adult")] <= 2
            assert 1 <= members[(household_id, "child")] <= 4
        accounts = db.session.execute(
            select(User.household_id, User.person_id, User.role).where(
                User.household_id.in_(households)
            )
        ).all()
        assert len(accounts) == 30 and {role for *_ids, role in accounts} == {"parent"}
        adults = set(
            db.session.execute(
                select(HouseholdMember.household_id, HouseholdMember.person_id).where(
                    HouseholdMember.role == "adult"
                )
            ).all()
        )
        assert all((household_id, person_id) in adults for household_id, person_id, _ in accounts)

        # Enrolments and bookings: a child of the household, never after today, attendance
        # on past days only, and the opening days count what is booked.
        children = set(
            db.session.execute(
                select(HouseholdMember.household_id, HouseholdMember.person_id).where(
                    HouseholdMember.role == "child"
                )
            ).all()
        )
        enrolments = db.session.execute(
            select(Enrolment.household_id, Enrolment.child_id, Enrolment.status).where(
                Enrolment.household_id.in_(households)
            )
        ).all()
        assert len(enrolments) == result.enrolments > 0
        assert all((h, c) in children and s == "accepted" for h, c, s in enrolments)
        bookings = db.session.execute(
            select(
                Booking.household_id,
                Booking.child_id,
                Booking.day,
                ActivityDay.day,
                Booking.attendance,
            )
            .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
            .where(Booking.household_id.in_(households))
        ).all()
        assert len(bookings) == result.bookings > 100
        for household_id, child_id, day, activity_day, attendance in bookings:
            assert (household_id, child_id) in children
            assert day == activity_day and day <= today
            assert attendance is None or day < today
        assert any(attendance == "present" for *_rest, attendance in bookings)
        off = db.session.scalar(
            select(func.count())
            .select_from(ActivityDay)
            .where(
                ActivityDay.booked
                != select(func.count())
                .where(
                    Booking.activity_day_id == ActivityDay.id,
                    Booking.status.in_(("booked", "walk_in")),
                )
                .scalar_subquery()
            )
        )
        assert off == 0

        # Past invoices: months before last only, totals = lines, one billed day per day
        # billed, numbers gapless up to the counter; nine in ten paid.
        invoices = db.session.scalars(
            select(Invoice).where(Invoice.household_id.in_(households))
        ).all()
        assert len(invoices) == result.invoices > 0
        assert max(invoice.month for invoice in invoices) < previous_month(today)
        for invoice in invoices:
            assert invoice.total_cents == sum(line.amount_cents for line in invoice.lines)
        quantities = db.session.scalar(
            select(func.sum(InvoiceLine.quantity))
            .join(Invoice, Invoice.id == InvoiceLine.invoice_id)
            .where(Invoice.household_id.in_(households))
        )
        billed = db.session.scalar(
            select(func.count())
            .select_from(BilledDay)
            .where(BilledDay.household_id.in_(households))
        )
        assert billed == quantities == result.billed_days
        for counter in db.session.scalars(select(InvoiceCounter)):
            sequences = sorted(
                db.session.scalars(select(Invoice.sequence).where(Invoice.year == counter.year))
            )
            assert sequences == list(range(1, counter.last_number + 1))
        paid = db.session.scalars(
            select(Payment.invoice_id).where(Payment.household_id.in_(households))
        ).all()
        assert 0 < len(paid) == result.payments
        assert all(invoice.status == "paid" for invoice in invoices if invoice.id in set(paid))

        # Again without --append: refused; with it, 30 more.
        with pytest.raises(BenchDataError, match="--append"):
            generate(5)
        generate(5, append=True)
        assert len(_bench_households()) == 35
        email = db.session.scalar(
            select(User.email)
            .join(Household, Household.id == User.household_id)
            .where(Household.external_ref == f"{REF_PREFIX}0000001")
        )
        child_id = db.session.scalar(
            select(HouseholdMember.person_id)
            .join(Household, Household.id == HouseholdMember.household_id)
            .where(
                Household.external_ref == f"{REF_PREFIX}0000001", HouseholdMember.role == "child"
            )
            .limit(1)
        )

    # The family's pages render.
    response = auth.login(email=email, password=BENCH_PASSWORD)
    assert response.status_code == 303 and "connexion" not in response.headers["Location"]
    for path in (
        "/tableau-de-bord",
        "/reservations/",
        f"/reservations/enfant/{child_id}",
        "/factures",
        "/mon-foyer",
    ):
        assert client.get(path).status_code == 200, path


def test_refuses_the_production_configuration(app, runner, monkeypatch):
    monkeypatch.setitem(app.config, "PRODUCTION", True)
    with app.app_context():
        with pytest.raises(BenchDataError, match="production"):
            generate(3)
        assert _bench_households() == []
    result = runner.invoke(args=["bench-data", "--households", "3"])
    assert result.exit_code != 0 and "production" in result.output


def test_a_big_commune_has_several_sites(app, monkeypatch):
    """Every SITE_HOUSEHOLDS households make a site: a copy of each demo activity, with its
    prices and opening days; a household's children book at their own site."""
    from citoyens import bench_data
    from citoyens.billing.models import Price
    from citoyens.enrolments.models import EnrolmentActivity
    from citoyens.services.models import Activity

    monkeypatch.setattr(bench_data, "SITE_HOUSEHOLDS", 10)
    with app.test_request_context():
        generate(25)
        activities = {a.name: a for a in db.session.scalars(select(Activity))}
        bases = [name for name in activities if " · site " not in name]
        copies = [name for name in activities if " · site " in name]
        assert sorted(copies) == sorted(
            f"{name} · site {site}" for name in bases for site in (2, 3)
        )

        def days_and_prices(activity_id):
            days = db.session.execute(
                select(ActivityDay.day, ActivityDay.capacity, ActivityDay.closed)
                .where(ActivityDay.activity_id == activity_id)
                .order_by(ActivityDay.day)
            ).all()
            prices = db.session.execute(
                select(Price.band_id, Price.amount_cents)
                .where(Price.activity_id == activity_id)
                .order_by(Price.band_id)
            ).all()
            return days, prices

        canteen = activities["Repas du midi"]
        copy = activities["Repas du midi · site 3"]
        base_days, base_prices = days_and_prices(canteen.id)
        copy_days, copy_prices = days_and_prices(copy.id)
        assert base_prices and copy_prices == base_prices
        # Same opening days (capacities differ only where the base was overbooked).
        assert [d[0] for d in copy_days] == [d[0] for d in base_days]
        assert (copy.service_id, copy.weekdays, copy.capacity) == (
            canteen.service_id,
            canteen.weekdays,
            canteen.capacity,
        )

        # Households 21-25 (site 3) hold only site-3 activities, and book only there.
        site_of = {}
        for number, household_id in db.session.execute(
            select(Household.external_ref, Household.id).where(
                Household.external_ref.like(f"{REF_PREFIX}%")
            )
        ):
            site_of[household_id] = (int(number.removeprefix(REF_PREFIX)) - 1) // 10 + 1
        held = db.session.execute(
            select(Enrolment.household_id, Activity.name)
            .join(EnrolmentActivity, EnrolmentActivity.enrolment_id == Enrolment.id)
            .join(Activity, Activity.id == EnrolmentActivity.activity_id)
            .where(Enrolment.household_id.in_(site_of))
        ).all()
        assert {site_of[h] for h, _ in held} == {1, 2, 3}

        def at_home(household_id: int, name: str) -> bool:
            site = site_of[household_id]
            return name.endswith(f" · site {site}") if site > 1 else " · site " not in name

        assert all(at_home(h, name) for h, name in held)
        booked = db.session.execute(
            select(Booking.household_id, Activity.name)
            .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
            .join(Activity, Activity.id == ActivityDay.activity_id)
            .where(Booking.household_id.in_(site_of))
        ).all()
        assert booked and all(at_home(h, name) for h, name in booked)
