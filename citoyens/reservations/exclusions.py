"""Incompatible activities: a child holds at most one activity of an exclusion set on a
date (journée / matin / après-midi; the two Goulidons activities), DOMAIN.md "Calendar".

The database enforces it: each booking copies its date and its activity's set, and the
partial unique index `uq_bookings_child_date_set` refuses a second live one (booked,
waiting or walk-in). `held_on` lets the booking verbs refuse first, with a message that
names what the child already holds; when two transactions race past that check, the
index refuses the second insert, `write_transaction` runs it again and the check then
sees the committed booking.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select, update

from citoyens import audit
from citoyens.extensions import db
from citoyens.formatting import weekday_fr
from citoyens.households.models import Person
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity, ExclusionSet, Service

LIVE_STATUSES = ("booked", "waiting", "walk_in")


class ExclusionError(ValueError):
    """A change to exclusion sets that cannot be done; the message is French."""


def short_day(value: date) -> str:
    """ "mercredi 9 décembre", for messages."""
    return weekday_fr(value)


def already_holds(first_name: str, activity_name: str, day: date) -> str:
    """« Léa a déjà « Mercredi journée » le mercredi 9 décembre »"""
    return f"{first_name} a déjà « {activity_name} » le {short_day(day)}"


def held_on(child_id: int, dates: set[date], set_ids: set[int]) -> dict[tuple[date, int], tuple]:
    """(date, set id) -> (activity day id, activity name) of the child's live bookings in
    those sets on those dates. One query (none when nothing is asked)."""
    if not dates or not set_ids:
        return {}
    rows = db.session.execute(
        select(Booking.day, Booking.exclusion_set_id, Booking.activity_day_id, Activity.name)
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .where(
            Booking.child_id == child_id,
            Booking.day.in_(dates),
            Booking.exclusion_set_id.in_(set_ids),
            Booking.status.in_(LIVE_STATUSES),
        )
    ).all()
    return {(day, set_id): (day_id, name) for day, set_id, day_id, name in rows}


def held_by_children(child_ids: list[int], first: date, last: date) -> dict[tuple, tuple]:
    """(child id, date, set id) -> (activity id, name) of the live bookings in an exclusion
    set between two dates, for the planner's preview. One query."""
    if not child_ids:
        return {}
    rows = db.session.execute(
        select(Booking.child_id, Booking.day, Booking.exclusion_set_id, Activity.id, Activity.name)
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .where(
            Booking.child_id.in_(child_ids),
            Booking.day >= first,
            Booking.day <= last,
            Booking.exclusion_set_id.is_not(None),
            Booking.status.in_(LIVE_STATUSES),
        )
    ).all()
    return {(child, day, set_id): (aid, name) for child, day, set_id, aid, name in rows}


def first_name_of(child_id: int) -> str:
    return db.session.scalar(select(Person.first_name).where(Person.id == child_id)) or ""


# --- Managing the sets (administrators) -------------------------------------------------------


def sets_of(service_id: int) -> list[ExclusionSet]:
    return list(
        db.session.scalars(
            select(ExclusionSet)
            .where(ExclusionSet.service_id == service_id)
            .order_by(ExclusionSet.name, ExclusionSet.id)
        )
    )


def _conflicts(activity_ids: list[int], set_id: int) -> list[str]:
    """Children who would hold two activities of the set on one date once the activities
    given join it: « Léa a déjà « Mercredi journée » le mercredi 9 décembre ». One query."""
    members = _members(activity_ids, set_id)
    rows = db.session.execute(
        select(Booking.child_id, Booking.day, func.min(Activity.name), func.count(Booking.id))
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .where(Activity.id.in_(members), Booking.status.in_(LIVE_STATUSES))
        .group_by(Booking.child_id, Booking.day)
        .having(func.count(Booking.id) > 1)
        .order_by(Booking.day, Booking.child_id)
        .limit(10)
    ).all()
    names = dict(
        db.session.execute(
            select(Person.id, Person.first_name).where(Person.id.in_({r[0] for r in rows}))
        ).all()
        if rows
        else []
    )
    return [already_holds(names.get(child_id, ""), name, day) for child_id, day, name, _ in rows]


def _members(activity_ids: list[int], set_id: int) -> list[int]:
    """The set's activities and the ones given."""
    current = db.session.scalars(select(Activity.id).where(Activity.exclusion_set_id == set_id))
    return sorted(set(current) | set(activity_ids))


def set_activity_exclusion(activity: Activity, set_id: int | None, *, actor) -> bool:
    """Put the activity in an exclusion set of its service (None: in none), and copy the
    set onto its live bookings. Refused (ExclusionError) when a child would then hold two
    activities of the set on one date: staff cancel one first. Whether anything changed."""
    if activity.exclusion_set_id == set_id:
        return False
    if set_id is not None:
        chosen = db.session.get(ExclusionSet, set_id)
        if chosen is None or chosen.service_id != activity.service_id:
            raise ExclusionError("Choisissez un groupe d'activités de ce service.")
        problems = _conflicts([activity.id], set_id)
        if problems:
            raise ExclusionError(
                f"« {activity.name} » ne peut pas rejoindre « {chosen.name} » : des enfants "
                "ont déjà deux de ces activités le même jour ("
                + " ; ".join(problems)
                + "). Annulez l'une des deux réservations, puis recommencez."
            )
    activity.exclusion_set_id = set_id
    db.session.flush()
    day_ids = select(ActivityDay.id).where(ActivityDay.activity_id == activity.id)
    # Every booking, cancelled ones too: a booking made again keeps the right set.
    db.session.execute(
        update(Booking)
        .where(Booking.activity_day_id.in_(day_ids))
        .values(exclusion_set_id=set_id)
        .execution_options(synchronize_session=False)
    )
    audit.record(
        "activity.exclusion_set",
        actor=actor,
        target=f"activity:{activity.id}",
        details=f"set:{set_id or '-'}",
    )
    return True


def create_exclusion_set(service: Service, name: str, activity_ids: list[int], *, actor):
    """A new set of the service's activities (at least two). ExclusionError when the name
    is taken, an activity is another service's, or children already hold two of them."""
    name = name.strip()
    if not name:
        raise ExclusionError("Donnez un nom au groupe, par exemple « Journée ou demi-journée ».")
    if db.session.scalar(
        select(ExclusionSet.id).where(
            ExclusionSet.service_id == service.id, ExclusionSet.name == name
        )
    ):
        raise ExclusionError(f"Le service a déjà un groupe nommé « {name} ».")
    activities = list(
        db.session.scalars(
            select(Activity).where(Activity.id.in_(activity_ids), Activity.service_id == service.id)
        )
    )
    if len(activities) < 2 or len(activities) != len(set(activity_ids)):
        raise ExclusionError("Choisissez au moins deux activités de ce service.")
    group = ExclusionSet(service_id=service.id, name=name[:120])
    db.session.add(group)
    db.session.flush()
    problems = _conflicts([a.id for a in activities], group.id)
    if problems:
        raise ExclusionError(
            "Ces activités ne peuvent pas devenir incompatibles : des enfants en ont déjà "
            "deux le même jour (" + " ; ".join(problems) + "). Annulez l'une des deux "
            "réservations, puis recommencez."
        )
    for activity in activities:
        set_activity_exclusion(activity, group.id, actor=actor)
    audit.record(
        "exclusion_set.created", actor=actor, target=f"exclusion_set:{group.id}", details=name
    )
    return group


def delete_exclusion_set(set_id: int, *, actor) -> str:
    """Remove a set: its activities (and their bookings) exclude each other no more."""
    group = db.session.get(ExclusionSet, set_id)
    members = db.session.scalars(select(Activity).where(Activity.exclusion_set_id == set_id))
    for activity in list(members):
        set_activity_exclusion(activity, None, actor=actor)
    name = group.name
    db.session.delete(group)
    db.session.flush()
    audit.record("exclusion_set.deleted", actor=actor, target=f"exclusion_set:{set_id}")
    return name
