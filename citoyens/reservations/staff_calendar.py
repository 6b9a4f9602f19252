"""Staff pages of the calendar: holidays, closures, opening days of a school year.

Holidays, their import and the calculation of opening days change every service's
calendar: administrators only (`admin_required`); agents see the page read-only.
Closures belong to a service: its agents (and administrators) add and remove them.

A holiday change does not recalculate the opening days at once: the calculation
closes booked days and cancels their bookings, e-mailing families, so a typo in a
date must not do that. The page says how many days differ from the table and the
administrator runs « Calculer les jours d'ouverture » once the calendar is right.
A closure, on the contrary, is applied at once: cancelling is what it is for.
"""

from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from citoyens import audit
from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp
from citoyens.extensions import db
from citoyens.forms import parse_id, today_in_paris
from citoyens.reservations import closures as ops
from citoyens.reservations.calendar import off_calendar_bookings, seed_holidays
from citoyens.reservations.days_overview import days_overview
from citoyens.reservations.models import HOLIDAY_KINDS, Closure, Holiday
from citoyens.reservations.staff_forms import ClosureForm, HolidayForm
from citoyens.services import rules
from citoyens.services.models import Activity, SchoolYear, Service
from citoyens.transactions import write_transaction
from citoyens.web import render

# Ids beyond a 32-bit integer would make PostgreSQL fail instead of answering 404.
MAX_ID = 2**31 - 1


SOURCES = {"library": "bibliothèque", "staff": "modifié"}


RECALCULATE = (
    "Les jours d'ouverture ne sont pas recalculés : cliquez sur « Calculer les jours "
    "d'ouverture » quand le calendrier est prêt."
)


def _found(record):
    if record is None:
        abort(404)
    return record


def _year_or_404(year_id: int) -> SchoolYear:
    return _found(db.session.get(SchoolYear, year_id) if 0 < year_id <= MAX_ID else None)


def _holiday_or_404(holiday_id: int) -> Holiday:
    return _found(db.session.get(Holiday, holiday_id) if 0 < holiday_id <= MAX_ID else None)


def default_year(years: list[SchoolYear], today: date) -> SchoolYear | None:
    """The current school year, else the next one, else the last one set up."""
    current = next((y for y in years if y.starts_on <= today <= y.ends_on), None)
    upcoming = next((y for y in years if y.starts_on > today), None)
    return current or upcoming or (years[-1] if years else None)


def holidays_in(year: SchoolYear) -> list[Holiday]:
    return list(
        db.session.scalars(
            select(Holiday)
            .where(Holiday.ends_on >= year.starts_on, Holiday.starts_on <= year.ends_on)
            .order_by(Holiday.starts_on, Holiday.kind)
        )
    )


def _back_to_year(day: date):
    year = ops.school_year_of(day)
    return redirect(url_for("admin.calendar", annee=year.id if year else None), 303)


def _asked_year(years):
    """?annee=<id>: that school year (404 when unknown or not an id); none: the default."""
    raw = request.args.get("annee")
    if not raw:
        return default_year(years, today_in_paris())
    wanted = parse_id(raw)
    if wanted is None:
        abort(404)
    return _year_or_404(wanted)


@bp.get("/calendrier")
def calendar():
    years = rules.school_years()
    year = _asked_year(years)
    return _calendar_page(years, year, HolidayForm() if current_user.is_admin else None)


def _calendar_page(years, year, form, status: int = 200):
    overview = days_overview(year) if year else []
    off_calendar = off_calendar_bookings(year, rules.service_ids_for(current_user)) if year else []
    return render(
        "admin/calendar/index.html",
        years=years,
        year=year,
        holidays=holidays_in(year) if year else [],
        overview=overview,
        stale=[row for row in overview if row.stale],
        off_calendar=off_calendar,
        form=form,
        kinds=HOLIDAY_KINDS,
        sources=SOURCES,
        status=status,
    )


@bp.post("/calendrier/vacances")
@admin_required
def holidays_create():
    form = HolidayForm()
    if not form.validate():
        years = rules.school_years()
        year = _asked_year(years)
        return _calendar_page(years, year, form, status=422)
    holiday = Holiday(source="staff", **form.values())
    db.session.add(holiday)
    db.session.flush()
    audit.record("holiday.created", actor=current_user, target=f"holiday:{holiday.id}")
    db.session.commit()
    flash(f"« {holiday.name} » ajouté. {RECALCULATE}", "success")
    return _back_to_year(holiday.starts_on)


@bp.route("/calendrier/vacances/<int:holiday_id>", methods=["GET", "POST"])
@admin_required
def holidays_edit(holiday_id: int):
    holiday = _holiday_or_404(holiday_id)
    form = HolidayForm(obj=holiday, holiday_id=holiday.id)
    if form.validate_on_submit():
        values = form.values()
        changed = [key for key, value in values.items() if getattr(holiday, key) != value]
        if changed:
            for key in changed:
                setattr(holiday, key, values[key])
            holiday.source = "staff"
            audit.record(
                "holiday.updated",
                actor=current_user,
                target=f"holiday:{holiday.id}",
                details=",".join(changed),
            )
            db.session.commit()
            flash(f"« {holiday.name} » enregistré. {RECALCULATE}", "success")
        else:
            flash("Aucune modification.", "success")
        return _back_to_year(holiday.starts_on)
    return render(
        "admin/calendar/holiday_form.html",
        form=form,
        holiday=holiday,
        status=422 if form.is_submitted() else 200,
    )


@bp.post("/calendrier/vacances/<int:holiday_id>/supprimer")
@admin_required
def holidays_delete(holiday_id: int):
    holiday = _holiday_or_404(holiday_id)
    name, starts_on = holiday.name, holiday.starts_on
    audit.record(
        "holiday.deleted",
        actor=current_user,
        target=f"holiday:{holiday.id}",
        details=f"{holiday.kind} {holiday.starts_on}..{holiday.ends_on}",
    )
    db.session.delete(holiday)
    db.session.commit()
    flash(f"« {name} » supprimé. {RECALCULATE}", "success")
    return _back_to_year(starts_on)


@bp.post("/calendrier/<int:year_id>/import")
@admin_required
def calendar_seed(year_id: int):
    """Add the libraries' public and school holidays of the year the table lacks."""
    year = _year_or_404(year_id)

    def work():
        added = seed_holidays(year)
        audit.record(
            "holiday.imported",
            actor=current_user,
            target=f"school_year:{year.id}",
            details=f"added:{added}",
        )
        return added

    added = write_transaction(work)
    has_school = any(h.kind == "school" for h in holidays_in(year))
    if added:
        flash(
            f"{year.name} : {added} jour(s) férié(s) ou période(s) de vacances ajouté(s). "
            f"{RECALCULATE}",
            "success",
        )
    else:
        flash(f"{year.name} : rien à ajouter, le calendrier a déjà ces dates.", "info")
    if not has_school:
        flash(
            f"Les vacances scolaires de {year.name} ne sont pas encore publiées dans la "
            "bibliothèque : saisissez-les à la main (zone B, académie de Nantes).",
            "warning",
        )
    return redirect(url_for("admin.calendar", annee=year.id), 303)


@bp.post("/calendrier/<int:year_id>/calcul")
@admin_required
def calendar_generate(year_id: int):
    """Create the year's opening days; close (and cancel the bookings of) days no longer
    open, remove those without bookings, reopen those open again."""
    year = _year_or_404(year_id)

    def work():
        result = ops.recalculate([year], actor=current_user)
        audit.record(
            "calendar.generated",
            actor=current_user,
            target=f"school_year:{year.id}",
            details=f"{result.generated} cancelled:{len(result.cancelled)}",
        )
        return result

    result = write_transaction(work)
    ops.tell_families(result.cancelled, ops.reservations_link())
    db.session.commit()
    flash(f"Jours d'ouverture {year.name} calculés : {result.summary()}", "success")
    return redirect(url_for("admin.calendar", annee=year.id), 303)


def _closure_choices(user) -> tuple[list[Service], list[Activity]]:
    """The services the user acts for (administrators: all active ones), their activities."""
    allowed = rules.service_ids_for(user)
    services = select(Service).where(Service.active.is_(True)).order_by(Service.name)
    if allowed is not None:
        services = services.where(Service.id.in_(allowed))
    service_list = list(db.session.scalars(services))
    ids = [s.id for s in service_list]
    activities = (
        list(
            db.session.scalars(
                select(Activity)
                .options(joinedload(Activity.service))
                .join(Service, Service.id == Activity.service_id)
                .where(Activity.service_id.in_(ids), Activity.active.is_(True))
                .order_by(Service.name, Activity.start_time, Activity.name)
            )
        )
        if ids
        else []
    )
    return service_list, activities


def visible_closures(user, today: date) -> tuple[list[Closure], list[Closure]]:
    """Current and coming closures (soonest first), and the last past ones."""
    allowed = rules.service_ids_for(user)
    query = select(Closure).options(joinedload(Closure.service), joinedload(Closure.activity))
    if allowed is not None:
        query = query.where(Closure.service_id.in_(allowed))
    coming = db.session.scalars(
        query.where(Closure.ends_on >= today).order_by(Closure.starts_on, Closure.id)
    ).all()
    past = db.session.scalars(
        query.where(Closure.ends_on < today).order_by(Closure.starts_on.desc()).limit(20)
    ).all()
    return list(coming), list(past)


@bp.route("/calendrier/fermetures", methods=["GET", "POST"])
def closures():
    services, activities = _closure_choices(current_user)
    form = ClosureForm(services=services, activities=activities)
    if form.is_submitted():
        if not services:
            abort(403)
        if form.validate():
            values = {
                "service_id": form.service_id.data,
                "activity_id": form.activity_id.data,
                "starts_on": form.starts_on.data,
                "ends_on": form.ends_on.data,
                "reason": form.reason.data,
            }
            outcome = write_transaction(lambda: ops.create_closure(actor=current_user, **values))
            ops.tell_families(outcome.recalculated.cancelled, ops.reservations_link())
            db.session.commit()
            flash(f"Fermeture enregistrée. {outcome.recalculated.summary()}", "success")
            # The page then offers to tell the families (a message), the new closure's way.
            return redirect(url_for("admin.closures", prevenir=outcome.closure.id), 303)
    coming, past = visible_closures(current_user, today_in_paris())
    new_id = parse_id(request.args.get("prevenir"))
    return render(
        "admin/calendar/closures.html",
        form=form,
        services=services,
        coming=coming,
        past=past,
        just_created=next((c for c in coming if c.id == new_id), None),
        status=422 if form.is_submitted() else 200,
    )


@bp.post("/calendrier/fermetures/<int:closure_id>/supprimer")
def closures_delete(closure_id: int):
    closure = _found(db.session.get(Closure, closure_id) if 0 < closure_id <= MAX_ID else None)
    if not rules.staff_can_see_service(current_user, closure.service_id):
        audit.record("access.denied", actor=current_user, target=f"closure:{closure.id}")
        db.session.commit()
        abort(404)
    result = write_transaction(lambda: ops.delete_closure(closure, actor=current_user))
    ops.tell_families(result.cancelled, ops.reservations_link())
    db.session.commit()
    flash(f"Fermeture supprimée. {result.summary()}", "success")
    return redirect(url_for("admin.closures"), 303)
