"""The staff side of the reservations: the week's capacity overview, one day's list,
the children who may be pointed present without a reservation, and the clock.

Plain queries (no HTTP, no templates); the back office calls them. Each page runs a
fixed number of queries, whatever the number of activities, days and bookings.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import contains_eager, joinedload

from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.formatting import day_fr, month_fr
from citoyens.forms import PARIS, parse_query_month, parse_query_week
from citoyens.households.directory import household_names
from citoyens.households.models import Person
from citoyens.reservations import rules
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import CLASS_LEVELS, Activity, Service, StaffService
from citoyens.services.rules import service_ids_for

# --- Clock ------------------------------------------------------------------------------------


def now() -> datetime:
    """The clock of the staff pages (UTC). Tests patch this function, or `rules.now_utc`."""
    return rules.now_utc()


def today() -> date:
    return now().astimezone(PARIS).date()


# "lundi 2 septembre 2030" and "septembre 2030", from Babel's French data.
day_label = day_fr
month_label = month_fr


def week_of(value: str | None, today_: date) -> date:
    """The Monday of the week of `value` ("2030-09-04"); the current week when blank.
    A value out of range or not a date is refused (RefusedInput, a French 400)."""
    return parse_query_week(value) or today_ - timedelta(days=today_.weekday())


def parse_month(value: str | None, today_: date) -> date:
    """ "2030-09" → its first day; blank → this month; else RefusedInput (a French 400)."""
    return parse_query_month(value) or today_.replace(day=1)


def shift_month(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


# --- Scope ------------------------------------------------------------------------------------


def visible_services(user) -> list[Service]:
    """The services whose reservations the user sees: all for administrators. One query."""
    query = select(Service).order_by(Service.active.desc(), Service.name, Service.id)
    if not user.is_admin:
        query = query.join(StaffService, StaffService.service_id == Service.id).where(
            StaffService.user_id == user.id
        )
    return list(db.session.scalars(query))


# --- The week's overview ----------------------------------------------------------------------


@dataclass
class OverviewCell:
    day: ActivityDay
    waiting: int = 0
    walk_ins: int = 0

    @property
    def full(self) -> bool:
        return self.day.booked >= self.day.capacity


@dataclass
class OverviewRow:
    activity: Activity
    service: Service
    cells: dict[date, OverviewCell] = field(default_factory=dict)


@dataclass
class Overview:
    monday: date
    days: list[date]
    services: list[Service]  # what the filter offers
    service_id: int | None  # the one chosen, if any
    rows: list[OverviewRow]

    @property
    def previous_week(self) -> date:
        return self.monday - timedelta(days=7)

    @property
    def next_week(self) -> date:
        return self.monday + timedelta(days=7)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)


def week_overview(user, monday: date, service_id: int | None = None) -> Overview:
    """Activities (rows) × days of the week (columns) of the user's services: booked,
    capacity, waiting children, walk-ins. Four queries whatever the counts."""
    services = visible_services(user)
    by_id = {service.id: service for service in services}
    chosen = service_id if service_id in by_id else None
    shown = [chosen] if chosen is not None else list(by_id)
    sunday = monday + timedelta(days=6)
    week = [monday + timedelta(days=offset) for offset in range(7)]
    if not shown:
        return Overview(monday, week[:5], services, None, [])
    in_week = (ActivityDay.day >= monday, ActivityDay.day <= sunday)
    activities = list(
        db.session.scalars(
            select(Activity).where(
                Activity.service_id.in_(shown),
                or_(
                    Activity.active.is_(True),
                    Activity.id.in_(select(ActivityDay.activity_id).where(*in_week)),
                ),
            )
        )
    )
    order = {sid: index for index, sid in enumerate(by_id)}
    activities.sort(key=lambda a: (order[a.service_id], a.start_time, a.name.casefold(), a.id))
    days = (
        list(
            db.session.scalars(
                select(ActivityDay).where(
                    ActivityDay.activity_id.in_([a.id for a in activities]), *in_week
                )
            )
        )
        if activities
        else []
    )
    counts = rules.booking_counts([row.id for row in days])
    rows = {a.id: OverviewRow(a, by_id[a.service_id]) for a in activities}
    for row in days:
        tally = counts.get(row.id, {})
        rows[row.activity_id].cells[row.day] = OverviewCell(
            row, tally.get("waiting", 0), tally.get("walk_in", 0)
        )
    weekend = {row.day for row in days if row.day.weekday() >= 5}
    columns = [day for day in week if day.weekday() < 5 or day in weekend]
    return Overview(monday, columns, services, chosen, list(rows.values()))


# --- One day ----------------------------------------------------------------------------------


def activity_day(activity_day_id: int) -> ActivityDay | None:
    """The day with its activity and service (the caller checks the scope). One query."""
    return db.session.scalar(
        select(ActivityDay)
        .options(joinedload(ActivityDay.activity).joinedload(Activity.service))
        .where(ActivityDay.id == activity_day_id)
    )


def visible_day(user, activity_day_id: int) -> tuple[ActivityDay | None, bool]:
    """(the day or None, whether the user may see it)."""
    row = activity_day(activity_day_id)
    if row is None:
        return None, False
    allowed = service_ids_for(user)
    return row, allowed is None or row.activity.service_id in allowed


def _by_name(booking: Booking):
    child = booking.child
    return (child.last_name.casefold(), child.first_name.casefold(), child.id)


@dataclass
class DaySheet:
    """Who is expected on an activity day: the children booked or come without booking
    (by name), then the waiting list (first come, first served)."""

    day: ActivityDay
    present: list[Booking]
    waiting: list[Booking]

    @property
    def activity(self) -> Activity:
        return self.day.activity

    @property
    def booked_count(self) -> int:
        return sum(1 for booking in self.present if booking.status == "booked")

    @property
    def walk_in_count(self) -> int:
        return sum(1 for booking in self.present if booking.status == "walk_in")

    @property
    def class_levels(self) -> list[str]:
        """The classes of the children expected, for the filter of a long list."""
        levels = {b.child.class_level for b in self.present if b.child.class_level}
        return sorted(levels, key=lambda level: (CLASS_ORDER.get(level, 99), level))

    def of_class(self, level: str | None) -> list[Booking]:
        """The children of one class; everyone when no class is given."""
        if not level:
            return self.present
        return [b for b in self.present if b.child.class_level == level]


LISTED_STATUSES = ("booked", "walk_in", "waiting")
CLASS_ORDER = {level: n for n, level in enumerate(CLASS_LEVELS)}


def day_sheet(row: ActivityDay) -> DaySheet:
    """The day's children with what the list shows of them (class, allergies, PAI, diet).
    One query."""
    bookings = list(
        db.session.scalars(
            select(Booking)
            .options(joinedload(Booking.child))
            .where(Booking.activity_day_id == row.id, Booking.status.in_(LISTED_STATUSES))
        )
    )
    present = sorted((b for b in bookings if b.status != "waiting"), key=_by_name)
    waiting = sorted(
        (b for b in bookings if b.status == "waiting"),
        key=lambda b: (b.waiting_since or b.created_at, b.id),
    )
    return DaySheet(row, present, waiting)


def day_booking(activity_day_id: int, booking_id: int) -> Booking | None:
    """One booking of that day, with its child; None for another day's (→ 404)."""
    return db.session.scalar(
        select(Booking)
        .options(joinedload(Booking.child))
        .where(Booking.id == booking_id, Booking.activity_day_id == activity_day_id)
    )


@dataclass
class WalkInChoice:
    enrolment_id: int
    household_id: int
    child: Person
    label: str


def walk_in_choices(row: ActivityDay, enrolment_id: int | None = None) -> list[WalkInChoice]:
    """Children with an accepted enrolment in the day's activity for its school year who
    are not on the day's list yet: who may be pointed "présent sans réservation".

    One choice per enrolment: the enrolment's household is the one billed (a child with
    two homes may have two). Three queries at most.
    """
    listed = select(Booking.child_id).where(
        Booking.activity_day_id == row.id, Booking.status.in_(("booked", "walk_in"))
    )
    # The activity's enrolments first, by its index: joined in one statement, PostgreSQL
    # reads every enrolment of a big commune (a hash join) rather than these few by id.
    enrolment_ids = select(EnrolmentActivity.enrolment_id).where(
        EnrolmentActivity.activity_id == row.activity_id
    )
    if enrolment_id is not None:
        enrolment_ids = enrolment_ids.where(EnrolmentActivity.enrolment_id == enrolment_id)
    ids = list(db.session.scalars(enrolment_ids))
    if not ids:
        return []
    query = (
        select(Enrolment)
        .join(Person, Person.id == Enrolment.child_id)
        .options(contains_eager(Enrolment.child))
        .where(
            Enrolment.id.in_(ids),
            Enrolment.status == "accepted",
            Enrolment.school_year_id == row.school_year_id,
            ~Enrolment.child_id.in_(listed),
        )
        .order_by(Person.last_name, Person.first_name, Enrolment.id)
    )
    enrolments = list(db.session.scalars(query).unique())
    twice = {c for c, n in Counter(e.child_id for e in enrolments).items() if n > 1}
    names = household_names({e.household_id for e in enrolments if e.child_id in twice})
    choices = []
    for enrolment in enrolments:
        child = enrolment.child
        label = child.full_name + (f" ({child.class_level})" if child.class_level else "")
        if enrolment.child_id in twice:
            label += f" · {names.get(enrolment.household_id, enrolment.household_id)}"
        choices.append(WalkInChoice(enrolment.id, enrolment.household_id, child, label))
    return choices


def can_point(row: ActivityDay, on: date) -> bool:
    """Attendance is pointed from the day itself on, and never on a closed day."""
    return not row.closed and row.day <= on


# --- Booking on behalf of a family ------------------------------------------------------------


@dataclass
class StaffMonth:
    """One child's month as staff see it: only the activities of the user's services."""

    month: date
    activities: list[Activity]
    rows: list[rules.DayRow]


def staff_month(user, household_id: int, child: Person, month: date, at: datetime) -> StaffMonth:
    """load_calendars(staff=True) for one child and month, cut to the user's services."""
    first, last = rules.month_bounds(month)
    calendar = rules.load_calendars(household_id, [child], first, last, at, staff=True)[child.id]
    allowed = service_ids_for(user)

    def mine(activity: Activity) -> bool:
        return allowed is None or activity.service_id in allowed

    rows = []
    for week in calendar.weeks:
        for day_row in week.days:
            cells = [cell for cell in day_row.cells if mine(cell.activity)]
            if cells:
                rows.append(rules.DayRow(day_row.day, cells))
    activities = [a for a in calendar.activities if mine(a)]
    return StaffMonth(month, activities, rows)


def staff_cell(household_id: int, child: Person, row: ActivityDay, at: datetime):
    """The calendar cell of one child on one activity day (None: not entitled to it)."""
    calendar = rules.load_calendars(household_id, [child], row.day, row.day, at, staff=True)
    for week in calendar[child.id].weeks:
        for day_row in week.days:
            for cell in day_row.cells:
                if cell.day.id == row.id:
                    return cell
    return None
