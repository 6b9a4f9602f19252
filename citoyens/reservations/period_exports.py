"""Attendance over a period, for the staff: one activity (or every activity of a service)
from one date to another. Registered as the export "presences" (`citoyens.export_jobs`).

- Sheet « Présences »: one row per child and day: the booking's status and the attendance
  pointed, and the medical certificate of a justified absence. Every booking of the
  period is there except cancellations made in time (they left no trace to count): a
  late cancellation is billed, so it is listed.
- Sheet « Synthèse par enfant » (XLSX only: a CSV holds one table): per child and
  activity, the days booked, present, absent, justified, not pointed, the walk-ins and
  the late cancellations.

Two queries whatever the number of rows (one per sheet), plus one COUNT to decide whether
the file is streamed or built by the worker. The view checks the scope: the parameters
name an activity or a service the staff member works for.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, case, func, or_, select

from citoyens import export_jobs
from citoyens.documents.models import DOCUMENT_STATUSES, Document
from citoyens.extensions import db
from citoyens.formatting import date_fr
from citoyens.households.models import Person
from citoyens.reservations.exports import attendance_label, status_label
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.reservations.staff import today
from citoyens.services.models import DAY_NAMES, Activity, Service
from citoyens.tabular import Sheet, slug

NAME = "presences"
NOT_POINTED = "Non pointé"

DETAIL_COLUMNS = [
    "Date",
    "Jour",
    "Activité",
    "Nom",
    "Prénom",
    "Classe",
    "Réservation",
    "Présence",
    "Certificat médical",
]
SUMMARY_COLUMNS = [
    "Nom",
    "Prénom",
    "Classe",
    "Activité",
    "Jours réservés",
    "Présent",
    "Absent",
    "Absent justifié",
    "Non pointé",
    "Sans réservation",
    "Annulé hors délai",
]


@dataclass(frozen=True)
class Period:
    """What to export: a service, or one of its activities, from `first` to `last`."""

    service_id: int
    activity_id: int | None
    first: date
    last: date

    @classmethod
    def of(cls, params: dict) -> Period:
        return cls(
            int(params["service_id"]),
            int(params["activity_id"]) if params.get("activity_id") else None,
            date.fromisoformat(params["starts_on"]),
            date.fromisoformat(params["ends_on"]),
        )

    def params(self) -> dict:
        return {
            "service_id": self.service_id,
            "activity_id": self.activity_id,
            "starts_on": self.first.isoformat(),
            "ends_on": self.last.isoformat(),
        }

    def where(self) -> list:
        """The conditions on ActivityDay, Activity and Booking (joined) of its rows."""
        target = (
            Activity.id == self.activity_id
            if self.activity_id is not None
            else Activity.service_id == self.service_id
        )
        return [
            target,
            Activity.service_id == self.service_id,
            ActivityDay.day >= self.first,
            ActivityDay.day <= self.last,
            # A cancellation in time is gone; a late one is billed, so it counts.
            or_(Booking.status != "cancelled", Booking.late.is_(True)),
        ]


def _joined(query):
    return query.join(ActivityDay, ActivityDay.id == Booking.activity_day_id).join(
        Activity, Activity.id == ActivityDay.activity_id
    )


def count_rows(params: dict) -> int:
    """The rows of the « Présences » sheet. One query."""
    period = Period.of(params)
    return db.session.scalar(_joined(select(func.count(Booking.id))).where(*period.where())) or 0


def _detail_rows(period: Period) -> Iterator[list]:
    on = today()
    query = (
        _joined(
            select(
                ActivityDay.day,
                Activity.name,
                Person.last_name,
                Person.first_name,
                Person.class_level,
                Booking.status,
                Booking.late,
                Booking.attendance,
                Document.status,
            )
        )
        .join(Person, Person.id == Booking.child_id)
        .outerjoin(Document, Document.id == Booking.certificate_id)
        .where(*period.where())
        .order_by(
            ActivityDay.day,
            Activity.start_time,
            Activity.name,
            Person.last_name,
            Person.first_name,
            Booking.id,
        )
        .execution_options(yield_per=1000)
    )
    for row in db.session.execute(query):
        day, activity, last_name, first_name, level, status, late, attendance, certificate = row
        presence = attendance_label(attendance)
        if status == "booked" and not attendance and day <= on:
            presence = NOT_POINTED
        yield [
            day,
            DAY_NAMES[day.isoweekday()],
            activity,
            last_name,
            first_name,
            level,
            status_label(status, late),
            presence,
            DOCUMENT_STATUSES.get(certificate, "") if certificate else "",
        ]


def _summary_rows(period: Period) -> Iterator[list]:
    booked = Booking.status == "booked"

    def tally(*conditions):
        return func.sum(case((and_(*conditions), 1), else_=0))

    query = (
        _joined(
            select(
                Person.last_name,
                Person.first_name,
                Person.class_level,
                Activity.name,
                tally(booked),
                tally(booked, Booking.attendance == "present"),
                tally(booked, Booking.attendance == "absent"),
                tally(booked, Booking.attendance == "excused"),
                tally(booked, Booking.attendance.is_(None), ActivityDay.day <= today()),
                tally(Booking.status == "walk_in"),
                tally(Booking.status == "cancelled", Booking.late.is_(True)),
            )
        )
        .join(Person, Person.id == Booking.child_id)
        .where(*period.where())
        .group_by(
            Person.id,
            Person.last_name,
            Person.first_name,
            Person.class_level,
            Activity.id,
            Activity.name,
        )
        .order_by(Person.last_name, Person.first_name, Person.id, Activity.name, Activity.id)
    )
    for row in db.session.execute(query):
        yield [*row[:4], *(int(value or 0) for value in row[4:])]


def sheets(params: dict) -> list[Sheet]:
    """The detail, then the summary per child (rows read as the file is written)."""
    period = Period.of(params)
    return [
        Sheet("Présences", DETAIL_COLUMNS, _detail_rows(period)),
        Sheet("Synthèse par enfant", SUMMARY_COLUMNS, _summary_rows(period)),
    ]


def _target_name(period: Period) -> str:
    if period.activity_id is not None:
        return db.session.scalar(select(Activity.name).where(Activity.id == period.activity_id))
    return db.session.scalar(select(Service.name).where(Service.id == period.service_id))


def title(params: dict) -> str:
    period = Period.of(params)
    name = _target_name(period) or "?"
    return f"Présences — {name}, du {date_fr(period.first)} au {date_fr(period.last)}"


def filename(params: dict) -> str:
    period = Period.of(params)
    name = slug(_target_name(period) or "", "activite")[:40]
    return f"presences-{name}-{period.first}-{period.last}"


export_jobs.register(NAME, sheets=sheets, count=count_rows, title=title, filename=filename)
