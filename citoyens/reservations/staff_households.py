"""Staff pages of the reservations: a family's month of bookings, and booking or
cancelling on its behalf.

Every route sits on the admin blueprint (staff only). An agent sees the households they
have business with; another household answers 404 (and the denial is logged). Writes go
through `write_transaction`, as the family's own changes do.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from citoyens import audit
from citoyens.admin.blueprint import bp, deny, visible_or_deny
from citoyens.extensions import db
from citoyens.forms import parse_id
from citoyens.households.directory import household_names
from citoyens.households.models import Household
from citoyens.reservations import operations as ops
from citoyens.reservations import staff
from citoyens.reservations.models import Booking
from citoyens.reservations.rules import STATES, child_of, children_of
from citoyens.services.rules import staff_can_see_household
from citoyens.transactions import write_transaction
from citoyens.web import is_htmx_fragment_request, render


def _visible_household(household_id: int) -> Household:
    household = db.session.get(Household, household_id)
    if household is None:
        abort(404)
    if not staff_can_see_household(current_user, household_id):
        deny(f"household:{household_id}")
    return household


@bp.get("/familles/<int:household_id>/reservations", endpoint="household_reservations")
def household_reservations(household_id: int):
    _visible_household(household_id)
    children = children_of(household_id)
    child_id = parse_id(request.args.get("enfant"))
    if child_id is not None:
        child = next((c for c in children if c.id == child_id), None)
        if child is None:
            abort(404)
    else:
        child = children[0] if children else None
    at = staff.now()
    month = staff.parse_month(request.args.get("mois"), staff.today())
    calendar = staff.staff_month(current_user, household_id, child, month, at) if child else None
    return render(
        "admin/reservations/household.html",
        household_id=household_id,
        household_name=household_names({household_id})[household_id],
        children=children,
        child=child,
        month=month,
        previous_month=staff.shift_month(month, -1),
        next_month=staff.shift_month(month, 1),
        calendar=calendar,
        now=at,
        states=STATES,
        day_label=staff.day_label,
        month_label=staff.month_label,
    )


ACTIONS = {"book", "cancel", "wait"}


REFUSALS = {
    "closed": "ce jour est fermé",
    "full": "il n'y a plus de place (proposez la liste d'attente)",
    "already": "l'enfant est déjà sur la liste du jour",
    "already_waiting": "l'enfant est déjà sur la liste d'attente",
    "not_enrolled": "l'enfant n'a pas d'inscription acceptée pour cette activité",
    "not_booked": "il n'y a pas de réservation à annuler",
    "cutoff": "le délai est dépassé",
}


def _change_message(action: str, outcome: ops.Outcome, late: bool, what: str) -> tuple[str, bool]:
    """(French message, whether it is an error) for one day's booking action."""
    if outcome.refused:
        day_id, reason = next(iter(outcome.refused.items()))
        text = outcome.details.get(day_id) or REFUSALS.get(reason, reason)
        return f"Rien n'a été fait pour {what} : {text}.", True
    if outcome.booked:
        return f"Réservé : {what}.", False
    if outcome.waiting:
        return f"Inscrit sur la liste d'attente : {what}.", False
    if late:
        return (
            f"Annulé : {what}. Annulation après le délai : ce jour reste facturé à la famille.",
            False,
        )
    message = f"Annulé : {what}."
    if outcome.promoted:
        message += " La place libérée est allée au premier enfant en liste d'attente."
    return message, False


@bp.post(
    "/familles/<int:household_id>/reservations/<int:child_id>/<int:activity_day_id>",
    endpoint="household_reservation_change",
)
def household_reservation_change(household_id: int, child_id: int, activity_day_id: int):
    _visible_household(household_id)
    child = child_of(household_id, child_id)
    if child is None:
        abort(404)
    row, allowed = staff.visible_day(current_user, activity_day_id)
    row = visible_or_deny(row, allowed, f"activity_day:{activity_day_id}")
    action = request.form.get("action", "")
    at = staff.now()
    what = f"{child.first_name}, {row.activity.name}, {staff.day_label(row.day)}"
    back = url_for(
        "admin.household_reservations",
        household_id=household_id,
        enfant=child_id,
        mois=row.day.strftime("%Y-%m"),
        _anchor=f"cellule-{row.id}",
    )
    day_id = row.id
    if action not in ACTIONS:
        message, failed, status = "Action inconnue : rien n'a été fait.", True, 422
    else:

        def work():
            actor = current_user._get_current_object()
            if action == "cancel":
                outcome = ops.cancel_days(
                    household_id, child_id, [day_id], actor=actor, staff=True, now=at
                )
            else:
                outcome = ops.book_days(
                    household_id,
                    child_id,
                    [day_id],
                    actor=actor,
                    staff=True,
                    waiting_list=action == "wait",
                    now=at,
                )
            booking = db.session.scalar(
                select(Booking).where(
                    Booking.child_id == child_id, Booking.activity_day_id == day_id
                )
            )
            late = bool(booking is not None and booking.late and outcome.cancelled)
            if outcome.changed:
                done = (
                    "cancelled"
                    if outcome.cancelled
                    else ("booked" if outcome.booked else "waiting")
                )
                audit.record(
                    f"booking.staff_{done}",
                    actor=actor,
                    target=f"booking:{booking.id}" if booking else f"activity_day:{day_id}",
                    details=f"child:{child_id} household:{household_id}"
                    + (" late" if late else ""),
                )
            return outcome, late

        outcome, late = write_transaction(work)
        message, failed = _change_message(action, outcome, late, what)
        status = 422 if failed else 200
    if not is_htmx_fragment_request():
        flash(message, "error" if failed else "success")
        return redirect(back, 303)
    db.session.expire_all()
    row = staff.activity_day(activity_day_id)
    return render(
        "admin/reservations/_slot.html",
        status=status,
        household_id=household_id,
        child=child,
        cell=staff.staff_cell(household_id, child, row, at),
        now=at,
        states=STATES,
        day_label=staff.day_label,
        announce=None if failed else message,
        error=message if failed else None,
        fragment=True,
    )
