"""Enrolments during the year: add or remove an activity, change school or class, end
the enrolment at a date. Plain functions; each flushes, the caller commits.

What is already invoiced never changes: invoices are issued for past months, and a
change reaches only bookings after a date that staff may not set before the end of
the family's last invoiced month (families: not before today). The bookings a change
removes are cancelled as a closure cancels them: not billed (`late` False), places
freed, and the family gets one e-mail listing them. A day the child attended
(attendance recorded) is never cancelled.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import joinedload, selectinload

from citoyens import audit
from citoyens.database import utcnow
from citoyens.documents.rules import today_in_paris
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.enrolments.rules import date_fr
from citoyens.extensions import db
from citoyens.households.models import Person
from citoyens.services.models import CLASS_LEVELS, Activity, School

# What an accepted enrolment may become during the year.
CHANGEABLE = ("accepted",)


class EnrolmentChangeError(ValueError):
    """A change the rules refuse; the message is French, shown as is."""


@dataclass
class CancelledDay:
    activity_name: str
    day: date
    waiting: bool

    @property
    def text(self) -> str:
        return f"{self.activity_name} — {date_fr(self.day)}" + (
            " (liste d'attente)" if self.waiting else ""
        )


@dataclass
class ChangeOutcome:
    """What a change did: a summary sentence (French) and the bookings it cancelled."""

    summary: str
    cancelled: list[CancelledDay] = field(default_factory=list)


def enrolment_for_change(enrolment_id: int) -> Enrolment | None:
    """The enrolment with what a change reads (activities, service, year, child, request)."""
    return db.session.scalar(
        select(Enrolment)
        .options(
            selectinload(Enrolment.activities).joinedload(EnrolmentActivity.activity),
            joinedload(Enrolment.service),
            joinedload(Enrolment.school_year),
            joinedload(Enrolment.child),
            joinedload(Enrolment.request),
        )
        .where(Enrolment.id == enrolment_id)
    )


def other_activities(enrolment: Enrolment) -> list[Activity]:
    """The service's active activities the enrolment does not have yet."""
    current = [link.activity_id for link in enrolment.activities]
    query = select(Activity).where(
        Activity.service_id == enrolment.service_id, Activity.active.is_(True)
    )
    if current:
        query = query.where(Activity.id.not_in(current))
    return list(db.session.scalars(query.order_by(Activity.name)))


# --- Dates -------------------------------------------------------------------------------------


def last_invoiced_day(household_id: int) -> date | None:
    """The last day of the household's last invoiced month (None: nothing invoiced yet)."""
    from citoyens.billing.models import Invoice

    month = db.session.scalar(
        select(func.max(Invoice.month)).where(
            Invoice.household_id == household_id, Invoice.kind == "invoice"
        )
    )
    if month is None:
        return None
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def earliest_end(enrolment: Enrolment, *, by_staff: bool, today: date) -> date:
    """The first date an enrolment may end on (or a removal take effect from).

    Families: today. Staff: a past date too, but never inside an invoiced month, and
    never before the day before the school year starts.
    """
    year_start = enrolment.school_year.starts_on - timedelta(days=1)
    if not by_staff:
        return max(today, year_start)
    invoiced = last_invoiced_day(enrolment.household_id)
    return max(year_start, invoiced) if invoiced else year_start


def check_date(enrolment: Enrolment, on_date: date | None, *, by_staff: bool, today: date):
    """Raise EnrolmentChangeError when `on_date` cannot be used for this enrolment."""
    if not isinstance(on_date, date):
        raise EnrolmentChangeError("Indiquez une date, par exemple 15/03/2031.")
    first = earliest_end(enrolment, by_staff=by_staff, today=today)
    if on_date < first:
        if not by_staff:
            raise EnrolmentChangeError("La date ne peut pas être déjà passée.")
        raise EnrolmentChangeError(
            f"La date ne peut pas être avant le {date_fr(first)} : les jours jusqu'à cette "
            "date sont déjà facturés ou précèdent l'année scolaire."
        )
    if on_date >= enrolment.school_year.ends_on:
        raise EnrolmentChangeError(
            f"La date doit être avant la fin de l'année scolaire "
            f"({date_fr(enrolment.school_year.ends_on)})."
        )


def _require_accepted(enrolment: Enrolment) -> None:
    if enrolment.status not in CHANGEABLE:
        raise EnrolmentChangeError("Seule une inscription acceptée et en cours peut être modifiée.")


# --- Cancelling the bookings a change removes --------------------------------------------------


def cancel_bookings_after(
    enrolment: Enrolment, activity_ids: list[int], after: date, *, actor, note: str
) -> list[CancelledDay]:
    """Cancel the child's live bookings (booked or waiting) of these activities in the
    enrolment's school year, on days after `after`: not billed, places freed, one history
    row each. A constant number of statements whatever the count."""
    from citoyens.reservations.models import ActivityDay, Booking
    from citoyens.reservations.operations import _change, _changes, state_of

    if not activity_ids:
        return []
    rows = db.session.execute(
        select(Booking, ActivityDay.day, Activity.name)
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .where(
            Booking.child_id == enrolment.child_id,
            ActivityDay.activity_id.in_(activity_ids),
            ActivityDay.school_year_id == enrolment.school_year_id,
            ActivityDay.day > after,
            Booking.status.in_(("booked", "waiting")),
            Booking.attendance.is_(None),
        )
        .order_by(ActivityDay.day, Activity.start_time, Booking.id)
    ).all()
    if not rows:
        return []
    changed = set(
        db.session.scalars(
            update(Booking)
            .where(
                Booking.id.in_([booking.id for booking, *_ in rows]),
                Booking.status.in_(("booked", "waiting")),
            )
            .values(status="cancelled", late=False, waiting_since=None, updated_at=utcnow())
            .returning(Booking.id)
            .execution_options(synchronize_session=False)
        )
    )
    # Count the places again (as closures do): exact whatever else happened to the days.
    still_booked = (
        select(func.count(Booking.id))
        .where(Booking.activity_day_id == ActivityDay.id, Booking.status == "booked")
        .scalar_subquery()
    )
    db.session.execute(
        update(ActivityDay)
        .where(ActivityDay.id.in_({booking.activity_day_id for booking, *_ in rows}))
        .values(booked=still_booked)
        .execution_options(synchronize_session=False)
    )
    changes, cancelled = [], []
    for booking, day, activity_name in rows:
        if booking.id not in changed:
            continue
        changes.append(_change(booking.id, state_of(booking), "cancelled", actor, True, note))
        cancelled.append(CancelledDay(activity_name, day, booking.status == "waiting"))
    _changes(changes)
    db.session.expire_all()
    return cancelled


def _tell_family(enrolment: Enrolment, outcome: ChangeOutcome) -> None:
    """One e-mail to the family: what changed, and every booking cancelled."""
    from citoyens.mail import send_mail
    from citoyens.requests.operations import family_recipients

    if not outcome.cancelled:
        return
    for email in family_recipients(enrolment.household_id):
        send_mail(
            "enrolment-changed",
            email,
            f"Inscription de {enrolment.child.first_name} modifiée : réservations annulées",
            "enrolment_changed",
            reply_to=enrolment.service.mailbox,
            child_name=enrolment.child.first_name,
            service_name=enrolment.service.name,
            summary=outcome.summary,
            lines=outcome.cancelled,
        )


def _record(
    enrolment: Enrolment, outcome: ChangeOutcome, *, actor, event: str, reason: str | None
) -> None:
    """The change goes into the enrolment's request history (seen by family and staff)
    and the audit; the family hears of cancelled bookings."""
    from citoyens.requests.operations import add_message

    if reason:
        outcome.summary += f" Motif : {reason.strip()}"
    text = outcome.summary
    if outcome.cancelled:
        text += f" {len(outcome.cancelled)} réservation(s) annulée(s), non facturée(s)."
    if enrolment.request is not None:
        add_message(enrolment.request, text, actor=actor)
    audit.record(event, actor=actor, target=f"enrolment:{enrolment.id}", details=text[:200])
    _tell_family(enrolment, outcome)


# --- The changes -------------------------------------------------------------------------------


def end_enrolment(
    enrolment: Enrolment,
    on_date: date,
    *,
    actor,
    by_staff: bool = True,
    today=None,
    reason: str | None = None,
) -> ChangeOutcome:
    """End the enrolment after `on_date` (its last day): status "ended", the child's
    bookings after that date cancelled, the calendar offers no later day."""
    today = today or today_in_paris()
    _require_accepted(enrolment)
    check_date(enrolment, on_date, by_staff=by_staff, today=today)
    # Two agents ending it at once: the first wins, the second is told.
    done = db.session.execute(
        update(Enrolment)
        .where(Enrolment.id == enrolment.id, Enrolment.status == "accepted")
        .values(status="ended", ends_on=on_date)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        raise EnrolmentChangeError("Cette inscription vient d'être modifiée : rechargez la page.")
    activity_ids = [link.activity_id for link in enrolment.activities]
    outcome = ChangeOutcome(
        f"Inscription terminée : dernier jour le {date_fr(on_date)}.",
        cancel_bookings_after(
            enrolment, activity_ids, on_date, actor=actor, note="Fin de l'inscription"
        ),
    )
    db.session.refresh(enrolment)
    _record(enrolment, outcome, actor=actor, event="enrolment.ended", reason=reason)
    db.session.flush()
    return outcome


def change_activities(
    enrolment: Enrolment,
    add_ids,
    remove_ids,
    *,
    actor,
    on_date: date | None = None,
    by_staff: bool = True,
    today=None,
    reason: str | None = None,
) -> ChangeOutcome:
    """Add activities of the enrolment's service, or remove some: a removed activity's
    bookings after `on_date` (default: today, so from tomorrow) are cancelled."""
    today = today or today_in_paris()
    _require_accepted(enrolment)
    on_date = on_date or max(today, enrolment.school_year.starts_on - timedelta(days=1))
    current = {link.activity_id for link in enrolment.activities}
    add = {int(i) for i in add_ids or ()} - current
    remove = {int(i) for i in remove_ids or ()}
    if not add and not remove:
        raise EnrolmentChangeError("Choisissez une activité à ajouter ou à retirer.")
    if remove - current:
        raise EnrolmentChangeError(
            "Une des activités à retirer ne fait pas partie de l'inscription."
        )
    if remove:
        check_date(enrolment, on_date, by_staff=by_staff, today=today)
    added = []
    if add:
        added = list(
            db.session.scalars(
                select(Activity)
                .where(
                    Activity.id.in_(add),
                    Activity.service_id == enrolment.service_id,
                    Activity.active.is_(True),
                )
                .order_by(Activity.start_time, Activity.id)
            )
        )
        if len(added) != len(add):
            raise EnrolmentChangeError(
                "Une des activités choisies n'est pas proposée par ce service."
            )
    if not (current | add) - remove and not enrolment.service.place_request:
        raise EnrolmentChangeError(
            "L'inscription doit garder au moins une activité : pour tout arrêter, "
            "terminez l'inscription."
        )
    names = {link.activity_id: link.activity.name for link in enrolment.activities}
    removed_names = sorted(names[i] for i in remove)
    if remove:
        db.session.execute(
            delete(EnrolmentActivity).where(
                EnrolmentActivity.enrolment_id == enrolment.id,
                EnrolmentActivity.activity_id.in_(remove),
            )
        )
    for activity in added:
        db.session.add(EnrolmentActivity(enrolment_id=enrolment.id, activity_id=activity.id))
    db.session.flush()
    parts = []
    if added:
        parts.append("Activité(s) ajoutée(s) : " + ", ".join(a.name for a in added) + ".")
    if remove:
        parts.append(
            "Activité(s) retirée(s) : "
            + ", ".join(removed_names)
            + f", à partir du lendemain du {date_fr(on_date)}."
        )
    cancelled = cancel_bookings_after(
        enrolment, sorted(remove), on_date, actor=actor, note="Activité retirée de l'inscription"
    )
    db.session.refresh(enrolment)
    outcome = ChangeOutcome(" ".join(parts), cancelled)
    _record(enrolment, outcome, actor=actor, event="enrolment.activities", reason=reason)
    db.session.flush()
    return outcome


def change_school_class(
    enrolment: Enrolment,
    school_id: int | None,
    class_level: str | None,
    *,
    actor,
    reason: str | None = None,
) -> ChangeOutcome:
    """Change the child's school or class, through the household's rules (history kept)."""
    from citoyens.households import operations as household_ops
    from citoyens.households.rules import active_membership

    _require_accepted(enrolment)
    class_level = class_level or None
    if class_level is not None and class_level not in CLASS_LEVELS:
        raise EnrolmentChangeError("Choisissez une classe de la liste.")
    school = None
    if school_id is not None:
        school = db.session.get(School, school_id)
        if school is None or not school.active:
            raise EnrolmentChangeError("Choisissez une école de la liste.")
    membership = active_membership(enrolment.household_id, enrolment.child_id)
    if membership is None:
        raise EnrolmentChangeError("Cet enfant ne fait plus partie du foyer.")
    changed = household_ops.update_member(
        membership, {"school_id": school_id, "class_level": class_level}, actor=actor
    )
    if not changed:
        raise EnrolmentChangeError("L'école et la classe sont déjà celles-ci.")
    child = db.session.get(Person, enrolment.child_id)
    outcome = ChangeOutcome(
        f"Scolarité de {child.first_name} : {school.name if school else 'sans école'}"
        f"{', ' + class_level if class_level else ''}."
    )
    _record(enrolment, outcome, actor=actor, event="enrolment.school", reason=reason)
    db.session.flush()
    return outcome
