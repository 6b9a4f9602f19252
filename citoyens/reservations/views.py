"""Réservations: the family's calendars, the one-click weekly pattern, a day's page.

Every page is the household's own: another household's child, or a day of an
activity the child may not book, answers 404. A tap on a day books or cancels it
with htmx and gets back that day's cell alone (and an announcement for screen
readers); without JavaScript, each week is a form of checkboxes.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select

from citoyens.accounts.decorators import parent_required
from citoyens.extensions import db
from citoyens.formatting import weekday_fr
from citoyens.forms import parse_id, parse_query_month, parse_query_week, today_in_paris
from citoyens.reservations import rules
from citoyens.reservations.models import (
    ATTENDANCES,
    BOOKING_STATUSES,
    ActivityDay,
    Booking,
)
from citoyens.reservations.notify import send_summary
from citoyens.reservations.operations import REASONS, book_days, cancel_days
from citoyens.services.models import Activity, SchoolYear
from citoyens.transactions import write_transaction
from citoyens.web import is_htmx_fragment_request, render

bp = Blueprint("reservations", __name__, url_prefix="/reservations")


@bp.app_template_filter("booking_state")
def booking_state(value: str | None) -> str:
    """ "booked:present" → "Réservé, présent"."""
    if not value:
        return ""
    status, _, attendance = value.partition(":")
    label = BOOKING_STATUSES.get(status, status)
    if attendance:
        label += ", " + ATTENDANCES.get(attendance, attendance).lower()
    return label


def _household_id() -> int:
    return current_user.household_id


def _child_or_404(child_id: int):
    child = rules.child_of(_household_id(), child_id)
    if child is None:
        abort(404)
    return child


def _day_or_404(child, activity_day_id: int) -> tuple[ActivityDay, Activity]:
    """The day, if the child may book its activity (accepted enrolment); 404 otherwise."""
    row = db.session.scalar(select(ActivityDay).where(ActivityDay.id == activity_day_id))
    if row is None or not rules.is_entitled(child.id, row):
        abort(404)
    return row, db.session.get(Activity, row.activity_id)


def _cell(child, row: ActivityDay, activity: Activity):
    db.session.expire_all()
    booking = db.session.scalar(
        select(Booking).where(Booking.child_id == child.id, Booking.activity_day_id == row.id)
    )
    row = db.session.get(ActivityDay, row.id)
    now = rules.now_utc()
    cutoff = rules.cutoff_at(activity, row.day)
    ranks = rules.waiting_ranks([booking.id]) if booking and booking.status == "waiting" else {}
    return rules.Cell(
        activity=activity,
        day=row,
        booking=booking,
        cutoff=cutoff,
        modifiable=now < cutoff and not row.closed,
        waiting_rank=ranks.get(booking.id) if booking else None,
    )


def _refusals(outcome, dates: dict[int, date], names: dict[int, str]) -> list[str]:
    return [
        f"{names.get(day_id, '')}, {rules_day(dates.get(day_id))} : {outcome.reason(day_id)}"
        for day_id, code in outcome.refused.items()
        if code not in ("already", "not_booked")
    ]


def rules_day(value: date | None) -> str:
    """ "lundi 30 novembre", for messages."""
    return weekday_fr(value)


# --- Index ------------------------------------------------------------------------------------


@bp.get("/")
@parent_required
def index():
    household_id = _household_id()
    today = today_in_paris()
    children = rules.children_of(household_id)
    granted = rules.entitlements([c.id for c in children], today, date.max)
    by_child: dict[int, list[Activity]] = {c.id: [] for c in children}
    for item in granted:
        if item.activity not in by_child[item.child_id]:
            by_child[item.child_id].append(item.activity)
    # Each child's calendar opens on this month, or on the first month of a year to come.
    starts = dict(
        db.session.execute(
            select(SchoolYear.id, SchoolYear.starts_on).where(
                SchoolYear.id.in_({item.school_year_id for item in granted})
            )
        ).all()
    )
    months = {child.id: today.strftime("%Y-%m") for child in children}
    for item in granted:
        start = starts[item.school_year_id]
        if start > today:
            months[item.child_id] = min(
                start.strftime("%Y-%m"),
                months[item.child_id]
                if months[item.child_id] > today.strftime("%Y-%m")
                else "9999-12",
            )
    return render(
        "reservations/index.html",
        children=children,
        by_child=by_child,
        bookable=any(by_child.values()),
        months=months,
    )


# --- Calendar ---------------------------------------------------------------------------------


def _period(today: date) -> tuple[date, date, str, date | None]:
    """The period asked: ?semaine=YYYY-MM-DD (its week) or ?mois=YYYY-MM (default: now)."""
    monday = parse_query_week(request.args.get("semaine"))
    if monday is not None:
        return monday, monday + timedelta(days=6), "semaine", monday
    month = parse_query_month(request.args.get("mois")) or today.replace(day=1)
    first, last = rules.month_bounds(month)
    return first, last, "mois", None


@bp.get("/enfant/<int:child_id>")
@parent_required
def month(child_id: int):
    household_id = _household_id()
    child = _child_or_404(child_id)
    children = rules.children_of(household_id)
    today = today_in_paris()
    first, last, view, monday = _period(today)
    calendar = rules.load_calendars(household_id, [child], first, last, rules.now_utc())[child.id]
    if view == "semaine":
        previous_link = url_for(".month", child_id=child.id, semaine=(monday - timedelta(7)))
        next_link = url_for(".month", child_id=child.id, semaine=(monday + timedelta(7)))
    else:
        previous_month = (first - timedelta(days=1)).replace(day=1)
        next_month = last + timedelta(days=1)
        previous_link = url_for(".month", child_id=child.id, mois=previous_month.strftime("%Y-%m"))
        next_link = url_for(".month", child_id=child.id, mois=next_month.strftime("%Y-%m"))
    return render(
        "reservations/month.html",
        child=child,
        children=children,
        calendar=calendar,
        first=first,
        last=last,
        view=view,
        monday=monday or today - timedelta(days=today.weekday()),
        previous_link=previous_link,
        next_link=next_link,
        today=today,
    )


@bp.post("/enfant/<int:child_id>/jour/<int:activity_day_id>")
@parent_required
def toggle(child_id: int, activity_day_id: int):
    """One day of one activity: book it (its checkbox sent), cancel it (not sent),
    join (`attente`) or leave (`quitter`) its waiting list."""
    household_id = _household_id()
    child = _child_or_404(child_id)
    row, activity = _day_or_404(child, activity_day_id)
    form = request.form
    if form.get("attente"):
        action = "wait"
    elif form.get("quitter") or f"j{row.id}" not in form:
        action = "cancel"
    else:
        action = "book"

    def work():
        if action == "cancel":
            return cancel_days(household_id, child.id, [row.id], actor=current_user)
        return book_days(
            household_id,
            child.id,
            [row.id],
            actor=current_user,
            waiting_list=action == "wait",
            entitled_ids={activity.id},
        )

    outcome = write_transaction(work)
    code = outcome.refused.get(row.id)
    label = f"{activity.name}, {rules_day(row.day)}"
    if outcome.booked:
        message = f"Réservé : {label}."
    elif outcome.waiting:
        message = f"Sur liste d'attente : {label}."
    elif outcome.cancelled:
        message = f"Annulé : {label}."
    elif code in ("already", "not_booked"):
        message = f"Aucun changement : {label}."
    elif code == "incompatible":
        message = f"Pas de changement pour {label} : {outcome.reason(row.id)}."
    else:
        message = f"Pas de changement pour {label} : {REASONS.get(code, code)}."
    if outcome.changed:
        send_summary(
            household_id, {child.id: child.first_name}, [f"{child.first_name} — {message}"]
        )
        db.session.commit()
    status = 422 if code and code not in ("already", "not_booked") else 200
    if is_htmx_fragment_request():
        return render(
            "reservations/_cell_response.html",
            status=status,
            cell=_cell(child, row, activity),
            child=child,
            message=message,
            error=status == 422,
        )
    flash(message, "error" if status == 422 else "success")
    return redirect(_back_to_month(child.id, row.day), 303)


def _back_to_month(child_id: int, day: date) -> str:
    monday = day - timedelta(days=day.weekday())
    return url_for(".month", child_id=child_id, mois=day.strftime("%Y-%m")) + (
        f"#semaine-{monday.isoformat()}"
    )


@bp.post("/enfant/<int:child_id>/semaine")
@parent_required
def save_week(child_id: int):
    """Without JavaScript: a week's checkboxes. Days listed in `jours` and ticked are
    booked, those listed and not ticked are cancelled; the rest is left alone."""
    household_id = _household_id()
    child = _child_or_404(child_id)
    parts = (request.form.get("jours") or "").split(",")
    listed = [parse_id(part) for part in parts]
    if None in listed:
        abort(404)  # a forged list: the page only ever sends day ids
    rows = {
        r.id: r for r in db.session.scalars(select(ActivityDay).where(ActivityDay.id.in_(listed)))
    }
    if len(rows) != len(set(listed)):
        abort(404)
    first_day = min(r.day for r in rows.values())
    last_day = max(r.day for r in rows.values())
    allowed = {
        (g.activity.id, g.school_year_id)
        for g in rules.entitlements([child.id], first_day, last_day)
    }
    if any((r.activity_id, r.school_year_id) not in allowed for r in rows.values()):
        abort(404)
    wanted = [i for i in rows if f"j{i}" in request.form]
    unwanted = [i for i in rows if f"j{i}" not in request.form]

    def work():
        # Cancelled first: a child moved from "journée" to "demi-journée" the same day
        # frees the first before holding the second (incompatible activities).
        cancelled = cancel_days(household_id, child.id, unwanted, actor=current_user)
        booked = book_days(household_id, child.id, wanted, actor=current_user)
        return booked, cancelled

    booked, cancelled = write_transaction(work)
    dates = {i: r.day for i, r in rows.items()}
    activity_names = dict(
        db.session.execute(
            select(ActivityDay.id, Activity.name)
            .join(Activity, Activity.id == ActivityDay.activity_id)
            .where(ActivityDay.id.in_(rows))
        ).all()
    )
    lines = [f"Réservé : {activity_names[i]}, {rules_day(dates[i])}" for i in booked.booked]
    lines += [f"Annulé : {activity_names[i]}, {rules_day(dates[i])}" for i in cancelled.cancelled]
    refusals = _refusals(booked, dates, activity_names) + _refusals(
        cancelled, dates, activity_names
    )
    if lines:
        send_summary(
            household_id, {child.id: child.first_name}, [f"{child.first_name} — {x}" for x in lines]
        )
        db.session.commit()
        flash(
            f"Semaine enregistrée : {len(booked.booked)} réservation(s), "
            f"{len(cancelled.cancelled)} annulation(s).",
            "success",
        )
    elif not refusals:
        flash("Aucun changement.", "success")
    for refusal in refusals:
        flash(f"Non modifié — {refusal}.", "error")
    return redirect(_back_to_month(child.id, first_day), 303)
