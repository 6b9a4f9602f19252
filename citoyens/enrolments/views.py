"""Family pages of the enrolment domain: "Inscriptions", one enrolment, a new one.

The new enrolment is a GET form chosen step by step (?enfant=&service=&annee=;
htmx re-renders the rest of the page on each change), then a POST that sends
the request. Another household's child or enrolment, an inactive service, an
activity of another service: 404, nothing saved.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user

from citoyens.accounts.decorators import parent_required
from citoyens.documents.rules import LINE_STATUSES, active_children, today_in_paris
from citoyens.documents.uploads import ACCEPT_ATTRIBUTE
from citoyens.enrolments import (
    operations,  # noqa: F401 (registers the decision handlers)
    rules,
)
from citoyens.enrolments.forms import ChoiceForm, EnrolmentForm
from citoyens.enrolments.models import ENROLMENT_STATUSES
from citoyens.enrolments.operations import EnrolmentError, enrol
from citoyens.extensions import db
from citoyens.services.models import SERVICE_CATEGORIES, SchoolYear
from citoyens.web import render

bp = Blueprint("enrolments", __name__)

# Enrolment status → the badge colour "Mes documents" already uses.
BADGES = {
    "pending": "pending",
    "accepted": "accepted",
    "refused": "refused",
    "waiting_list": "pending",
    "cancelled": "replaced",
    "ended": "replaced",
}


@bp.app_template_filter("enrolment_status")
def enrolment_status(status: str) -> str:
    return ENROLMENT_STATUSES.get(status, status)


def _time(value) -> str:
    return f"{value.hour} h {value.minute:02d}" if value.minute else f"{value.hour} h"


def activity_when(activity) -> str:
    """ "les mercredis en période scolaire · 8 h 30 – 17 h 30"."""
    return f"{activity.calendar_words} · {_time(activity.start_time)} – {_time(activity.end_time)}"


def _context(**extra) -> dict:
    return {
        "badges": BADGES,
        "categories": SERVICE_CATEGORIES,
        "activity_when": activity_when,
        "of_name": rules.of_name,
        # What documents/_line.html expects.
        "accept": ACCEPT_ATTRIBUTE,
        "labels": LINE_STATUSES,
        "errors": {},
        "paris_date": today_in_paris,
        **extra,
    }


# --- Pages ------------------------------------------------------------------------------------


@bp.get("/inscriptions")
@parent_required
def index():
    household_id = current_user.household_id
    enrolments = rules.household_enrolments(household_id)
    groups = {child.id: (child, []) for child in active_children(household_id)}
    for enrolment in enrolments:  # a child who left the household keeps its history here
        groups.setdefault(enrolment.child_id, (enrolment.child, []))[1].append(enrolment)
    return render("enrolments/index.html", **_context(groups=list(groups.values())))


@bp.get("/inscriptions/<int:enrolment_id>")
@parent_required
def show(enrolment_id: int):
    enrolment = rules.enrolment_of_household(enrolment_id, current_user.household_id)
    if enrolment is None:
        abort(404)
    return render("enrolments/show.html", **_context(enrolment=enrolment))


def _choice(child_id, service_id, year_id, today):
    """The household's children, the active services, the enrolable years, and the ones
    chosen; a chosen id that is not among them (forged, another household's) → 404."""
    household_id = current_user.household_id
    children = active_children(household_id)
    services = rules.active_services()
    years = rules.years_open_for_enrolment(today)

    def pick(items, wanted):
        if wanted is None:
            return None
        found = next((item for item in items if item.id == wanted), None)
        if found is None:
            abort(404)
        return found

    child = pick(children, child_id)
    service = pick(services, service_id)
    year = None
    if year_id is not None:
        year = next((y for y in years if y.id == year_id), None) or db.session.get(
            SchoolYear, year_id
        )
        if year is None:
            abort(404)
        if year not in years:  # its window just closed: still shown, with why
            years = [*years, year]
    return children, services, years, child, service, year


def _page(child_id, service_id, year_id, *, form=None, problems=None, status=200):
    today = today_in_paris()
    children, services, years, child, service, year = _choice(child_id, service_id, year_id, today)
    outlook = None
    if child and service and year:
        outlook = rules.outlook(current_user.household_id, child, service, year, today)
        if form is None:
            form = EnrolmentForm(formdata=None)
        form.activities.choices = [(str(a.id), a.name) for a in outlook.activities]
    return render(
        "enrolments/new.html",
        block="details",
        status=status,
        **_context(
            children=children,
            services=services,
            years=years,
            child=child,
            service=service,
            year=year,
            outlook=outlook,
            form=form,
            problems=problems or [],
            today=today,
        ),
    )


@bp.get("/inscriptions/nouvelle")
@parent_required
def new():
    choice = ChoiceForm(request.args)
    choice.validate()
    if choice.errors:
        abort(404)
    return _page(choice.enfant.data, choice.service.data, choice.annee.data)


@bp.post("/inscriptions/nouvelle")
@parent_required
def send():
    """Send the request: everything is checked again, whatever the page showed."""
    household_id = current_user.household_id
    form = EnrolmentForm()
    ids = (form.enfant.data, form.service.data, form.annee.data)
    if any(value is None or not 1 <= value < 2**31 for value in ids):
        abort(404)
    child_id, service_id, year_id = ids
    today = today_in_paris()
    _children, _services, _years, child, service, year = _choice(*ids, today)
    activity_ids = form.activity_ids()
    offered = {a.id for a in rules.service_activities(service.id)}
    if activity_ids is None or not set(activity_ids) <= offered:
        abort(404)
    form._place_request = service.place_request
    form.activities.choices = [(str(i), "") for i in sorted(offered)]
    if not form.validate():
        problems = [
            message
            for name, messages in form.errors.items()
            if name not in ("enfant", "service", "annee")
            for message in messages
        ]
        return _page(*ids, form=form, problems=problems, status=422)
    try:
        enrolment = enrol(
            household_id,
            child.id,
            service.id,
            year.id,
            activity_ids,
            actor=current_user._get_current_object(),
            today=today,
            place=form.place() if service.place_request else None,
        )
    except EnrolmentError as error:
        db.session.rollback()
        return _page(child_id, service_id, year_id, form=form, problems=error.problems, status=422)
    db.session.commit()
    what = "demande de place" if service.place_request else "demande d'inscription"
    flash(
        f"Votre {what} est envoyée : le service va l'examiner et vous prévenir par e-mail.",
        "success",
    )
    return redirect(url_for("enrolments.show", enrolment_id=enrolment.id), 303)
