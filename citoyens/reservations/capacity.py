"""Capacity of activity days (DOMAIN.md "Calendar"): an activity's capacity is copied to
its days from today on, staff may set one day's, and lowering it below the children
already booked keeps every booking.

The rule "no more than `capacity` children" lives in the conditional UPDATE of
`operations.take_places` (`booked < capacity`): a day at 12 booked for 10 places takes
nobody new, and a cancellation there promotes nobody until fewer than 10 are booked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, update

from citoyens.extensions import db
from citoyens.forms import PARIS
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity


def over_capacity_warning(booked: int, capacity: int) -> str:
    return (
        f"{booked} enfants sont déjà réservés pour {capacity} places : aucune réservation "
        "n'est annulée ; les nouvelles réservations attendront qu'une place se libère."
    )


@dataclass
class DayCapacity:
    """What `set_day_capacity` did: `changed`, or the warning to confirm first."""

    changed: bool
    booked: int
    capacity: int
    needs_confirmation: bool = False

    @property
    def over(self) -> bool:
        return self.booked > self.capacity


def set_day_capacity(
    day: ActivityDay, capacity: int, *, confirmed: bool = False, now: datetime | None = None
) -> DayCapacity:
    """Set one day's capacity (staff: a smaller bus); the activity's capacity no longer
    applies to it. Below the children already booked, nothing changes unless `confirmed`:
    then every booking stays and newcomers wait. New places go first to the children
    waiting (first come, first served) while the day is before its cut-off."""
    from citoyens.reservations.operations import promote_waiting
    from citoyens.reservations.rules import cutoff_at, now_utc

    query = update(ActivityDay).where(ActivityDay.id == day.id)
    if not confirmed:
        # Re-checked by the UPDATE itself: a booking made since the page was shown counts.
        query = query.where(ActivityDay.booked <= capacity)
    changed = db.session.execute(
        query.values(capacity=capacity, capacity_overridden=True).execution_options(
            synchronize_session=False
        )
    ).rowcount
    db.session.refresh(day)
    if not changed:
        return DayCapacity(False, day.booked, capacity, needs_confirmation=True)
    if (now or now_utc()) < cutoff_at(day.activity, day.day):
        promote_waiting(day.id)
        db.session.refresh(day)
    return DayCapacity(True, day.booked, day.capacity)


def apply_activity_capacity(activity: Activity, now: datetime | None = None) -> list[int]:
    """Copy the activity's capacity to its days from today on, except the days staff set
    themselves; past days keep theirs (invoices and lists refer to them). Bookings all
    stay, over the new capacity too. The freed places go to the children waiting. The ids
    of the days changed."""
    from citoyens.reservations.operations import promote_waiting
    from citoyens.reservations.rules import cutoff_at, now_utc

    now = now or now_utc()
    today = now.astimezone(PARIS).date()
    changed = list(
        db.session.scalars(
            update(ActivityDay)
            .where(
                ActivityDay.activity_id == activity.id,
                ActivityDay.day >= today,
                ActivityDay.capacity_overridden.is_(False),
                ActivityDay.capacity != activity.capacity,
            )
            .values(capacity=activity.capacity)
            .returning(ActivityDay.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not changed:
        return []
    waiting = db.session.execute(
        select(ActivityDay.id, ActivityDay.day)
        .where(
            ActivityDay.id.in_(changed),
            ActivityDay.booked < ActivityDay.capacity,
            ActivityDay.id.in_(select(Booking.activity_day_id).where(Booking.status == "waiting")),
        )
        .order_by(ActivityDay.day)
    ).all()
    for day_id, day in waiting:
        if now < cutoff_at(activity, day):
            promote_waiting(day_id)
    db.session.expire_all()
    return changed


def days_over_capacity(activity_id: int, today: date) -> int:
    """How many of the activity's days from today on have more children booked than
    places (after a capacity was lowered). One query."""
    return db.session.scalar(
        select(func.count())
        .select_from(ActivityDay)
        .where(
            ActivityDay.activity_id == activity_id,
            ActivityDay.day >= today,
            ActivityDay.booked > ActivityDay.capacity,
        )
    )
