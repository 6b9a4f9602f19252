"""What the staff calendar page shows of each activity's opening days in a school year."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import contains_eager

from citoyens.extensions import db
from citoyens.reservations.calendar import closures_for, closures_of, holidays_of, opening_days
from citoyens.reservations.models import ActivityDay
from citoyens.services.models import Activity, SchoolYear, Service


@dataclass
class ActivityDays:
    """An activity's days in a school year: open, closed (bookings kept), and how many
    would change if the opening days were calculated now."""

    activity: Activity
    open: int = 0
    closed: int = 0
    to_add: int = 0
    to_remove: int = 0

    @property
    def stale(self) -> bool:
        return bool(self.to_add or self.to_remove)


def days_overview(school_year: SchoolYear) -> list[ActivityDays]:
    """Every active activity with its day counts for the school year, and the difference
    with what `generate_days` would make of today's holidays and closures. Five queries."""
    activities = list(
        db.session.scalars(
            select(Activity)
            .join(Service, Service.id == Activity.service_id)
            .options(contains_eager(Activity.service))
            .where(Activity.active.is_(True))
            .order_by(Service.name, Activity.start_time, Activity.name)
        )
    )
    if not activities:
        return []
    first, last = school_year.starts_on, school_year.ends_on
    public, school = holidays_of(first, last)
    closures = closures_of(first, last)
    rows: dict[int, dict[date, bool]] = defaultdict(dict)
    for activity_id, day, closed in db.session.execute(
        select(ActivityDay.activity_id, ActivityDay.day, ActivityDay.closed).where(
            ActivityDay.school_year_id == school_year.id
        )
    ):
        rows[activity_id][day] = closed
    overview = []
    for activity in activities:
        days = rows.get(activity.id, {})
        open_now = {day for day, closed in days.items() if not closed}
        wanted = set(
            opening_days(
                weekdays=activity.weekday_numbers,
                calendar=activity.calendar,
                first=first,
                last=last,
                public=public,
                school_holidays=school,
                closures=closures_for(activity, closures),
            )
        )
        overview.append(
            ActivityDays(
                activity=activity,
                open=len(open_now),
                closed=len(days) - len(open_now),
                to_add=len(wanted - open_now),
                to_remove=len(open_now - wanted),
            )
        )
    return overview
