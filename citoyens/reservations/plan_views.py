""" "Planifier en un clic": the family's weekly pattern over a period, previewed then
booked in one transaction (routes on the reservations blueprint)."""

from __future__ import annotations

from datetime import date, timedelta

from flask import abort, request
from flask_login import current_user

from citoyens import audit
from citoyens.accounts.decorators import parent_required
from citoyens.extensions import db
from citoyens.forms import parse_id, today_in_paris
from citoyens.households.models import Household
from citoyens.reservations import planner, rules
from citoyens.reservations.forms import PlanForm
from citoyens.reservations.notify import send_summary
from citoyens.reservations.views import bp
from citoyens.services.models import Activity
from citoyens.transactions import write_transaction
from citoyens.web import render


def _household_id() -> int:
    return current_user.household_id


def _plan_context(form: PlanForm, household_id: int, today: date):
    children = rules.children_of(household_id)
    # Every current or future enrolment; the period chosen narrows the days, not the choices.
    activities_by_child = planner.plannable(children, today, date.max)
    choices = [c for c in children if activities_by_child.get(c.id)]
    activities: list[Activity] = []
    for items in activities_by_child.values():
        for activity in items:
            if activity not in activities:
                activities.append(activity)
    form.enfants.choices = [(str(c.id), c.first_name) for c in choices]
    form.activites.choices = [(str(a.id), f"{a.service.name} — {a.name}") for a in activities]
    return choices, activities, activities_by_child


def _year_end(today: date) -> date:
    from citoyens.services.rules import current_school_year

    year = current_school_year(today)
    return year.ends_on if year else today + timedelta(days=90)


@bp.route("/planifier", methods=["GET", "POST"])
@parent_required
def plan():
    household_id = _household_id()
    today = today_in_paris()
    form = PlanForm()
    if request.method == "GET":
        form.du.data = today
        form.au.data = _year_end(today)
        form.jours.data = ["1", "2", "4", "5"]
        if parse_id(request.args.get("enfant")) is not None:
            form.enfants.data = [request.args["enfant"]]
    children, activities, by_child = _plan_context(form, household_id, today)
    if request.method == "GET" or not form.validate():
        return render(
            "reservations/plan.html",
            status=422 if request.method == "POST" else 200,
            form=form,
            children=children,
            activities=activities,
            by_child=by_child,
            preview=None,
        )
    chosen = [c for c in children if c.id in form.child_ids]
    known_activities = {a.id for a in activities}
    if len(chosen) != len(set(form.child_ids)) or not form.activity_ids <= known_activities:
        abort(404)
    now = rules.now_utc()
    preview = planner.preview(
        chosen, form.activity_ids, form.weekdays, form.du.data, form.au.data, now
    )
    if request.form.get("etape") != "confirmer":
        from citoyens.households.quotient import quotient_status

        household = db.session.get(Household, household_id)
        # Priced with the QF staff accepted; a declaration still waiting is said, not used.
        qf = quotient_status(household_id, today, household=household)
        planner.estimate_costs(preview, household.family_quotient)
        if not preview.lines:
            form.activites.errors = list(form.activites.errors) + [
                "Aucun des enfants choisis n'est inscrit à ces activités sur cette période."
            ]
        return render(
            "reservations/plan.html",
            form=form,
            children=children,
            activities=activities,
            by_child=by_child,
            preview=preview,
            qf=qf,
        )
    waiting = bool(form.attente.data)
    full = (
        planner.full_days(chosen, form.activity_ids, form.weekdays, form.du.data, form.au.data, now)
        if waiting
        else None
    )

    def work():
        fresh = planner.preview(
            chosen, form.activity_ids, form.weekdays, form.du.data, form.au.data, now
        )
        return planner.apply(
            household_id,
            fresh,
            actor=current_user,
            now=now,
            waiting_list=waiting,
            full_day_ids=full,
        )

    result = write_transaction(work)
    audit.record(
        "bookings.planned",
        actor=current_user,
        target=f"household:{household_id}",
        details=f"booked={result.booked} waiting={result.waiting}",
    )
    lines = [
        f"{item.line.child.first_name} — {item.line.activity.name} : "
        f"{len(item.outcome.booked)} jour(s) réservé(s)"
        + (f", {len(item.outcome.waiting)} en liste d'attente" if item.outcome.waiting else "")
        for item in result.lines
        if item.outcome.booked or item.outcome.waiting
    ]
    send_summary(household_id, {c.id: c.first_name for c in chosen}, lines)
    db.session.commit()
    return render("reservations/plan_result.html", result=result)
