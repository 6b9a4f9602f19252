"""Factories for the reservation tests: a bookable offer (service, activities, school year,
holidays, opening days) and children with accepted enrolments.

Each commits in its own app context and returns ids. Dates are fixed (school year
2030-2031) so tests do not depend on today; pass `now` to the operations.
"""

from __future__ import annotations

import html
import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import select

from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.households.models import HouseholdMember, Person
from citoyens.reservations.calendar import generate_days
from citoyens.reservations.models import ActivityDay, Booking, Holiday
from citoyens.services.models import Activity, SchoolYear
from tests.enrolments_factories import make_school_year, make_service

_counter = itertools.count(1)

YEAR_START = date(2030, 9, 1)
# Well before any day of YEAR_START's school year: every day is modifiable.
EARLY = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)

# A few holidays of 2030-2031 (zone B style) so generation has something to skip.
HOLIDAYS = [
    ("school", "Vacances de la Toussaint", date(2030, 10, 19), date(2030, 11, 3)),
    ("school", "Vacances de Noël", date(2030, 12, 21), date(2031, 1, 5)),
    ("public", "Armistice", date(2030, 11, 11), date(2030, 11, 11)),
    ("public", "Lundi de Pâques", date(2031, 4, 14), date(2031, 4, 14)),
    ("school", "Vacances d'été", date(2031, 7, 5), date(2031, 8, 31)),
]


@dataclass
class Offer:
    service_id: int
    year_id: int
    activity_ids: list[int]


def make_holidays(app, rows=HOLIDAYS) -> None:
    with app.app_context():
        for kind, name, first, last in rows:
            exists = db.session.scalar(
                select(Holiday.id).where(Holiday.kind == kind, Holiday.starts_on == first)
            )
            if exists is None:
                db.session.add(Holiday(kind=kind, name=name, starts_on=first, ends_on=last))
        db.session.commit()


def make_bookable_offer(
    app,
    *,
    activities: int = 2,
    capacity: int = 30,
    weekdays: str = "1,2,4,5",
    calendar: str = "term",
    cutoff_hours: int = 72,
    starts: tuple[time, ...] = (time(7, 30), time(12, 0), time(16, 30)),
    generate: bool = True,
    **service,
) -> Offer:
    """A service with activities in school year 2030-2031, holidays and opening days."""
    service_id = make_service(app, **service)
    year_id = make_school_year(app, YEAR_START)
    make_holidays(app)
    ids = []
    with app.app_context():
        for index in range(activities):
            start = starts[index % len(starts)]
            activity = Activity(
                service_id=service_id,
                name=f"Activité {next(_counter)}",
                weekdays=weekdays,
                start_time=start,
                end_time=time(start.hour + 1, start.minute),
                capacity=capacity,
                cutoff_hours=cutoff_hours,
                calendar=calendar,
            )
            db.session.add(activity)
            db.session.flush()
            ids.append(activity.id)
        db.session.commit()
        if generate:
            generate_days(
                db.session.get(SchoolYear, year_id),
                list(db.session.scalars(select(Activity).where(Activity.id.in_(ids)))),
            )
            db.session.commit()
    return Offer(service_id, year_id, ids)


def children_of(app, household_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(HouseholdMember.person_id)
                .where(
                    HouseholdMember.household_id == household_id,
                    HouseholdMember.role == "child",
                )
                .order_by(HouseholdMember.id)
            )
        )


def add_child(app, household_id: int, first_name: str = "Zoé") -> int:
    with app.app_context():
        child = Person(first_name=first_name, last_name="Test", birth_date=date(2019, 5, 4))
        db.session.add(HouseholdMember(household_id=household_id, person=child, role="child"))
        db.session.commit()
        return child.id


def enrol_accepted(
    app, household_id: int, child_id: int, offer: Offer, activity_ids=None, status="accepted"
) -> int:
    """An accepted enrolment (or one of `status`) of the child in the offer's activities (all
    by default)."""
    with app.app_context():
        enrolment = Enrolment(
            household_id=household_id,
            child_id=child_id,
            service_id=offer.service_id,
            school_year_id=offer.year_id,
            status=status,
        )
        enrolment.activities = [
            EnrolmentActivity(activity_id=activity_id)
            for activity_id in (activity_ids or offer.activity_ids)
        ]
        db.session.add(enrolment)
        db.session.commit()
        return enrolment.id


def day_ids(app, activity_id: int, first: date | None = None, last: date | None = None):
    """The activity's opening day ids (and dates), in order."""
    with app.app_context():
        query = select(ActivityDay.id, ActivityDay.day).where(
            ActivityDay.activity_id == activity_id
        )
        if first:
            query = query.where(ActivityDay.day >= first)
        if last:
            query = query.where(ActivityDay.day <= last)
        return [tuple(row) for row in db.session.execute(query.order_by(ActivityDay.day))]


def day_row(app, activity_day_id: int) -> tuple[int, int, bool]:
    """(capacity, booked, closed) of an activity day."""
    with app.app_context():
        row = db.session.get(ActivityDay, activity_day_id)
        db.session.refresh(row)
        return row.capacity, row.booked, row.closed


def bookings_of(app, child_id: int) -> dict[int, str]:
    """activity day id -> status of the child's bookings."""
    with app.app_context():
        return dict(
            db.session.execute(
                select(Booking.activity_day_id, Booking.status).where(Booking.child_id == child_id)
            ).all()
        )


def set_capacity(app, activity_day_id: int, capacity: int) -> None:
    with app.app_context():
        db.session.get(ActivityDay, activity_day_id).capacity = capacity
        db.session.commit()


def text_of(response) -> str:
    """A page's text: tags dropped, entities decoded, spaces folded."""
    page = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(page))
