"""Factories for the enrolment tests: services, activities, school years, windows, documents.

Each commits in its own app context and returns ids (no app context stays pushed
while the test client makes requests). Nothing relies on the demo data.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from sqlalchemy import func, select

from citoyens.documents.rules import today_in_paris
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.households.models import Person
from citoyens.requests.models import Request
from citoyens.services.models import (
    Activity,
    EnrolmentWindow,
    School,
    SchoolYear,
    Service,
    ServiceDocument,
)

_counter = itertools.count(1)


def make_service(
    app,
    *,
    name: str | None = None,
    category: str = "enfance",
    mailbox: str | None = "service-tests@example.org",
    min_age_months: int | None = None,
    max_age_months: int | None = None,
    school_levels: str | None = None,
    excludes_private_school: bool = False,
    place_request: bool = False,
    active: bool = True,
    document_type_ids: tuple[int, ...] = (),
) -> int:
    n = next(_counter)
    with app.app_context():
        service = Service(
            code=f"service-{n}",
            name=name or f"Service test {n}",
            category=category,
            mailbox=mailbox,
            min_age_months=min_age_months,
            max_age_months=max_age_months,
            school_levels=school_levels,
            excludes_private_school=excludes_private_school,
            place_request=place_request,
            active=active,
        )
        service.required_documents = [
            ServiceDocument(document_type_id=type_id) for type_id in document_type_ids
        ]
        db.session.add(service)
        db.session.commit()
        return service.id


def make_activity(
    app,
    service_id: int,
    *,
    name: str | None = None,
    weekdays: str = "1,2,4,5",
    start: time = time(11, 45),
    end: time = time(13, 30),
    capacity: int = 100,
    active: bool = True,
) -> int:
    with app.app_context():
        activity = Activity(
            service_id=service_id,
            name=name or f"Activité {next(_counter)}",
            weekdays=weekdays,
            start_time=start,
            end_time=end,
            capacity=capacity,
            active=active,
        )
        db.session.add(activity)
        db.session.commit()
        return activity.id


def next_school_year_start(today: date | None = None) -> date:
    """The next 1 September strictly after today: a school year still to come."""
    today = today or today_in_paris()
    return date(today.year + 1 if today >= date(today.year, 9, 1) else today.year, 9, 1)


def make_school_year(app, starts_on: date | None = None) -> int:
    """The school year starting on `starts_on` (the next one by default), made once."""
    starts_on = starts_on or next_school_year_start()
    with app.app_context():
        existing = db.session.scalar(select(SchoolYear.id).where(SchoolYear.starts_on == starts_on))
        if existing is not None:
            return existing
        year = SchoolYear(
            name=f"{starts_on.year}-{starts_on.year + 1}",
            starts_on=starts_on,
            ends_on=date(starts_on.year + 1, 8, 31),
        )
        db.session.add(year)
        db.session.commit()
        return year.id


def make_window(
    app,
    service_id: int,
    school_year_id: int,
    *,
    opens_on: date | None = None,
    closes_on: date | None = None,
) -> int:
    today = today_in_paris()
    with app.app_context():
        window = EnrolmentWindow(
            service_id=service_id,
            school_year_id=school_year_id,
            opens_on=opens_on or today - timedelta(days=10),
            closes_on=closes_on or today + timedelta(days=30),
        )
        db.session.add(window)
        db.session.commit()
        return window.id


def make_private_school(app, contact: str = "OGEC Saint-Joseph, 02 41 00 00 00") -> int:
    with app.app_context():
        school = School(
            name=f"École privée {next(_counter)}", kind="private", canteen_contact=contact
        )
        db.session.add(school)
        db.session.commit()
        return school.id


def update_child(app, person_id: int, **fields) -> None:
    with app.app_context():
        person = db.session.get(Person, person_id)
        for key, value in fields.items():
            setattr(person, key, value)
        db.session.commit()


@dataclass
class Offer:
    """A service open for enrolment this year: its activities, year and window."""

    service_id: int
    year_id: int
    activity_ids: list[int] = field(default_factory=list)
    window_id: int | None = None


def make_offer(app, *, activities: int = 2, year_id: int | None = None, **service) -> Offer:
    """A service with activities, a school year to come and an enrolment window open today."""
    service_id = make_service(app, **service)
    year_id = year_id or make_school_year(app)
    activity_ids = [make_activity(app, service_id) for _ in range(activities)]
    window_id = make_window(app, service_id, year_id)
    return Offer(service_id, year_id, activity_ids, window_id)


def enrolments_of(app, household_id: int) -> list[tuple]:
    """(child, service, year, status, request_id, activity ids) of the household's enrolments."""
    with app.app_context():
        rows = db.session.scalars(
            select(Enrolment).where(Enrolment.household_id == household_id).order_by(Enrolment.id)
        ).all()
        return [
            (
                e.child_id,
                e.service_id,
                e.school_year_id,
                e.status,
                e.request_id,
                sorted(a.activity_id for a in e.activities),
            )
            for e in rows
        ]


def counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            name: db.session.scalar(select(func.count()).select_from(model))
            for name, model in {
                "enrolments": Enrolment,
                "enrolment_activities": EnrolmentActivity,
                "requests": Request,
            }.items()
        }
