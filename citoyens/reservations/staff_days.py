"""Staff pages of the reservations: capacity overview, day lists, attendance and walk-ins,
day capacity, exports.

Every route sits on the admin blueprint (staff only). An agent sees the activities of
the services they work for; another service's day answers 404 (and the denial is
logged). Writes go through `write_transaction`, so concurrent taps on a tablet behave.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user

from citoyens import audit
from citoyens.admin.blueprint import bp, visible_or_deny
from citoyens.core import settings as commune_settings
from citoyens.documents.uploads import content_disposition
from citoyens.extensions import db
from citoyens.formatting import sexed
from citoyens.forms import parse_id
from citoyens.reservations import attendance, exports, staff
from citoyens.reservations import operations as ops
from citoyens.reservations.capacity import over_capacity_warning, set_day_capacity
from citoyens.reservations.models import ATTENDANCES, ActivityDay, Booking
from citoyens.transactions import write_transaction
from citoyens.web import is_htmx_fragment_request, render

ATTENDANCE_CHOICES = [*ATTENDANCES.items(), ("", "Non pointé")]


# The attendance recorded, as said of the child (agreement by sex; a neutral wording when
# the sex is not known, never a parenthesised ending).
ATTENDANCE_DONE = {
    "present": ("présent", "présente", "pointage : présence"),
    "absent": ("absent", "absente", "pointage : absence"),
    "excused": (
        "absent, absence justifiée",
        "absente, absence justifiée",
        "pointage : absence justifiée",
    ),
    "": ("pointage effacé",) * 3,
}


BAD_ATTENDANCE = "Choix de présence inconnu : rien n'a été enregistré."


MAX_DAY_CAPACITY = 1000  # as the activity form


NOT_YET = "Le pointage ouvre le jour même de l'activité, et jamais un jour fermé."


def _actor():
    return current_user._get_current_object()


@bp.get("/reservations", endpoint="reservations")
def reservations_overview():
    monday = staff.week_of(request.args.get("semaine"), staff.today())
    overview = staff.week_overview(current_user, monday, parse_id(request.args.get("service")))
    return render(
        "admin/reservations/index.html",
        overview=overview,
        today=staff.today(),
        day_label=staff.day_label,
    )


def _visible_day(activity_day_id: int) -> ActivityDay:
    row, allowed = staff.visible_day(current_user, activity_day_id)
    return visible_or_deny(row, allowed, f"activity_day:{activity_day_id}")


def _attendance_url(activity_day_id: int) -> str:
    """The attendance URL of the day without its booking id (a row adds its own)."""
    url = url_for("admin.reservation_attendance", activity_day_id=activity_day_id, booking_id=0)
    return url.removesuffix("0")


def _day_page(
    row: ActivityDay,
    *,
    error=None,
    status=200,
    walk_in_error=None,
    capacity_error=None,
    capacity_warning=None,
    asked=None,
):
    sheet = staff.day_sheet(row)
    # A canteen day lists hundreds of children: the call is taken class by class.
    level = request.args.get("classe")
    if level not in sheet.class_levels:
        level = None
    return render(
        "admin/reservations/day.html",
        status=status,
        sheet=sheet,
        level=level,
        listed=sheet.of_class(level),
        attendance_url=_attendance_url(row.id),
        choices=staff.walk_in_choices(row),
        can_point=staff.can_point(row, staff.today()),
        attendance_choices=ATTENDANCE_CHOICES,
        day_label=staff.day_label,
        error=error,
        walk_in_error=walk_in_error,
        capacity_error=capacity_error,
        capacity_warning=capacity_warning,
        asked=asked,
    )


@bp.get("/reservations/jour/<int:activity_day_id>", endpoint="reservation_day")
def reservation_day(activity_day_id: int):
    row = _visible_day(activity_day_id)
    # The list shows the children's allergies and PAI: who opened it is kept.
    audit.record("reservation_day.viewed", actor=current_user, target=f"activity_day:{row.id}")
    db.session.commit()
    return _day_page(row)


def _row_fragment(row: ActivityDay, booking: Booking, *, announce=None, error=None, status=200):
    return render(
        "admin/reservations/_child_row.html",
        status=status,
        booking=booking,
        attendance_url=_attendance_url(row.id),
        can_point=staff.can_point(row, staff.today()),
        attendance_choices=ATTENDANCE_CHOICES,
        announce=announce,
        error=error,
    )


@bp.post(
    "/reservations/jour/<int:activity_day_id>/presence/<int:booking_id>",
    endpoint="reservation_attendance",
)
def reservation_attendance(activity_day_id: int, booking_id: int):
    row = _visible_day(activity_day_id)
    booking = staff.day_booking(row.id, booking_id)
    if booking is None or booking.status not in ("booked", "walk_in"):
        abort(404)
    value = request.form.get("presence")
    error = None
    if value not in ATTENDANCE_DONE:
        error = BAD_ATTENDANCE
    elif not staff.can_point(row, staff.today()):
        error = NOT_YET
    elif booking.status != "booked":
        error = "Cet enfant est venu sans réservation : il est déjà pointé présent."
    if error is None:
        day_id = row.id

        def work():
            target = staff.day_booking(day_id, booking_id)
            if target is None:
                raise ops.BookingError("Cette réservation n'existe plus : rechargez la page.")
            attendance.set_attendance(target, value or None, actor=_actor())
            audit.record(
                "booking.attendance",
                actor=current_user,
                target=f"booking:{booking_id}",
                details=value or "cleared",
            )

        try:
            write_transaction(work)
        except ops.BookingError as exc:
            db.session.rollback()
            error = str(exc)
    if error is not None:
        if is_htmx_fragment_request():
            booking = staff.day_booking(activity_day_id, booking_id)
            return _row_fragment(row, booking, error=error, status=422)
        return _day_page(row, error=error, status=422)
    booking = staff.day_booking(activity_day_id, booking_id)
    done = f"{booking.child.full_name} : {sexed(booking.child, *ATTENDANCE_DONE[value])}."
    if is_htmx_fragment_request():
        return _row_fragment(row, booking, announce=done)
    flash(done, "success")
    return redirect(
        url_for(
            "admin.reservation_day", activity_day_id=activity_day_id, _anchor=f"ligne-{booking_id}"
        ),
        303,
    )


@bp.post(
    "/reservations/jour/<int:activity_day_id>/sans-reservation",
    endpoint="reservation_walk_in",
)
def reservation_walk_in(activity_day_id: int):
    row = _visible_day(activity_day_id)
    enrolment_id = parse_id(request.form.get("inscription"))
    choice = None
    if enrolment_id is not None:
        found = staff.walk_in_choices(row, enrolment_id)
        choice = found[0] if found else None
    error = None
    if not staff.can_point(row, staff.today()):
        error = NOT_YET
    elif choice is None:
        error = "Choisissez un enfant de la liste : rien n'a été enregistré."
    else:
        day_id, child_id, household_id = row.id, choice.child.id, choice.household_id
        name = choice.child.full_name

        def work():
            day = db.session.get(ActivityDay, day_id)
            booking = attendance.record_walk_in(household_id, child_id, day, actor=_actor())
            audit.record(
                "booking.walk_in",
                actor=current_user,
                target=f"booking:{booking.id}",
                details=f"child:{child_id} household:{household_id}",
            )

        try:
            write_transaction(work)
        except ops.BookingError as exc:
            db.session.rollback()
            error = str(exc)
    if error is not None:
        return _day_page(row, walk_in_error=error, status=422)
    flash(f"{name} : présence enregistrée sans réservation.", "success")
    return redirect(url_for("admin.reservation_day", activity_day_id=activity_day_id), 303)


@bp.post("/reservations/jour/<int:activity_day_id>/capacite", endpoint="reservation_capacity")
def reservation_capacity(activity_day_id: int):
    """One day's capacity (an outing with a smaller bus). Below the children booked, a
    warning first; confirmed, every booking stays and newcomers wait."""
    row = _visible_day(activity_day_id)
    raw = (request.form.get("capacite") or "").strip()
    capacity = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 4 else None
    if capacity is None or capacity > MAX_DAY_CAPACITY:
        return _day_page(
            row,
            capacity_error=f"Indiquez un nombre de places entre 0 et {MAX_DAY_CAPACITY}.",
            status=422,
        )
    confirmed = request.form.get("confirmer") == "1"
    day_id, at = row.id, staff.now()

    def work():
        day = db.session.get(ActivityDay, day_id)
        result = set_day_capacity(day, capacity, confirmed=confirmed, now=at)
        if result.changed:
            audit.record(
                "activity_day.capacity",
                actor=current_user,
                target=f"activity_day:{day_id}",
                details=f"{capacity} booked:{result.booked}",
            )
        return result

    result = write_transaction(work)
    db.session.expire_all()
    if result.needs_confirmation:
        row = staff.activity_day(day_id)
        warning = over_capacity_warning(result.booked, capacity)
        return _day_page(row, capacity_warning=warning, asked=capacity, status=422)
    message = f"Capacité du jour : {capacity} places."
    if result.over:
        message += " " + over_capacity_warning(result.booked, capacity)
    flash(message, "warning" if result.over else "success")
    return redirect(url_for("admin.reservation_day", activity_day_id=day_id), 303)


def _export(activity_day_id: int, kind: str):
    row = _visible_day(activity_day_id)
    sheet = staff.day_sheet(row)
    audit.record(f"reservation_day.{kind}", actor=current_user, target=f"activity_day:{row.id}")
    db.session.commit()
    if kind == "pdf":
        body = exports.day_pdf(sheet, commune_settings.current().name, staff.now())
        mimetype = "application/pdf"
    else:
        body = exports.day_csv(sheet)
        mimetype = "text/csv; charset=utf-8"
    response = current_app.response_class(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = content_disposition(exports.export_name(sheet, kind))
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/reservations/jour/<int:activity_day_id>.pdf", endpoint="reservation_day_pdf")
def reservation_day_pdf(activity_day_id: int):
    return _export(activity_day_id, "pdf")


@bp.get("/reservations/jour/<int:activity_day_id>.csv", endpoint="reservation_day_csv")
def reservation_day_csv(activity_day_id: int):
    return _export(activity_day_id, "csv")
