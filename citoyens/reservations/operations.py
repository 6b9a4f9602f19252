"""Booking verbs. Each flushes; the caller commits (through citoyens.transactions).

Capacity holds under concurrency because a place is taken by one conditional
UPDATE (`booked < capacity`) whose RETURNING clause says which days it took. One
child, one row per day: the unique pair (child, day) makes a double booking
impossible; incompatible activities on one date are refused by a partial unique
index (see `exclusions`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import insert, select, update

from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.reservations import exclusions, rules
from citoyens.reservations.models import ActivityDay, Booking, BookingChange
from citoyens.reservations.rules import cutoff_at, is_entitled
from citoyens.services.models import Activity
from citoyens.transactions import after_commit


class BookingError(ValueError):
    """A booking change that cannot be done; the message is French."""


def state_of(booking: Booking | None) -> str | None:
    if booking is None:
        return None
    if booking.attendance:
        return f"{booking.status}:{booking.attendance}"
    return booking.status


def _actor_kind(actor, staff: bool) -> str:
    if actor is None:
        return "system"
    return "staff" if staff else "family"


def _changes(rows: list[dict]) -> None:
    if rows:
        db.session.execute(insert(BookingChange), rows)


def _change(booking_id: int, before, after: str, actor, staff: bool, note=None) -> dict:
    return {
        "booking_id": booking_id,
        "actor_id": getattr(actor, "id", None),
        "actor_kind": _actor_kind(actor, staff),
        "created_at": utcnow(),
        "from_state": before,
        "to_state": after,
        "note": note,
    }


@dataclass
class Outcome:
    """What a booking action did, day by day: the ids booked, put on the waiting list,
    cancelled, and those refused with the reason."""

    booked: list[int] = field(default_factory=list)
    waiting: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    promoted: list[int] = field(default_factory=list)  # bookings moved off a waiting list
    refused: dict[int, str] = field(default_factory=dict)  # activity day id -> reason
    # activity day id -> the French reason in full, when the code alone says too little
    # ("incompatible": « Léa a déjà « Mercredi journée » le mercredi 9 décembre »).
    details: dict[int, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.booked or self.waiting or self.cancelled)

    def reason(self, day_id: int) -> str:
        code = self.refused.get(day_id, "")
        return self.details.get(day_id) or REASONS.get(code, code)


@dataclass
class Loaded:
    """The rows a caller already read in the same transaction (the toggle's one query):
    spares `book_days` and `cancel_days` their reads of days, activities and bookings."""

    days: dict[int, ActivityDay]
    activities: dict[int, Activity]
    existing: dict[int, Booking]
    first_name: str | None = None  # the child's, for an "incompatible" refusal


@dataclass(frozen=True)
class ActorRef:
    """An actor known by id. The user object of the request expires at the commit that
    ends its read transaction; reading `current_user.id` again would load it again."""

    id: int


REASONS = {
    "closed": "fermé",
    "cutoff": "délai de réservation dépassé",
    "full": "complet",
    "already": "déjà réservé",
    "already_waiting": "déjà sur la liste d'attente",
    "not_enrolled": "pas d'inscription acceptée pour cette activité",
    "not_booked": "pas de réservation à annuler",
    "incompatible": "une activité incompatible est déjà réservée ce jour-là",
}


def _days(day_ids: Iterable[int]) -> dict[int, ActivityDay]:
    ids = list(set(day_ids))
    if not ids:
        return {}
    return {
        row.id: row
        for row in db.session.scalars(
            select(ActivityDay)
            .join(Activity, Activity.id == ActivityDay.activity_id)
            .where(ActivityDay.id.in_(ids))
        )
    }


def _activities(days: Iterable[ActivityDay]) -> dict[int, Activity]:
    ids = {row.activity_id for row in days}
    if not ids:
        return {}
    return {a.id: a for a in db.session.scalars(select(Activity).where(Activity.id.in_(ids)))}


def _existing(child_id: int, day_ids: Iterable[int]) -> dict[int, Booking]:
    ids = list(day_ids)
    if not ids:
        return {}
    return {
        b.activity_day_id: b
        for b in db.session.scalars(
            select(Booking).where(Booking.child_id == child_id, Booking.activity_day_id.in_(ids))
        )
    }


def _loaded(child_id: int, day_ids: Iterable[int], loaded: Loaded | None):
    if loaded is not None:
        return loaded.days, loaded.activities, loaded.existing
    days = _days(day_ids)
    return days, _activities(days.values()), _existing(child_id, days)


def take_places(day_ids: list[int]) -> set[int]:
    """One place on each day that has one left and is open; the ids that got one."""
    if not day_ids:
        return set()
    return set(
        db.session.scalars(
            update(ActivityDay)
            .where(
                ActivityDay.id.in_(day_ids),
                ActivityDay.booked < ActivityDay.capacity,
                ActivityDay.closed.is_(False),
            )
            .values(booked=ActivityDay.booked + 1)
            .returning(ActivityDay.id)
            .execution_options(synchronize_session=False)
        )
    )


def free_places(day_ids: list[int]) -> None:
    if day_ids:
        db.session.execute(
            update(ActivityDay)
            .where(ActivityDay.id.in_(day_ids))
            .values(booked=ActivityDay.booked - 1)
            .execution_options(synchronize_session=False)
        )


def book_days(
    household_id: int,
    child_id: int,
    day_ids: Iterable[int],
    *,
    actor,
    staff: bool = False,
    waiting_list: bool = False,
    now: datetime | None = None,
    entitled_ids: set[int] | None = None,
    loaded: Loaded | None = None,
) -> Outcome:
    """Book the child on each day: a place if one is left, else the waiting list when
    `waiting_list`, else refused as full. Families only before the cut-off.

    The caller has checked the child belongs to the household. `entitled_ids` (the
    activity ids the child may book) spares one query per day when the caller knows;
    `loaded` spares the three reads.
    """
    now = now or rules.now_utc()
    outcome = Outcome()
    days, activities, existing = _loaded(child_id, day_ids, loaded)
    wanted: list[int] = []
    for day_id, row in sorted(days.items(), key=lambda item: item[1].day):
        booking = existing.get(day_id)
        if booking is not None and booking.status in ("booked", "walk_in"):
            outcome.refused[day_id] = "already"
        elif row.closed:
            outcome.refused[day_id] = "closed"
        elif not staff and now >= cutoff_at(activities[row.activity_id], row.day):
            outcome.refused[day_id] = "cutoff"
        elif (
            row.activity_id not in entitled_ids
            if entitled_ids is not None
            else not is_entitled(child_id, row)
        ):
            outcome.refused[day_id] = "not_enrolled"
        else:
            wanted.append(day_id)
    first_name = loaded.first_name if loaded is not None else None
    wanted = _compatible(child_id, wanted, days, activities, outcome, first_name)
    taken = take_places(wanted)
    stamp = utcnow()
    new_rows, changes = [], []
    for day_id in wanted:
        booking = existing.get(day_id)
        if day_id in taken:
            status = "booked"
        elif waiting_list and (booking is None or booking.status != "waiting"):
            status = "waiting"
        else:
            waiting = booking is not None and booking.status == "waiting"
            outcome.refused[day_id] = "already_waiting" if waiting else "full"
            continue
        if booking is None:
            new_rows.append(
                {
                    "activity_day_id": day_id,
                    "child_id": child_id,
                    "household_id": household_id,
                    "day": days[day_id].day,
                    "exclusion_set_id": activities[days[day_id].activity_id].exclusion_set_id,
                    "status": status,
                    "late": False,
                    "waiting_since": stamp if status == "waiting" else None,
                    "created_at": stamp,
                    "updated_at": stamp,
                }
            )
        else:
            # Conditional on the status read: on PostgreSQL another transaction (the same
            # child from a second tab, a promotion) may have changed the row since, and an
            # unconditional update would count the child's place twice.
            moved = db.session.execute(
                update(Booking)
                .where(Booking.id == booking.id, Booking.status == booking.status)
                .values(
                    status=status,
                    day=days[day_id].day,
                    exclusion_set_id=activities[days[day_id].activity_id].exclusion_set_id,
                    household_id=household_id,
                    late=False,
                    attendance=None,
                    certificate_id=None,
                    waiting_since=stamp if status == "waiting" else None,
                    updated_at=stamp,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            booking_id, before = booking.id, state_of(booking)
            db.session.expire(booking)  # reloaded with what the update wrote, if read again
            if not moved:
                if status == "booked":
                    free_places([day_id])
                outcome.refused[day_id] = "already"
                continue
            changes.append(_change(booking_id, before, status, actor, staff))
        (outcome.booked if status == "booked" else outcome.waiting).append(day_id)
    if new_rows:
        ids = db.session.scalars(
            insert(Booking).returning(Booking.id, sort_by_parameter_order=True), new_rows
        ).all()
        changes += [
            _change(booking_id, None, row["status"], actor, staff)
            for booking_id, row in zip(ids, new_rows, strict=True)
        ]
    db.session.flush()
    _changes(changes)
    return outcome


def _compatible(
    child_id: int,
    day_ids: list[int],
    days: dict[int, ActivityDay],
    activities: dict[int, Activity],
    outcome: Outcome,
    first_name: str | None = None,
) -> list[int]:
    """The days that leave the child at most one activity of an exclusion set per date;
    the others are refused as "incompatible", naming the activity held (already booked,
    waiting, or earlier in this same request). One query when a set is involved."""
    sets = {activities[days[i].activity_id].exclusion_set_id for i in day_ids} - {None}
    if not sets:
        return day_ids
    held = exclusions.held_on(child_id, {days[i].day for i in day_ids}, sets)
    kept = []
    for day_id in sorted(day_ids, key=lambda i: (days[i].day, days[i].activity_id)):
        row = days[day_id]
        activity = activities[row.activity_id]
        key = (row.day, activity.exclusion_set_id)
        holder = held.get(key) if activity.exclusion_set_id is not None else None
        if holder is not None and holder[0] != day_id:
            outcome.refused[day_id] = "incompatible"
            outcome.details[day_id] = holder[1]  # named below, with the child's first name
            continue
        if activity.exclusion_set_id is not None:
            held[key] = (day_id, activity.name)
        kept.append(day_id)
    refused = [i for i in day_ids if outcome.refused.get(i) == "incompatible"]
    if refused:
        if first_name is None:
            first_name = exclusions.first_name_of(child_id)
        for day_id in refused:
            name = outcome.details[day_id]
            outcome.details[day_id] = exclusions.already_holds(first_name, name, days[day_id].day)
    return [i for i in day_ids if i in set(kept)]


def cancel_days(
    household_id: int,
    child_id: int,
    day_ids: Iterable[int],
    *,
    actor,
    staff: bool = False,
    now: datetime | None = None,
    note: str | None = None,
    loaded: Loaded | None = None,
) -> Outcome:
    """Cancel the child's bookings (or waiting-list places) on the days given.

    Families only before the cut-off; staff after it too, and such a late cancellation
    stays billed. A place freed before the cut-off goes to the first child waiting.
    """
    now = now or rules.now_utc()
    outcome = Outcome()
    days, activities, existing = _loaded(child_id, day_ids, loaded)
    freed: list[int] = []
    changes = []
    stamp = utcnow()
    for day_id, row in days.items():
        booking = existing.get(day_id)
        if booking is None or booking.status not in ("booked", "waiting"):
            outcome.refused[day_id] = "not_booked"
            continue
        late = now >= cutoff_at(activities[row.activity_id], row.day)
        # Leaving a waiting list costs nothing: allowed at any time.
        if late and not staff and booking.status == "booked":
            outcome.refused[day_id] = "cutoff"
            continue
        # Only the holder of the place may free it: a concurrent cancel changes nothing.
        done = db.session.execute(
            update(Booking)
            .where(Booking.id == booking.id, Booking.status == booking.status)
            .values(status="cancelled", late=late and booking.status == "booked", updated_at=stamp)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not done:
            outcome.refused[day_id] = "not_booked"
            continue
        if booking.status == "booked":
            freed.append(day_id)
        changes.append(_change(booking.id, state_of(booking), "cancelled", actor, staff, note))
        outcome.cancelled.append(day_id)
    # Before the cut-off, a freed place goes to the first child waiting (decided before
    # the expiry below, which would read the days and activities again).
    promotable = [
        day_id
        for day_id in freed
        if now < cutoff_at(activities[days[day_id].activity_id], days[day_id].day)
    ]
    free_places(freed)
    db.session.flush()
    _changes(changes)
    if outcome.cancelled:
        db.session.expire_all()  # the bulk updates above left the objects read stale
    for day_id in promotable:
        outcome.promoted += promote_waiting(day_id)
    return outcome


def promote_waiting(day_id: int) -> list[int]:
    """Give the day's free places to the children waiting, first come first served,
    and tell their families. The booking ids promoted."""
    promoted = []
    waiting = list(
        db.session.scalars(
            select(Booking)
            .where(Booking.activity_day_id == day_id, Booking.status == "waiting")
            .order_by(Booking.waiting_since, Booking.id)
        )
    )
    for booking in waiting:
        if not take_places([day_id]):
            break
        moved = db.session.execute(
            update(Booking)
            .where(Booking.id == booking.id, Booking.status == "waiting")
            .values(status="booked", waiting_since=None, updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if not moved:
            free_places([day_id])
            continue
        _changes([_change(booking.id, "waiting", "booked", None, False, "Place libérée")])
        promoted.append(booking.id)
    if promoted:
        db.session.expire_all()
        from citoyens.reservations.notify import tell_promoted

        after_commit(lambda: tell_promoted(promoted))
    return promoted


def dates_of(day_ids: Iterable[int]) -> dict[int, date]:
    return {row.id: row.day for row in _days(day_ids).values()}
