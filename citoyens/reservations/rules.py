"""What a family may book, when a day stops being modifiable, and the calendar views.

Every view loads with a fixed number of queries, whatever the number of children,
activities and bookings (tests/test_reservations_views.py counts them).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm import aliased, contains_eager

from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.forms import PARIS
from citoyens.households.models import HouseholdMember, Person
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity, SchoolYear, Service

# --- Cut-off ----------------------------------------------------------------------------------


def starts_at(activity: Activity, day: date) -> datetime:
    """When the activity starts that day, in Paris time."""
    return datetime.combine(day, activity.start_time, tzinfo=PARIS)


def cutoff_at(activity: Activity, day: date) -> datetime:
    """The last moment to book or cancel: `cutoff_hours` real hours before the start.

    Counted in UTC so a daylight-saving change in between keeps exactly 72 hours
    (wall-clock arithmetic on a zoned datetime would be an hour off).
    """
    start = starts_at(activity, day).astimezone(UTC)
    return (start - timedelta(hours=activity.cutoff_hours)).astimezone(PARIS)


def is_modifiable(activity: Activity, day: date, now: datetime) -> bool:
    """Families may change the day strictly before its cut-off."""
    return now < cutoff_at(activity, day)


def now_utc() -> datetime:
    return datetime.now(UTC)


# --- Day states -------------------------------------------------------------------------------

STATES = {
    "booked": "Réservé",
    "waiting": "Liste d'attente",
    "available": "Disponible",
    "full": "Complet",
    "closed": "Fermé",
    "locked": "Non modifiable",
    "walk_in": "Présent sans réservation",
}


@dataclass(slots=True)
class Cell:
    """One activity on one day for one child, as the calendar shows it.

    `day` and `booking` are rows holding the columns the pages read (ActivityDay and
    Booking objects have them too): day `id, day, booked, capacity, closed,
    closed_reason`; booking `id, status, late, attendance, certificate_id`. The state and
    its label are worked out once, when the cell is made: a calendar reads them several
    times per cell.
    """

    activity: Activity
    day: Any
    booking: Any | None
    cutoff: datetime
    modifiable: bool
    waiting_rank: int | None = None
    state: str = field(init=False)
    booked: bool = field(init=False)
    waiting: bool = field(init=False)
    full: bool = field(init=False)
    absence_declared: bool = field(init=False)

    def __post_init__(self) -> None:
        status = self.booking.status if self.booking is not None else None
        self.booked = status == "booked"
        self.waiting = status == "waiting"
        self.full = self.day.booked >= self.day.capacity
        self.absence_declared = self.booking is not None and (
            self.booking.certificate_id is not None
        )
        if status == "walk_in":
            self.state = "walk_in"
        elif self.day.closed:
            self.state = "closed"
        elif self.booked:
            self.state = "booked"
        elif self.waiting:
            self.state = "waiting"
        elif not self.modifiable:
            self.state = "locked"
        else:
            self.state = "full" if self.full else "available"

    @property
    def label(self) -> str:
        return STATES[self.state]

    @property
    def editable(self) -> bool:
        """A checkbox: the family may tick or untick it now."""
        return self.modifiable and self.state in ("available", "booked")


# --- Who may book what ------------------------------------------------------------------------


def children_of(household_id: int) -> list[Person]:
    """The household's current children, eldest first."""
    return list(
        db.session.scalars(
            select(Person)
            .join(HouseholdMember, HouseholdMember.person_id == Person.id)
            .where(
                HouseholdMember.household_id == household_id,
                HouseholdMember.role == "child",
                HouseholdMember.left_at.is_(None),
            )
            .order_by(Person.birth_date.nulls_last(), Person.first_name, Person.id)
        )
    )


def child_of(household_id: int, child_id: int) -> Person | None:
    """The child if a current member of the household; None otherwise (→ 404)."""
    return db.session.scalar(
        select(Person)
        .join(HouseholdMember, HouseholdMember.person_id == Person.id)
        .where(
            HouseholdMember.household_id == household_id,
            HouseholdMember.person_id == child_id,
            HouseholdMember.role == "child",
            HouseholdMember.left_at.is_(None),
        )
    )


@dataclass(frozen=True)
class Entitlement:
    """A child may book an activity for a school year (accepted enrolment)."""

    child_id: int
    activity: Activity
    school_year_id: int
    # The enrolment's last day when it was ended during the year; None: the whole year.
    ends_on: date | None = None

    def covers(self, day: date) -> bool:
        return self.ends_on is None or day <= self.ends_on


def _bookable_enrolment(first: date):
    """Accepted enrolments, and ended ones whose last day is on or after `first`."""
    return or_(
        Enrolment.status == "accepted",
        and_(Enrolment.status == "ended", Enrolment.ends_on >= first),
    )


def entitlements(child_ids: list[int], first: date, last: date) -> list[Entitlement]:
    """Activities each child may book between two dates: accepted enrolments, active
    activities of active services, for the school years the dates touch. One query."""
    if not child_ids:
        return []
    rows = db.session.execute(
        _entitlements_statement(), {"child_ids": list(child_ids), "first": first, "last": last}
    ).all()
    return [
        Entitlement(child_id, activity, year_id, ends_on)
        for child_id, year_id, ends_on, activity in rows
    ]


@cache
def _entitlements_statement():
    """Built once: constructing a statement costs more than running it (a calendar page
    runs three; see also `_days_statement`, `_bookings_statement`)."""
    first = bindparam("first")
    return (
        select(Enrolment.child_id, Enrolment.school_year_id, Enrolment.ends_on, Activity)
        .join(EnrolmentActivity, EnrolmentActivity.enrolment_id == Enrolment.id)
        .join(Activity, Activity.id == EnrolmentActivity.activity_id)
        .join(Service, Service.id == Activity.service_id)
        .join(SchoolYear, SchoolYear.id == Enrolment.school_year_id)
        .options(contains_eager(Activity.service))
        .where(
            Enrolment.child_id.in_(bindparam("child_ids", expanding=True)),
            _bookable_enrolment(first),
            Activity.active.is_(True),
            Service.active.is_(True),
            SchoolYear.ends_on >= first,
            SchoolYear.starts_on <= bindparam("last"),
        )
        .order_by(Activity.start_time, Activity.id)
    )


def is_entitled(child_id: int, activity_day: ActivityDay) -> bool:
    return (
        db.session.scalar(
            select(func.count())
            .select_from(Enrolment)
            .join(EnrolmentActivity, EnrolmentActivity.enrolment_id == Enrolment.id)
            # As `entitlements`: a deactivated activity or service is not bookable, even
            # by a day id sent by hand (the calendar no longer shows it).
            .join(Activity, Activity.id == EnrolmentActivity.activity_id)
            .join(Service, Service.id == Activity.service_id)
            .where(
                Enrolment.child_id == child_id,
                _bookable_enrolment(activity_day.day),
                Enrolment.school_year_id == activity_day.school_year_id,
                EnrolmentActivity.activity_id == activity_day.activity_id,
                Activity.active.is_(True),
                Service.active.is_(True),
            )
        )
        > 0
    )


@dataclass
class ToggleTarget:
    """What a tap on a day needs, read in one query: the day, its activity, the child's
    booking of it (or None), the child's first name, and whether the household wants a
    summary e-mail."""

    day: ActivityDay
    activity: Activity
    booking: Booking | None
    first_name: str
    summary_mail: bool


def toggle_target(household_id: int, child_id: int, activity_day_id: int) -> ToggleTarget | None:
    """The day, if the child is a current child of the household and may book it (as
    `child_of` and `is_entitled`); None otherwise (→ 404). One query."""
    row = db.session.execute(
        _toggle_target_statement(),
        {"household_id": household_id, "child_id": child_id, "activity_day_id": activity_day_id},
    ).first()
    if row is None:
        return None
    day, activity, booking, first_name, summary_mail = row
    return ToggleTarget(day, activity, booking, first_name, bool(summary_mail))


@cache
def _toggle_target_statement():
    """The statement of `toggle_target`, built once per process with bound parameters: a
    tap is the busiest request of a rentrée, and building this join cost it more than
    running it."""
    from citoyens.households.models import Household

    child_id = bindparam("child_id")
    entitled = (
        select(Enrolment.id)
        .join(EnrolmentActivity, EnrolmentActivity.enrolment_id == Enrolment.id)
        .where(
            Enrolment.child_id == child_id,
            Enrolment.school_year_id == ActivityDay.school_year_id,
            EnrolmentActivity.activity_id == ActivityDay.activity_id,
            or_(
                Enrolment.status == "accepted",
                and_(Enrolment.status == "ended", Enrolment.ends_on >= ActivityDay.day),
            ),
        )
        .exists()
    )
    return (
        select(ActivityDay, Activity, Booking, Person.first_name, Household.booking_summary_mail)
        .select_from(ActivityDay)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .join(Service, Service.id == Activity.service_id)
        .join(
            HouseholdMember,
            and_(
                HouseholdMember.household_id == bindparam("household_id"),
                HouseholdMember.person_id == child_id,
                HouseholdMember.role == "child",
                HouseholdMember.left_at.is_(None),
            ),
        )
        .join(Person, Person.id == HouseholdMember.person_id)
        .join(Household, Household.id == HouseholdMember.household_id)
        .outerjoin(
            Booking,
            and_(Booking.child_id == child_id, Booking.activity_day_id == ActivityDay.id),
        )
        .where(
            ActivityDay.id == bindparam("activity_day_id"),
            Activity.active.is_(True),
            Service.active.is_(True),
            entitled,
        )
    )


def waiting_rank_of(child_id: int, activity_day_id: int) -> int | None:
    """The child's place on the day's waiting list (1 = next in). One query."""
    mine = aliased(Booking)
    return (
        db.session.scalar(
            select(func.count(Booking.id))
            .select_from(mine)
            .join(
                Booking,
                and_(
                    Booking.activity_day_id == mine.activity_day_id,
                    Booking.status == "waiting",
                    (Booking.waiting_since < mine.waiting_since)
                    | ((Booking.waiting_since == mine.waiting_since) & (Booking.id <= mine.id)),
                ),
            )
            .where(
                mine.child_id == child_id,
                mine.activity_day_id == activity_day_id,
                mine.status == "waiting",
            )
        )
        or None
    )


@dataclass(frozen=True)
class DayView:
    """The columns of an activity day a cell shows, as plain values (they outlive the
    commit that expires the objects)."""

    id: int
    day: date
    booked: int
    capacity: int
    closed: bool
    closed_reason: str | None


@dataclass(frozen=True)
class BookingView:
    id: int | None
    status: str
    late: bool
    attendance: str | None
    certificate_id: int | None


@dataclass(frozen=True)
class ActivityView:
    id: int
    name: str


# --- Calendar views ---------------------------------------------------------------------------


# The columns a calendar reads: rows, not objects (building ORM objects was a third of a
# month page's time).
DAY_COLUMNS = (
    ActivityDay.id,
    ActivityDay.activity_id,
    ActivityDay.school_year_id,
    ActivityDay.day,
    ActivityDay.booked,
    ActivityDay.capacity,
    ActivityDay.closed,
    ActivityDay.closed_reason,
)
BOOKING_COLUMNS = (
    Booking.id,
    Booking.activity_day_id,
    Booking.child_id,
    Booking.status,
    Booking.late,
    Booking.attendance,
    Booking.certificate_id,
)


@cache
def _days_statement():
    return (
        select(*DAY_COLUMNS)
        .where(
            ActivityDay.activity_id.in_(bindparam("activity_ids", expanding=True)),
            ActivityDay.day >= bindparam("first"),
            ActivityDay.day <= bindparam("last"),
        )
        .order_by(ActivityDay.day)
    )


@cache
def _bookings_statement():
    return select(*BOOKING_COLUMNS).where(
        Booking.child_id.in_(bindparam("child_ids", expanding=True)),
        Booking.activity_day_id.in_(bindparam("day_ids", expanding=True)),
    )


@dataclass
class DayRow:
    day: date
    cells: list[Cell] = field(default_factory=list)

    @property
    def quiet(self) -> bool:
        """Nothing to do nor to see that day: every activity closed, or past its cut-off
        and not booked (the compact month shows it as one muted line)."""
        return all(
            cell.booking is None and cell.state in ("closed", "locked") for cell in self.cells
        )


@dataclass
class Week:
    monday: date
    days: list[DayRow] = field(default_factory=list)

    @property
    def modifiable_cells(self) -> list[Cell]:
        return [cell for row in self.days for cell in row.cells if cell.modifiable]

    @property
    def editable_ids(self) -> str:
        """The ids of the days the week's form may book or cancel, comma-separated."""
        return ",".join(
            str(cell.day.id) for row in self.days for cell in row.cells if cell.editable
        )


@dataclass
class ChildCalendar:
    child: Person
    first: date
    last: date
    activities: list[Activity]
    weeks: list[Week]

    @property
    def cells(self) -> list[Cell]:
        return [cell for week in self.weeks for row in week.days for cell in row.cells]


def load_calendars(
    household_id: int,
    children: list[Person],
    first: date,
    last: date,
    now: datetime,
    *,
    staff: bool = False,
) -> dict[int, ChildCalendar]:
    """Each child's days between two dates: four queries in all (entitlements, days,
    bookings, waiting ranks), whatever the number of children, activities, bookings."""
    child_ids = [child.id for child in children]
    granted = entitlements(child_ids, first, last)
    activity_ids = {item.activity.id for item in granted}
    days = (
        db.session.execute(
            _days_statement(), {"activity_ids": list(activity_ids), "first": first, "last": last}
        ).all()
        if activity_ids
        else []
    )
    day_ids = [row.id for row in days]
    bookings = {
        (booking.child_id, booking.activity_day_id): booking
        for booking in (
            db.session.execute(_bookings_statement(), {"child_ids": child_ids, "day_ids": day_ids})
            if day_ids
            else []
        )
    }
    ranks = waiting_ranks([b.id for b in bookings.values() if b.status == "waiting"])
    calendars: dict[int, ChildCalendar] = {}
    cutoffs: dict[tuple[int, date], datetime] = {}  # the same for every child
    for child in children:
        mine: dict[tuple[int, int], Entitlement] = {}
        # Ended and then enrolled again: the enrolment reaching furthest wins.
        for g in sorted(granted, key=lambda g: g.ends_on or date.max):
            if g.child_id == child.id:
                mine[(g.activity.id, g.school_year_id)] = g
        activities = sorted({g.activity for g in mine.values()}, key=lambda a: (a.start_time, a.id))
        rows: dict[date, DayRow] = {}
        for activity_day in days:
            grant = mine.get((activity_day.activity_id, activity_day.school_year_id))
            # An enrolment ended during the year offers no day after its last one.
            if grant is None or not grant.covers(activity_day.day):
                continue
            activity = grant.activity
            booking = bookings.get((child.id, activity_day.id))
            key = (activity.id, activity_day.day)
            cutoff = cutoffs.get(key)
            if cutoff is None:
                cutoff = cutoffs[key] = cutoff_at(activity, activity_day.day)
            row = rows.setdefault(activity_day.day, DayRow(activity_day.day))
            row.cells.append(
                Cell(
                    activity=activity,
                    day=activity_day,
                    booking=booking,
                    cutoff=cutoff,
                    modifiable=(staff or now < cutoff) and not activity_day.closed,
                    waiting_rank=ranks.get(booking.id) if booking else None,
                )
            )
        for row in rows.values():
            row.cells.sort(key=lambda cell: (cell.activity.start_time, cell.activity.id))
        calendars[child.id] = ChildCalendar(
            child=child,
            first=first,
            last=last,
            activities=activities,
            weeks=group_by_week(sorted(rows.values(), key=lambda r: r.day)),
        )
    return calendars


def group_by_week(rows: list[DayRow]) -> list[Week]:
    weeks: dict[date, Week] = {}
    for row in rows:
        monday = row.day - timedelta(days=row.day.weekday())
        weeks.setdefault(monday, Week(monday)).days.append(row)
    return list(weeks.values())


def waiting_ranks(booking_ids: list[int]) -> dict[int, int]:
    """Position on its day's waiting list of each booking given (1 = next in). One query."""
    if not booking_ids:
        return {}
    other = aliased(Booking)
    rows = db.session.execute(
        select(Booking.id, func.count(other.id))
        .join(
            other,
            and_(
                other.activity_day_id == Booking.activity_day_id,
                other.status == "waiting",
                (other.waiting_since < Booking.waiting_since)
                | ((other.waiting_since == Booking.waiting_since) & (other.id <= Booking.id)),
            ),
        )
        .where(Booking.id.in_(booking_ids))
        .group_by(Booking.id)
    ).all()
    return dict(rows)


def month_bounds(month: date) -> tuple[date, date]:
    first = month.replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return first, following - timedelta(days=1)


def parse_month(value: str | None, today: date) -> date:
    """ "2026-12" → 1 December 2026; anything else → the current month."""
    try:
        year, month = (int(part) for part in (value or "").split("-"))
        # A year from the query string: out of date's range, date() raises OverflowError
        # (not a ValueError) and month_bounds or a next-month link would overflow too.
        if not MINYEAR < year < MAXYEAR:
            raise ValueError(value)
        return date(year, month, 1)
    except ValueError:
        return today.replace(day=1)


def booking_counts(day_ids: list[int]) -> dict[int, dict[str, int]]:
    """Bookings per day and status, for the staff overview. One query."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if not day_ids:
        return counts
    for day_id, status, count in db.session.execute(
        select(Booking.activity_day_id, Booking.status, func.count())
        .where(Booking.activity_day_id.in_(day_ids))
        .group_by(Booking.activity_day_id, Booking.status)
    ):
        counts[day_id][status] = count
    return counts
