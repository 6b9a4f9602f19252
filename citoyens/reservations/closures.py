"""Closures and the recalculation of opening days, with what they do to bookings.

`generate_days` keeps a day a booking stands on and marks it closed. Here the
bookings still live on a day that this run closed (booked or on the waiting list)
are cancelled, not billed (`late` False: the commune closed, the family did not
cancel), their places freed, and each family gets one e-mail listing its lines.

Functions flush and return what they did; the caller commits (through
`write_transaction`), then sends the e-mails with `tell_families` and commits again,
so a retried transaction never sends a message twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

from flask import current_app, has_request_context, url_for
from sqlalchemy import func, select, update
from werkzeug.routing import BuildError

from citoyens import audit
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.formatting import day_fr
from citoyens.households.models import Person
from citoyens.reservations.calendar import (
    Generated,
    generate_days,
)
from citoyens.reservations.models import ActivityDay, Booking, Closure
from citoyens.reservations.operations import _change, _changes, state_of
from citoyens.services.models import Activity, SchoolYear, Service

NOTE = "Fermeture : {reason}"


def day_label(day: date) -> str:
    """lundi 4 novembre 2030"""
    return day_fr(day)


# --- School years -----------------------------------------------------------------------------


def school_year_of(day: date) -> SchoolYear | None:
    """The school year the day falls in, if one is set up."""
    return db.session.scalar(
        select(SchoolYear)
        .where(SchoolYear.starts_on <= day, SchoolYear.ends_on >= day)
        .order_by(SchoolYear.starts_on)
        .limit(1)
    )


def school_years_touching(first: date, last: date) -> list[SchoolYear]:
    return list(
        db.session.scalars(
            select(SchoolYear)
            .where(SchoolYear.ends_on >= first, SchoolYear.starts_on <= last)
            .order_by(SchoolYear.starts_on)
        )
    )


# --- What a run did ---------------------------------------------------------------------------


@dataclass
class CancelledLine:
    """One booking cancelled by a closure, as the family's e-mail lists it."""

    household_id: int
    child_name: str
    activity_name: str
    service_name: str
    day: date
    reason: str
    waiting: bool
    service_mailbox: str | None = None  # where the family's answer goes (Reply-To)

    @property
    def text(self) -> str:
        what = " (liste d'attente)" if self.waiting else ""
        return (
            f"{self.child_name} — {self.activity_name}{what} — {day_label(self.day)} "
            f"(motif : {self.reason})"
        )


@dataclass
class Recalculated:
    """Counts of `generate_days` over the years run, and the bookings cancelled."""

    generated: Generated = field(default_factory=Generated)
    cancelled: list[CancelledLine] = field(default_factory=list)

    def add(self, other: Generated) -> None:
        self.generated.created += other.created
        self.generated.removed += other.removed
        self.generated.closed += other.closed
        self.generated.reopened += other.reopened

    @property
    def households(self) -> int:
        return len({line.household_id for line in self.cancelled})

    def summary(self) -> str:
        """The counts in French, for a flash message or the command line."""
        g = self.generated
        text = (
            f"{g.created} jour(s) d'ouverture créé(s), {g.removed} supprimé(s), "
            f"{g.closed} fermé(s) (réservations existantes), {g.reopened} rouvert(s)"
        )
        if self.cancelled:
            text += (
                f" ; {len(self.cancelled)} réservation(s) annulée(s), "
                f"{self.households} famille(s) prévenue(s) par e-mail"
            )
        return text + "."


# --- Recalculation ----------------------------------------------------------------------------


def _closed_ids(school_year: SchoolYear) -> set[int]:
    return set(
        db.session.scalars(
            select(ActivityDay.id).where(
                ActivityDay.school_year_id == school_year.id, ActivityDay.closed.is_(True)
            )
        )
    )


def recalculate(
    school_years: list[SchoolYear], *, actor=None, activities: list[Activity] | None = None
) -> Recalculated:
    """`generate_days` for each school year, then cancel the bookings left on the days it
    closed. Flushes; the caller commits, then calls `tell_families`."""
    result = Recalculated()
    for school_year in school_years:
        before = _closed_ids(school_year)
        result.add(generate_days(school_year, activities))
        newly_closed = _closed_ids(school_year) - before
        result.cancelled += cancel_bookings_on(newly_closed, actor=actor)
    return result


def cancel_bookings_on(day_ids: set[int], *, actor=None) -> list[CancelledLine]:
    """Cancel every booking (booked or waiting) on closed days: not billed, places freed,
    one history row each with the day's closing reason. Four statements whatever the count.
    """
    if not day_ids:
        return []
    rows = db.session.execute(
        select(
            Booking, ActivityDay, Activity.name, Service.name, Person.first_name, Service.mailbox
        )
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .join(Service, Service.id == Activity.service_id)
        .join(Person, Person.id == Booking.child_id)
        .where(
            Booking.activity_day_id.in_(day_ids),
            Booking.status.in_(("booked", "waiting")),
            ActivityDay.closed.is_(True),
        )
        .order_by(ActivityDay.day, Person.first_name, Booking.id)
    ).all()
    if not rows:
        return []
    stamp = utcnow()
    ids = [booking.id for booking, *_ in rows]
    # Only rows still live are changed: a concurrent cancel keeps its own history.
    changed = set(
        db.session.scalars(
            update(Booking)
            .where(Booking.id.in_(ids), Booking.status.in_(("booked", "waiting")))
            .values(status="cancelled", late=False, waiting_since=None, updated_at=stamp)
            .returning(Booking.id)
            .execution_options(synchronize_session=False)
        )
    )
    # Count the places again rather than decrement: several children may leave one day
    # (`free_places` takes one place per day id), and the count stays exact either way.
    still_booked = (
        select(func.count(Booking.id))
        .where(Booking.activity_day_id == ActivityDay.id, Booking.status == "booked")
        .scalar_subquery()
    )
    db.session.execute(
        update(ActivityDay)
        .where(ActivityDay.id.in_(sorted({row.id for _b, row, *_ in rows})))
        .values(booked=still_booked)
        .execution_options(synchronize_session=False)
    )
    changes, lines = [], []
    for booking, row, activity_name, service_name, first_name, mailbox in rows:
        if booking.id not in changed:
            continue
        reason = row.closed_reason or "Jour de fermeture"
        # A closure is the system's doing ("system"); the agent who decided it is kept.
        change = _change(booking.id, state_of(booking), "cancelled", None, False)
        change["note"] = NOTE.format(reason=reason)[:200]
        change["actor_id"] = getattr(actor, "id", None)
        changes.append(change)
        lines.append(
            CancelledLine(
                household_id=booking.household_id,
                child_name=first_name,
                activity_name=activity_name,
                service_name=service_name,
                day=row.day,
                reason=reason,
                waiting=booking.status == "waiting",
                service_mailbox=mailbox,
            )
        )
    _changes(changes)
    db.session.expire_all()
    return lines


# --- Closures ---------------------------------------------------------------------------------


@dataclass
class ClosureOutcome:
    closure: Closure
    recalculated: Recalculated


def _activities_of_service(service_id: int, activity_id: int | None) -> list[Activity]:
    query = select(Activity).where(Activity.service_id == service_id, Activity.active.is_(True))
    if activity_id is not None:
        query = query.where(Activity.id == activity_id)
    return list(db.session.scalars(query))


def create_closure(
    *,
    service_id: int,
    activity_id: int | None,
    starts_on: date,
    ends_on: date,
    reason: str,
    actor,
) -> ClosureOutcome:
    """Record a closure and apply it to the school years it touches: days without bookings
    disappear, days with bookings close and their bookings are cancelled.

    The caller has checked the dates (inside school years, in order) and that the user
    may act for the service and that the activity belongs to it.
    """
    closure = Closure(
        service_id=service_id,
        activity_id=activity_id,
        starts_on=starts_on,
        ends_on=ends_on,
        reason=reason,
        created_by_id=getattr(actor, "id", None),
    )
    db.session.add(closure)
    db.session.flush()
    activities = _activities_of_service(service_id, activity_id)
    recalculated = recalculate(
        school_years_touching(starts_on, ends_on), actor=actor, activities=activities
    )
    audit.record(
        "closure.created",
        actor=actor,
        target=f"closure:{closure.id}",
        details=(
            f"service:{service_id} activity:{activity_id or '-'} {starts_on}..{ends_on} "
            f"cancelled:{len(recalculated.cancelled)}"
        ),
    )
    return ClosureOutcome(closure, recalculated)


def delete_closure(closure: Closure, *, actor) -> Recalculated:
    """Remove a closure: its closed days reopen, its removed days come back. Bookings
    cancelled by it stay cancelled (families book again if they wish)."""
    service_id, activity_id = closure.service_id, closure.activity_id
    starts_on, ends_on, closure_id = closure.starts_on, closure.ends_on, closure.id
    db.session.delete(closure)
    db.session.flush()
    recalculated = recalculate(
        school_years_touching(starts_on, ends_on),
        actor=actor,
        activities=_activities_of_service(service_id, activity_id),
    )
    audit.record(
        "closure.deleted",
        actor=actor,
        target=f"closure:{closure_id}",
        details=f"service:{service_id} activity:{activity_id or '-'} {starts_on}..{ends_on}",
    )
    return recalculated


# --- E-mails ----------------------------------------------------------------------------------


def reservations_link() -> str | None:
    """An absolute link to the family's calendar: PUBLIC_URL when set (behind a proxy),
    else this request's host; None when neither is known."""
    endpoint = "reservations.index"
    base = current_app.config.get("PUBLIC_URL")
    try:
        if base:
            return base.rstrip("/") + url_for(endpoint)
        if has_request_context() or current_app.config.get("SERVER_NAME"):
            return url_for(endpoint, _external=True)
    except (BuildError, RuntimeError):
        return None
    return None


@contextmanager
def mail_context() -> Iterator[str | None]:
    """A request context to render e-mails from the command line (the templates' context
    processors read the session), and the link to give families: None when the site's
    address is not configured (PUBLIC_URL or SERVER_NAME), rather than "localhost"."""
    config = current_app.config
    base = config.get("PUBLIC_URL") or (
        f"{config.get('PREFERRED_URL_SCHEME', 'https')}://{config['SERVER_NAME']}"
        if config.get("SERVER_NAME")
        else None
    )
    with current_app.test_request_context("/", base_url=base or "http://localhost"):
        yield reservations_link() if base else None


def tell_families(lines: list[CancelledLine], link: str | None) -> int:
    """One e-mail per household listing its cancelled lines; the number of households.
    Adds the messages to the session: the caller commits."""
    from citoyens.mail import send_mail
    from citoyens.requests.operations import family_recipients

    by_household: dict[int, list[CancelledLine]] = defaultdict(list)
    for line in lines:
        by_household[line.household_id].append(line)
    for household_id, own in by_household.items():
        # Reply-To: the service's mailbox when the closure concerns one service only.
        mailboxes = {line.service_mailbox for line in own}
        reply_to = mailboxes.pop() if len(mailboxes) == 1 else None
        for email in family_recipients(household_id):
            send_mail(
                "booking-closure",
                email,
                "Fermeture : des réservations sont annulées",
                "booking_closure",
                reply_to=reply_to,
                lines=own,
                link=link,
            )
    return len(by_household)
