"""Which days each activity opens, from the holiday table, closures and calendar kind.

The computation (`opening_days`) is pure; `generate_days` writes the rows for a
school year and keeps every row a booking stands on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

import holidays as public_holidays
from sqlalchemy import delete, exists, select
from vacances_scolaires_france import SchoolHolidayDates

from citoyens.extensions import db
from citoyens.reservations.models import ActivityDay, Booking, Closure, Holiday
from citoyens.services.models import Activity, SchoolYear

ZONE = "B"  # académie de Nantes


@dataclass(frozen=True)
class Period:
    starts_on: date
    ends_on: date
    reason: str = ""

    def __contains__(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


def days_between(first: date, last: date) -> Iterable[date]:
    for offset in range((last - first).days + 1):
        yield first + timedelta(days=offset)


def opening_days(
    *,
    weekdays: Iterable[int],
    calendar: str,
    first: date,
    last: date,
    public: set[date],
    school_holidays: list[Period],
    closures: list[Period],
) -> list[date]:
    """The activity's weekdays between `first` and `last` in the periods it runs in
    (DOMAIN.md "Calendar"): term time ("term"), school holidays ("holidays") or both;
    minus public holidays, minus closures."""
    wanted = set(weekdays)
    days = []
    for day in days_between(first, last):
        if day.isoweekday() not in wanted or day in public:
            continue
        in_holidays = any(day in period for period in school_holidays)
        if calendar == "term" and in_holidays:
            continue
        if calendar == "holidays" and not in_holidays:
            continue
        if any(day in period for period in closures):
            continue
        days.append(day)
    return days


# --- The holiday table -----------------------------------------------------------------------


def library_holidays(first: date, last: date) -> list[tuple[str, str, date, date]]:
    """(kind, name, starts_on, ends_on) from the shipped libraries, for the dates given.

    Public holidays in French from `holidays`; zone B school holidays from
    `vacances-scolaires-france`, whose days are gathered into periods. Years the
    library has not published are left out.
    """
    years = range(first.year, last.year + 1)
    rows = [
        ("public", name, day, day)
        for day, name in sorted(public_holidays.France(years=years, language="fr").items())
        if first <= day <= last
    ]
    source = SchoolHolidayDates()
    by_day: dict[date, str] = {}
    for year in years:
        if not source.min_year <= year <= source.max_year:
            continue
        for day, info in source.holidays_for_year_and_zone(year, ZONE).items():
            if first <= day <= last:
                by_day[day] = info["nom_vacances"]
    current: list | None = None
    for day in sorted(by_day):
        name = by_day[day]
        if current and current[1] == name and day - current[3] == timedelta(days=1):
            current[3] = day
            continue
        if current:
            rows.append(tuple(current))
        current = ["school", name, day, day]
    if current:
        rows.append(tuple(current))
    return rows


def seed_holidays(school_year: SchoolYear) -> int:
    """Add the libraries' holidays of a school year that the table does not have yet.

    A row staff corrected or deleted is never brought back by a re-run over the same
    start date (the pair kind + start date is unique).
    """
    existing = set(
        db.session.execute(
            select(Holiday.kind, Holiday.starts_on).where(
                Holiday.ends_on >= school_year.starts_on,
                Holiday.starts_on <= school_year.ends_on,
            )
        ).all()
    )
    added = 0
    for kind, name, starts_on, ends_on in library_holidays(
        school_year.starts_on, school_year.ends_on
    ):
        if (kind, starts_on) in existing:
            continue
        db.session.add(
            Holiday(kind=kind, name=name, starts_on=starts_on, ends_on=ends_on, source="library")
        )
        existing.add((kind, starts_on))
        added += 1
    db.session.flush()
    return added


def holidays_of(first: date, last: date) -> tuple[set[date], list[Period]]:
    """Public holiday dates and school holiday periods touching [first, last]."""
    rows = db.session.scalars(
        select(Holiday).where(Holiday.ends_on >= first, Holiday.starts_on <= last)
    ).all()
    public: set[date] = set()
    school: list[Period] = []
    for row in rows:
        if row.kind == "public":
            public.update(days_between(row.starts_on, row.ends_on))
        else:
            school.append(Period(row.starts_on, row.ends_on, row.name))
    return public, school


def closures_of(first: date, last: date) -> list[Closure]:
    return list(
        db.session.scalars(
            select(Closure).where(Closure.ends_on >= first, Closure.starts_on <= last)
        )
    )


def closures_for(activity: Activity, closures: list[Closure]) -> list[Period]:
    return [
        Period(closure.starts_on, closure.ends_on, closure.reason)
        for closure in closures
        if closure.service_id == activity.service_id and closure.activity_id in (None, activity.id)
    ]


@dataclass
class Generated:
    created: int = 0
    removed: int = 0
    closed: int = 0  # days closed that keep bookings (closures.recalculate cancels them)
    reopened: int = 0


def generate_days(school_year: SchoolYear, activities: list[Activity] | None = None) -> Generated:
    """Create the opening days of the school year's active activities.

    Days no longer open (a holiday added, a weekday removed, a closure) are deleted
    when no booking stands on them, and marked closed otherwise. Safe to run again.
    Capacity of existing days is left alone (staff may have changed one day's).
    """
    if activities is None:
        activities = list(db.session.scalars(select(Activity).where(Activity.active.is_(True))))
    first, last = school_year.starts_on, school_year.ends_on
    public, school = holidays_of(first, last)
    closures = closures_of(first, last)
    activity_ids = [activity.id for activity in activities]
    existing = {
        (row.activity_id, row.day): row
        for row in db.session.scalars(
            select(ActivityDay).where(
                ActivityDay.activity_id.in_(activity_ids),
                ActivityDay.school_year_id == school_year.id,
            )
        )
    }
    with_bookings = set(
        db.session.scalars(
            select(Booking.activity_day_id)
            .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
            .where(
                ActivityDay.activity_id.in_(activity_ids),
                ActivityDay.school_year_id == school_year.id,
            )
            .distinct()
        )
    )
    result = Generated()
    to_remove: list[int] = []
    for activity in activities:
        activity_closures = closures_for(activity, closures)
        open_days = set(
            opening_days(
                weekdays=activity.weekday_numbers,
                calendar=activity.calendar,
                first=first,
                last=last,
                public=public,
                school_holidays=school,
                closures=[],
            )
        )
        for day in sorted(open_days):
            row = existing.pop((activity.id, day), None)
            closure = next((period for period in activity_closures if day in period), None)
            if row is None:
                if closure is not None:
                    continue
                db.session.add(
                    ActivityDay(
                        activity_id=activity.id,
                        school_year_id=school_year.id,
                        day=day,
                        capacity=activity.capacity,
                    )
                )
                result.created += 1
            elif closure is not None and not row.closed:
                if row.id in with_bookings:
                    row.closed, row.closed_reason = True, closure.reason
                    result.closed += 1
                else:
                    to_remove.append(row.id)
            elif closure is None and row.closed:
                row.closed, row.closed_reason = False, None
                result.reopened += 1
    for (_activity_id, _day), row in existing.items():
        if row.id in with_bookings:
            if not row.closed:
                row.closed, row.closed_reason = True, "Jour de fermeture"
                result.closed += 1
        else:
            to_remove.append(row.id)
    if to_remove:
        # Only days nobody stands on, re-checked by the DELETE itself: a booking made since
        # the read above took a place (booked > 0, which PostgreSQL re-checks on the row
        # the booking updated) or left a row; such a day stays, to be closed next run.
        result.removed = db.session.execute(
            delete(ActivityDay)
            .where(
                ActivityDay.id.in_(to_remove),
                ActivityDay.booked == 0,
                ~exists().where(Booking.activity_day_id == ActivityDay.id),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
    db.session.flush()
    return result


def regenerate_all(today: date) -> Generated:
    """Regenerate the days of every active activity for the current and next school years
    (the migration to calendar periods calls it). Days that should no longer exist are
    deleted when nobody stands on them, else closed with their bookings kept, never
    cancelled: `off_calendar_bookings` lists them for staff to move or cancel."""
    years = db.session.scalars(
        select(SchoolYear)
        .where(SchoolYear.ends_on >= today)
        .order_by(SchoolYear.starts_on)
        .limit(2)
    ).all()
    total = Generated()
    for year in years:
        done = generate_days(year)
        total.created += done.created
        total.removed += done.removed
        total.closed += done.closed
        total.reopened += done.reopened
    return total


@dataclass
class OffCalendarDay:
    """A closed day some children still hold (booked or waiting): staff move or cancel."""

    day: ActivityDay
    bookings: list[Booking]


@dataclass
class OffCalendar:
    activity: Activity
    days: list[OffCalendarDay]


def off_calendar_bookings(school_year: SchoolYear, service_ids=None) -> list[OffCalendar]:
    """The days of the school year that are closed but keep live bookings (a day no longer
    in its activity's calendar after a regeneration), per activity, with the children.
    `service_ids`: only those services' (None: all). One query."""
    from sqlalchemy.orm import contains_eager

    from citoyens.households.models import Person

    query = (
        select(Booking)
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .join(Person, Person.id == Booking.child_id)
        .options(
            contains_eager(Booking.activity_day).contains_eager(ActivityDay.activity),
            contains_eager(Booking.child),
        )
        .where(
            ActivityDay.school_year_id == school_year.id,
            ActivityDay.closed.is_(True),
            Booking.status.in_(("booked", "waiting")),
        )
        .order_by(Activity.name, Activity.id, ActivityDay.day, Person.last_name, Person.id)
    )
    if service_ids is not None:
        query = query.where(Activity.service_id.in_(service_ids))
    result: dict[int, OffCalendar] = {}
    for booking in db.session.scalars(query):
        row = booking.activity_day
        entry = result.setdefault(row.activity_id, OffCalendar(row.activity, []))
        if not entry.days or entry.days[-1].day.id != row.id:
            entry.days.append(OffCalendarDay(row, []))
        entry.days[-1].bookings.append(booking)
    return list(result.values())
