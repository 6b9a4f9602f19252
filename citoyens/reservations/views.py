"""Réservations: the family's calendars, the one-click weekly pattern, a day's page.

Every page is the household's own: another household's child, or a day of an
activity the child may not book, answers 404. A tap on a day books or cancels it
with htmx and gets back that day's cell alone (and an announcement for screen
readers); without JavaScript, each week is a form of checkboxes.
"""

from __future__ import annotations

from dataclasses import replace
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
from citoyens.reservations.operations import REASONS, ActorRef, Loaded, book_days, cancel_days
from citoyens.services.models import Activity, SchoolYear
from citoyens.transactions import write_transaction
from citoyens.web import is_htmx_fragment_request, render, render_fragment

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


def cell_urls(child_id: int) -> dict[str, str]:
    """The URLs of the child's day 0 without the 0: a cell adds its day id (one url_for
    per page instead of two per cell)."""
    toggle = url_for("reservations.toggle", child_id=child_id, activity_day_id=0)
    day = url_for("reservations.day", child_id=child_id, activity_day_id=0)
    return {"toggle_base": toggle.rsplit("/", 1)[0] + "/", "day_base": day.rsplit("/", 1)[0] + "/"}


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
        this_month=today.strftime("%Y-%m"),
        this_week=THIS_WEEK,
    )


# --- Calendar ---------------------------------------------------------------------------------


# The anchor of the week of today on its month's page: links to that month end with it.
THIS_WEEK = "#cette-semaine"


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
    children = rules.children_of(household_id)
    # The household's current children hold the one asked for (one query, not two).
    child = next((c for c in children if c.id == child_id), None)
    if child is None:
        abort(404)
    today = today_in_paris()
    first, last, view, monday = _period(today)
    calendar = rules.load_calendars(household_id, [child], first, last, rules.now_utc())[child.id]
    this_monday = today - timedelta(days=today.weekday())
    if view == "semaine":
        previous_link = url_for(".month", child_id=child.id, semaine=(monday - timedelta(7)))
        next_link = url_for(".month", child_id=child.id, semaine=(monday + timedelta(7)))
    else:
        previous_month = (first - timedelta(days=1)).replace(day=1)
        next_month = last + timedelta(days=1)
        previous_link = url_for(".month", child_id=child.id, mois=previous_month.strftime("%Y-%m"))
        next_link = url_for(".month", child_id=child.id, mois=next_month.strftime("%Y-%m"))
        this_month = today.replace(day=1)
        previous_link += THIS_WEEK if previous_month == this_month else ""
        next_link += THIS_WEEK if next_month == this_month else ""
    # The month holding today opens on this week: the weeks before it are folded, the
    # week of today (or the next one with opening days) carries the `cette-semaine` anchor.
    past_weeks, weeks = [], calendar.weeks
    current_month = view == "mois" and first <= today <= last
    if current_month:
        past_weeks = [week for week in calendar.weeks if week.monday < this_monday]
        weeks = calendar.weeks[len(past_weeks) :]
    return render(
        "reservations/month.html",
        child=child,
        children=children,
        calendar=calendar,
        first=first,
        last=last,
        view=view,
        monday=monday or this_monday,
        past_weeks=past_weeks,
        weeks=weeks,
        current_month=current_month,
        this_week=THIS_WEEK,
        previous_link=previous_link,
        next_link=next_link,
        today=today,
        week_action=url_for(".save_week", child_id=child.id),
        **cell_urls(child.id),
    )


@bp.post("/enfant/<int:child_id>/jour/<int:activity_day_id>")
@parent_required
def toggle(child_id: int, activity_day_id: int):
    """One day of one activity: book it (its checkbox sent), cancel it (not sent),
    join (`attente`) or leave (`quitter`) its waiting list.

    A tap is the most frequent write: one query reads all it needs inside the write
    transaction, the verbs reuse it (`Loaded`), and the cell answered is built from what
    the transaction read and did, not read again after the commit."""
    household_id = _household_id()
    actor = ActorRef(current_user.id)
    form = request.form

    def work():
        target = rules.toggle_target(household_id, child_id, activity_day_id)
        if target is None:
            abort(404)
        row, activity, booking = target.day, target.activity, target.booking
        if form.get("attente"):
            action = "wait"
        elif form.get("quitter") or f"j{row.id}" not in form:
            action = "cancel"
        else:
            action = "book"
        # Plain values first: the verbs' bulk updates expire the objects.
        before = _booking_view(booking)
        day = rules.DayView(
            row.id, row.day, row.booked, row.capacity, row.closed, row.closed_reason
        )
        cutoff = rules.cutoff_at(activity, row.day)
        shown = rules.ActivityView(activity.id, activity.name)
        loaded = Loaded(
            {row.id: row},
            {activity.id: activity},
            {row.id: booking} if booking is not None else {},
            target.first_name,
        )
        if action == "cancel":
            outcome = cancel_days(household_id, child_id, [row.id], actor=actor, loaded=loaded)
        else:
            outcome = book_days(
                household_id,
                child_id,
                [row.id],
                actor=actor,
                waiting_list=action == "wait",
                entitled_ids={activity.id},
                loaded=loaded,
            )
        return target, shown, day, before, cutoff, outcome

    target, activity, day, before, cutoff, outcome = write_transaction(work)
    code = outcome.refused.get(day.id)
    label = f"{activity.name}, {rules_day(day.day)}"
    if outcome.booked:
        message = f"Réservé : {label}."
    elif outcome.waiting:
        message = f"Sur liste d'attente : {label}."
    elif outcome.cancelled:
        message = f"Annulé : {label}."
    elif code in ("already", "not_booked"):
        message = f"Aucun changement : {label}."
    elif code == "incompatible":
        message = f"Pas de changement pour {label} : {outcome.reason(day.id)}."
    else:
        message = f"Pas de changement pour {label} : {REASONS.get(code, code)}."
    if outcome.changed and target.summary_mail:
        send_summary(
            household_id, {child_id: target.first_name}, [f"{target.first_name} — {message}"]
        )
        db.session.commit()
    status = 422 if code and code not in ("already", "not_booked") else 200
    if is_htmx_fragment_request():
        return render_fragment(
            "reservations/_cell_response.html",
            status=status,
            cell=_cell_after(child_id, activity, day, before, cutoff, outcome),
            message=message,
            error=status == 422,
            **cell_urls(child_id),
        )
    flash(message, "error" if status == 422 else "success")
    return redirect(_back_to_month(child_id, day.day), 303)


def _booking_view(booking) -> rules.BookingView | None:
    if booking is None:
        return None
    return rules.BookingView(
        booking.id, booking.status, booking.late, booking.attendance, booking.certificate_id
    )


def _cell_after(child_id, activity, day, before, cutoff, outcome) -> rules.Cell:
    """The cell once the tap is done, from the state read and what the verbs did. The
    day's count is the one read under the transaction's lock (SQLite) plus the changes."""
    booked = day.booked
    if outcome.booked:
        after = rules.BookingView(None, "booked", False, None, None)
        booked += 1
    elif outcome.waiting:
        after = rules.BookingView(None, "waiting", False, None, None)
    elif outcome.cancelled:
        after = replace(before, status="cancelled")
        booked -= before.status == "booked"
        booked += len(outcome.promoted)
    else:
        after = before
    rank = rules.waiting_rank_of(child_id, day.id) if after and after.status == "waiting" else None
    return rules.Cell(
        activity=activity,
        day=replace(day, booked=max(booked, 0)),
        booking=after,
        cutoff=cutoff,
        modifiable=rules.now_utc() < cutoff and not day.closed,
        waiting_rank=rank,
    )


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
