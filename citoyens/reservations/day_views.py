"""A booked day's page for the family: its history, and declaring an absence with a medical
certificate (routes on the reservations blueprint).
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from sqlalchemy import select

from citoyens.accounts.decorators import parent_required
from citoyens.billing.corrections import absence_outcome, invoiced_bookings
from citoyens.documents.models import Document
from citoyens.documents.operations import discard_file
from citoyens.documents.uploads import ACCEPT_ATTRIBUTE, UploadError, check_upload, read_limited
from citoyens.extensions import db
from citoyens.reservations.attendance import declare_absence
from citoyens.reservations.forms import AbsenceForm
from citoyens.reservations.models import Booking, BookingChange
from citoyens.reservations.operations import BookingError
from citoyens.reservations.views import (
    _back_to_month,
    _cell,
    _child_or_404,
    _day_or_404,
    _household_id,
    bp,
)
from citoyens.web import render


@bp.get("/enfant/<int:child_id>/jour/<int:activity_day_id>")
@parent_required
def day(child_id: int, activity_day_id: int):
    child = _child_or_404(child_id)
    row, activity = _day_or_404(child, activity_day_id)
    return _day_page(child, row, activity, AbsenceForm())


def _day_page(child, row, activity, form, status=200, error=None):
    cell = _cell(child, row, activity)
    history = []
    if cell.booking is not None:
        history = list(
            db.session.scalars(
                select(BookingChange)
                .where(BookingChange.booking_id == cell.booking.id)
                .order_by(BookingChange.created_at.desc(), BookingChange.id.desc())
            )
        )
    certificate = invoiced = None
    if cell.booking is not None:
        invoiced = cell.booking.id in invoiced_bookings([cell.booking.id])
        if cell.booking.certificate_id is not None:
            certificate = db.session.get(Document, cell.booking.certificate_id)
    return render(
        "reservations/day.html",
        status=status,
        child=child,
        cell=cell,
        certificate=certificate,
        invoiced=invoiced,
        history=history,
        form=form,
        error=error,
        accept=ACCEPT_ATTRIBUTE,
        back=_back_to_month(child.id, row.day),
    )


@bp.post("/enfant/<int:child_id>/jour/<int:activity_day_id>/absence")
@parent_required
def absence(child_id: int, activity_day_id: int):
    """A booked day after the cut-off: the child is ill, here is the certificate."""
    household_id = _household_id()
    child = _child_or_404(child_id)
    row, activity = _day_or_404(child, activity_day_id)
    form = AbsenceForm()
    form.validate()
    upload = form.fichier.data
    error = None
    if form.csrf_token.errors:
        abort(400)
    if not upload or not getattr(upload, "filename", None):
        error = "Joignez le certificat médical."
    else:
        try:
            checked = check_upload(read_limited(upload.stream), upload.filename)
        except UploadError as exc:
            error = str(exc)
    booking = None
    if error is None:
        booking = db.session.scalar(
            select(Booking).where(Booking.child_id == child.id, Booking.activity_day_id == row.id)
        )
        if booking is None:
            error = "Ce jour n'est pas réservé : il n'y a pas d'absence à déclarer."
    if error is None:
        try:
            document = declare_absence(household_id, child, booking, checked, actor=current_user)
        except BookingError as exc:
            db.session.rollback()
            error = str(exc)
    if error is not None:
        return _day_page(child, row, activity, form, status=422, error=error)
    try:
        db.session.commit()
    except BaseException:
        db.session.rollback()
        discard_file(document)
        raise
    flash(absence_outcome(booking.id), "success")
    return redirect(url_for(".day", child_id=child.id, activity_day_id=row.id), 303)
