"""Calendar (holidays, closures, opening days) and bookings.

One `ActivityDay` row per activity and opening day carries the capacity and the
count of booked children; a place is taken by a conditional UPDATE
(`booked < capacity`, DOMAIN.md "Calendar"). Staff may lower a day's capacity below
what is booked: every booking stays, and nobody new gets in until enough leave.
One `Booking` row per child and activity day, whatever its life: booked,
waiting, cancelled, booked again; `BookingChange` keeps each step. A booking copies
its day's date and its activity's exclusion set, so a partial unique index refuses a
child two incompatible activities on one date.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    false,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db
from citoyens.services.models import Activity

HOLIDAY_KINDS = {"public": "Jour férié", "school": "Vacances scolaires"}


class Holiday(db.Model):
    """A public holiday (one day) or a school holiday period (zone B), staff-editable.

    Seeded from `holidays` and `vacances-scolaires-france`; at run time this table,
    not the libraries, is the truth (DOMAIN.md).
    """

    __tablename__ = "holidays"
    __table_args__ = (
        CheckConstraint("kind IN ('public', 'school')", name="kind"),
        CheckConstraint("ends_on >= starts_on", name="dates"),
        UniqueConstraint("kind", "starts_on", name="uq_holidays_kind_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(6))
    name: Mapped[str] = mapped_column(String(120))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    # "library" when seeded, "staff" once someone created or corrected it.
    source: Mapped[str] = mapped_column(String(10), default="staff")


class Closure(db.Model):
    """A service or one of its activities closed for a date range (strike, works...)."""

    __tablename__ = "closures"
    __table_args__ = (CheckConstraint("ends_on >= starts_on", name="dates"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    # None: the whole service.
    activity_id: Mapped[int | None] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), index=True
    )
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200))
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    service = relationship("Service")
    activity = relationship("Activity")


class ActivityDay(db.Model):
    """An activity open on a day: its capacity and how many children are booked."""

    __tablename__ = "activity_days"
    __table_args__ = (
        UniqueConstraint("activity_id", "day", name="uq_activity_days_pair"),
        CheckConstraint("capacity >= 0", name="capacity"),
        # Not `booked <= capacity`: a day lowered below what is booked keeps its bookings;
        # the conditional UPDATE of `take_places` is what refuses the next one.
        CheckConstraint("booked >= 0", name="booked"),
        Index("ix_activity_days_day", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(ForeignKey("activities.id", ondelete="CASCADE"))
    school_year_id: Mapped[int] = mapped_column(
        ForeignKey("school_years.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[date] = mapped_column(Date)
    capacity: Mapped[int] = mapped_column()
    # Set by staff for this day (a smaller bus): the activity's capacity no longer applies.
    capacity_overridden: Mapped[bool] = mapped_column(default=False, server_default=false())
    booked: Mapped[int] = mapped_column(default=0, server_default="0")
    # A closure decided after the day was generated: kept (bookings stand on it), not bookable.
    closed: Mapped[bool] = mapped_column(default=False, server_default=false())
    closed_reason: Mapped[str | None] = mapped_column(String(200))

    activity = relationship("Activity")


BOOKING_STATUSES = {
    "booked": "Réservé",
    "waiting": "Liste d'attente",
    "cancelled": "Annulé",
    # Came without a reservation: billed with the service's surcharge; takes no place.
    "walk_in": "Présent sans réservation",
}
ATTENDANCES = {
    "present": "Présent",
    "absent": "Absent",
    "excused": "Absent justifié",
}


def _day_of(context):
    """Default of `Booking.day`: its activity day's date (inserts that do not give it)."""
    day_id = context.get_current_parameters()["activity_day_id"]
    return context.connection.scalar(select(ActivityDay.day).where(ActivityDay.id == day_id))


def _exclusion_set_of(context):
    """Default of `Booking.exclusion_set_id`: its activity's set, if any."""
    day_id = context.get_current_parameters()["activity_day_id"]
    return context.connection.scalar(
        select(Activity.exclusion_set_id)
        .join(ActivityDay, ActivityDay.activity_id == Activity.id)
        .where(ActivityDay.id == day_id)
    )


# One live booking (booked, waiting or walk-in) per child, date and exclusion set.
EXCLUSION_INDEX = "uq_bookings_child_date_set"
LIVE = "exclusion_set_id IS NOT NULL AND status <> 'cancelled'"


class Booking(db.Model):
    """A child on an activity day. Billing (issue 6) reads status, attendance and `late`."""

    __tablename__ = "bookings"
    __table_args__ = (
        UniqueConstraint("child_id", "activity_day_id", name="uq_bookings_child_day"),
        Index(
            EXCLUSION_INDEX,
            "child_id",
            "day",
            "exclusion_set_id",
            unique=True,
            sqlite_where=text(LIVE),
            postgresql_where=text(LIVE),
        ),
        CheckConstraint("status IN ('booked', 'waiting', 'cancelled', 'walk_in')", name="status"),
        CheckConstraint(
            "attendance IS NULL OR attendance IN ('present', 'absent', 'excused')",
            name="attendance",
        ),
        Index("ix_bookings_day_status", "activity_day_id", "status"),
        # A household's bookings of a period (its calendar, a batch of the invoice run).
        Index("ix_bookings_household_day", "household_id", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_day_id: Mapped[int] = mapped_column(ForeignKey("activity_days.id", ondelete="CASCADE"))
    child_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    # The household that booked (and will be billed): a child may have two homes.
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    # Copies of the activity day's date and of its activity's exclusion set (kept right
    # when the set changes): what the partial unique index EXCLUSION_INDEX reads.
    day: Mapped[date] = mapped_column(Date, default=_day_of)
    exclusion_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("exclusion_sets.id", ondelete="SET NULL"), default=_exclusion_set_of, index=True
    )
    status: Mapped[str] = mapped_column(String(10))
    # Cancelled after the cut-off (by staff): billed (DOMAIN.md "Billing").
    late: Mapped[bool] = mapped_column(default=False, server_default=false())
    attendance: Mapped[str | None] = mapped_column(String(8))
    # The medical certificate of a declared absence.
    certificate_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), index=True
    )
    # Order of the waiting list: first come, first served.
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    activity_day: Mapped[ActivityDay] = relationship()
    child = relationship("Person")


class BookingChange(db.Model):
    """Who changed a booking, when, from what to what."""

    __tablename__ = "booking_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    booking_id: Mapped[int] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # "family", "staff" or "system" (waiting-list promotion, closure).
    actor_kind: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(200))

    actor = relationship("User")
