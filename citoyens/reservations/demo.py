"""Demo data of the reservations, called by citoyens.demo.seed (idempotent)."""

from __future__ import annotations

from sqlalchemy import select

from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.reservations.calendar import generate_days, seed_holidays
from citoyens.services.models import Activity, SchoolYear, Service

# The demo family: Léa at the APS (morning and evening), Hugo at the canteen. Léa's
# canteen enrolment is left for the visitor to try (tests/test_browser_enrolment.py).
DEMO_ENROLMENTS = {
    "Léa": ("aps",),
    "Hugo": ("restauration",),
}


def seed_demo() -> int:
    """Holidays and opening days of the demo school years, and the demo family's
    accepted enrolments for 2026-2027 so its calendar can be tried at once."""
    created = 0
    years = list(db.session.scalars(select(SchoolYear).order_by(SchoolYear.starts_on)))
    for year in years:
        created += seed_holidays(year)
        created += generate_days(year).created
    household = db.session.scalar(select(Household).where(Household.external_ref == "DEMO-0001"))
    year = next((y for y in years if y.name == "2026-2027"), None)
    if household is None or year is None:
        return created
    services = {s.code: s for s in db.session.scalars(select(Service))}
    children = {
        person.first_name: person
        for person in db.session.scalars(
            select(Person)
            .join(HouseholdMember, HouseholdMember.person_id == Person.id)
            .where(HouseholdMember.household_id == household.id, HouseholdMember.role == "child")
        )
    }
    existing = set(
        db.session.execute(
            select(Enrolment.child_id, Enrolment.service_id).where(
                Enrolment.school_year_id == year.id
            )
        ).all()
    )
    for first_name, wanted in DEMO_ENROLMENTS.items():
        child = children.get(first_name)
        for code in wanted:
            service = services.get(code)
            if child is None or service is None or (child.id, service.id) in existing:
                continue
            activities = db.session.scalars(
                select(Activity.id).where(Activity.service_id == service.id)
            ).all()
            enrolment = Enrolment(
                household_id=household.id,
                child_id=child.id,
                service_id=service.id,
                school_year_id=year.id,
                status="accepted",
            )
            enrolment.activities = [EnrolmentActivity(activity_id=a) for a in activities]
            db.session.add(enrolment)
            created += 1
    db.session.flush()
    return created + _book_next_weeks(household.id, [c.id for c in children.values()])


def _book_next_weeks(household_id: int, child_ids: list[int], weeks: int = 4) -> int:
    """The demo children are booked for the next four weeks of their activities, so the
    calendars and the staff call lists show something (only while they have no booking)."""
    from datetime import timedelta

    from citoyens.forms import today_in_paris
    from citoyens.reservations.models import Booking

    if db.session.scalar(select(Booking.id).where(Booking.child_id.in_(child_ids)).limit(1)):
        return 0
    today = today_in_paris()
    return book_entitled_days(household_id, child_ids, today, today + timedelta(weeks=weeks))


def book_entitled_days(
    household_id: int, child_ids: list[int], first, last, *, staff: bool = False
) -> int:
    """Book each child on every open day between `first` and `last` of the activities it
    is enrolled in (`staff`: as staff would, past the cut-off too); how many were booked."""
    from citoyens.reservations.models import ActivityDay
    from citoyens.reservations.operations import book_days
    from citoyens.reservations.rules import entitlements

    booked = 0
    for item in entitlements(child_ids, first, last):
        day_ids = db.session.scalars(
            select(ActivityDay.id).where(
                ActivityDay.activity_id == item.activity.id,
                ActivityDay.school_year_id == item.school_year_id,
                ActivityDay.day >= first,
                ActivityDay.day <= last,
                ActivityDay.closed.is_(False),
            )
        ).all()
        outcome = book_days(
            household_id,
            item.child_id,
            day_ids,
            actor=None,
            staff=staff,
            entitled_ids={item.activity.id},
        )
        booked += len(outcome.booked)
    return booked
