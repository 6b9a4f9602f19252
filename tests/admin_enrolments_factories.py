"""Factories for the back-office enrolment tests: school years, activities, enrolments.

Like tests/factories.py, each commits in its own app context and returns plain ids.
Enrolments are made directly (an Enrolment row and its request), so these tests do
not depend on the parent flow's rules.
"""

from __future__ import annotations

import itertools
from datetime import date, time

from citoyens.accounts.models import User
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.requests import operations as request_ops
from citoyens.requests.models import Request
from citoyens.services.models import Activity, SchoolYear, Service, ServiceDocument

_counter = itertools.count(1)


def make_year(app, start_year: int | None = None) -> int:
    """A school year; each call a different one (names are unique)."""
    n = next(_counter)
    start = start_year or 2100 + n
    with app.app_context():
        year = SchoolYear(
            name=f"{start}-{start + 1}",
            starts_on=date(start, 9, 1),
            ends_on=date(start + 1, 8, 31),
        )
        db.session.add(year)
        db.session.commit()
        return year.id


def make_activity(app, service_id: int, name: str | None = None, *, active: bool = True) -> int:
    n = next(_counter)
    with app.app_context():
        activity = Activity(
            service_id=service_id,
            name=name or f"Activité {n}",
            weekdays="1,2,4,5",
            start_time=time(7, 30),
            end_time=time(8, 30),
            capacity=20,
            active=active,
        )
        db.session.add(activity)
        db.session.commit()
        return activity.id


def configure_service(
    app, service_id: int, *, place_request: bool = False, document_type_ids=()
) -> None:
    with app.app_context():
        service = db.session.get(Service, service_id)
        service.place_request = place_request
        for type_id in document_type_ids:
            service.required_documents.append(ServiceDocument(document_type_id=type_id))
        db.session.commit()


def make_enrolment(
    app,
    household_id: int,
    child_id: int,
    service_id: int,
    year_id: int,
    *,
    activity_ids=(),
    by: int | None = None,
    place: bool = False,
) -> int:
    """A pending enrolment with its request ("enrolment", or "place_request" if `place`)."""
    with app.app_context():
        actor = db.session.get(User, by) if by else None
        request = request_ops.open_request(
            "place_request" if place else "enrolment",
            household_id,
            "Demande de place" if place else "Inscription",
            actor=actor,
            service_id=service_id,
            person_id=child_id,
        )
        enrolment = Enrolment(
            request_id=request.id,
            household_id=household_id,
            child_id=child_id,
            service_id=service_id,
            school_year_id=year_id,
            status="pending",
            created_by_id=by,
        )
        if place:
            enrolment.wished_start_on = date(2100, 1, 5)
            enrolment.days_per_week = 3
            enrolment.hours_per_week = 24
            enrolment.comments = "Le mardi de préférence"
        for activity_id in activity_ids:
            enrolment.activities.append(EnrolmentActivity(activity_id=activity_id))
        db.session.add(enrolment)
        db.session.commit()
        return enrolment.id


def enrolment_state(app, enrolment_id: int) -> tuple[str, str | None]:
    """The enrolment's status and its request's, read afresh."""
    with app.app_context():
        enrolment = db.session.get(Enrolment, enrolment_id)
        request = db.session.get(Request, enrolment.request_id) if enrolment.request_id else None
        return enrolment.status, request.status if request else None


def request_of(app, enrolment_id: int) -> int | None:
    with app.app_context():
        return db.session.get(Enrolment, enrolment_id).request_id
