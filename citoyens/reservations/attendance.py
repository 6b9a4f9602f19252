"""Absences and attendance: a family's declared absence with its medical certificate, staff
marking who was there, and a child present without a booking (walk-in).

Every change is a row of the booking's history (operations.py); functions flush, the
caller commits (inside `write_transaction`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from citoyens import audit
from citoyens.database import utcnow
from citoyens.documents.models import DocumentType
from citoyens.extensions import db
from citoyens.reservations import exclusions, rules
from citoyens.reservations.models import ATTENDANCES, ActivityDay, Booking
from citoyens.reservations.operations import BookingError, _change, _changes, state_of
from citoyens.reservations.rules import cutoff_at
from citoyens.services.models import Activity

# The document type of an absence's medical certificate (made on first use).
ABSENCE_TYPE = "justificatif-absence"


def absence_document_type() -> DocumentType:
    """The type of a medical certificate sent for an absence (made on first use).

    Inactive: it is not one of the documents a family keeps up to date, so "Mes
    documents" does not ask for it; the day's page does.
    """
    doc_type = db.session.scalar(select(DocumentType).where(DocumentType.code == ABSENCE_TYPE))
    if doc_type is None:
        doc_type = DocumentType(
            code=ABSENCE_TYPE,
            label="Certificat médical d'absence",
            scope="child",
            health=True,
            active=False,
            description="Le certificat du médecin pour l'absence de l'enfant un jour réservé.",
        )
        db.session.add(doc_type)
        db.session.flush()
    return doc_type


def declare_absence(
    household_id: int, child, booking: Booking, checked, *, actor, now: datetime | None = None
):
    """A sick child after the cut-off: the medical certificate is stored as the child's
    document of that day and reviewed by staff; only once accepted is the day not billed
    (DOMAIN.md "Billing"). After a refusal the family may send another one, which
    replaces the refused one."""
    from citoyens.documents.models import Document
    from citoyens.documents.operations import upload_document

    now = now or rules.now_utc()
    row = booking.activity_day
    activity = db.session.get(Activity, row.activity_id)
    if booking.status != "booked":
        raise BookingError("Ce jour n'est pas réservé : il n'y a pas d'absence à déclarer.")
    if booking.certificate_id is not None:
        current = db.session.get(Document, booking.certificate_id)
        if current is not None and current.status == "pending":
            raise BookingError(
                "Un certificat pour ce jour est déjà en attente de vérification par le service."
            )
        if current is not None and current.status == "accepted":
            raise BookingError("Le certificat de ce jour a déjà été accepté.")
    if now < cutoff_at(activity, row.day):
        raise BookingError(
            "Ce jour est encore modifiable : annulez la réservation "
            "au lieu de déclarer une absence."
        )
    document = upload_document(
        household_id=household_id,
        doc_type=absence_document_type(),
        person=child,
        checked=checked,
        actor=actor,
        activity_day_id=row.id,
    )
    before = state_of(booking)
    booking.certificate_id = document.id
    booking.attendance = "excused"
    booking.updated_at = utcnow()
    db.session.flush()
    _changes([_change(booking.id, before, state_of(booking), actor, False, "Absence déclarée")])
    audit.record("booking.absence", actor=actor, target=f"booking:{booking.id}")
    return document


def set_attendance(booking: Booking, attendance: str | None, *, actor) -> None:
    """Staff record whether a booked child came (None clears it)."""
    if attendance is not None and attendance not in ATTENDANCES:
        raise BookingError("Choisissez présent, absent ou absent justifié.")
    if booking.status != "booked":
        raise BookingError("Cet enfant n'est pas réservé ce jour-là.")
    if attendance == booking.attendance:
        return
    before = state_of(booking)
    booking.attendance = attendance
    booking.updated_at = utcnow()
    db.session.flush()
    _changes([_change(booking.id, before, state_of(booking), actor, True, "Pointage")])


def record_walk_in(household_id: int, child_id: int, activity_day: ActivityDay, *, actor):
    """A child who came without a reservation: present, billed with the surcharge."""
    booking = db.session.scalar(
        select(Booking)
        .where(Booking.child_id == child_id, Booking.activity_day_id == activity_day.id)
        # PostgreSQL: the row as last committed, locked, so a booking made meanwhile (which
        # holds a place) is not overwritten below. SQLite: BEGIN IMMEDIATE serialises.
        .with_for_update()
    )
    if booking is not None and booking.status in ("booked", "walk_in"):
        raise BookingError("Cet enfant est déjà sur la liste du jour.")
    set_id = db.session.scalar(
        select(Activity.exclusion_set_id).where(Activity.id == activity_day.activity_id)
    )
    holder = exclusions.held_on(child_id, {activity_day.day}, {set_id} - {None}).get(
        (activity_day.day, set_id)
    )
    if holder is not None and holder[0] != activity_day.id:
        name = exclusions.already_holds(
            exclusions.first_name_of(child_id), holder[1], activity_day.day
        )
        raise BookingError(f"{name} : annulez-la d'abord.")
    stamp = utcnow()
    if booking is None:
        booking = Booking(
            activity_day_id=activity_day.id,
            child_id=child_id,
            household_id=household_id,
            day=activity_day.day,
            exclusion_set_id=set_id,
            status="walk_in",
            attendance="present",
            created_at=stamp,
            updated_at=stamp,
        )
        db.session.add(booking)
        db.session.flush()
        before = None
    else:
        before = state_of(booking)
        booking.status, booking.attendance, booking.updated_at = "walk_in", "present", stamp
        booking.household_id = household_id
        booking.exclusion_set_id = set_id
        booking.waiting_since = None
        # A late cancellation the child came to anyway: billed once, as a walk-in.
        booking.late = False
        db.session.flush()
    note = "Présent sans réservation"
    _changes([_change(booking.id, before, state_of(booking), actor, True, note)])
    return booking
