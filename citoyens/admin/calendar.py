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
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from wtforms import RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import ValidationError

from citoyens import audit
from citoyens.accounts.decorators import admin_required
from citoyens.admin.views import bp
from citoyens.extensions import db
from citoyens.forms import parse_id, required_text, strip, today_in_paris
from citoyens.reservations import closures as ops
from citoyens.reservations.calendar import off_calendar_bookings, seed_holidays
from citoyens.reservations.models import HOLIDAY_KINDS, Closure, Holiday
from citoyens.services import rules
from citoyens.services.forms import choice_list, date_field, in_order
from citoyens.services.models import Activity, SchoolYear, Service
from citoyens.transactions import write_transaction
from citoyens.web import render

# Ids beyond a 32-bit integer would make PostgreSQL fail instead of answering 404.
MAX_ID = 2**31 - 1
MAX_SPAN_DAYS = 366
SOURCES = {"library": "bibliothèque", "staff": "modifié"}
RECALCULATE = (
    "Les jours d'ouverture ne sont pas recalculés : cliquez sur « Calculer les jours "
    "d'ouverture » quand le calendrier est prêt."
)


# --- Forms ------------------------------------------------------------------------------------


def _one_day_by_default(first, last) -> None:
    """An empty last day means the first day alone."""
    if first.data is not None and last.data is None and not last.errors:
        last.data = first.data


def _span_problem(first: date, last: date) -> str | None:
    if (last - first).days >= MAX_SPAN_DAYS:
        return "La période ne peut pas dépasser un an."
    return None


class HolidayForm(FlaskForm):
    """A public holiday or a school holiday period (zone B), corrected by staff."""

    kind = RadioField(
        "Type",
        choices=choice_list(HOLIDAY_KINDS),
        default="public",
        invalid_choice_message="Choisissez « Jour férié » ou « Vacances scolaires ».",
    )
    name = StringField(
        "Nom",
        filters=[strip],
        validators=required_text("Le nom", 120),
        description="Par exemple : Armistice, Vacances de la Toussaint, Pont de l'Ascension.",
    )
    starts_on = date_field("Premier jour", "Le premier jour")
    ends_on = date_field(
        "Dernier jour",
        "Le dernier jour",
        is_required=False,
        description="Laissez vide pour un seul jour.",
    )

    def __init__(self, *args, holiday_id: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._holiday_id = holiday_id

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        _one_day_by_default(self.starts_on, self.ends_on)
        message = "Le dernier jour ne peut pas précéder le premier jour."
        if not (in_order(self.starts_on, self.ends_on, message) and valid):
            return False
        problem = _span_problem(self.starts_on.data, self.ends_on.data)
        if problem:
            self.ends_on.errors.append(problem)
            return False
        query = select(Holiday.id).where(
            Holiday.kind == self.kind.data, Holiday.starts_on == self.starts_on.data
        )
        if self._holiday_id is not None:
            query = query.where(Holiday.id != self._holiday_id)
        if db.session.scalar(query) is not None:
            what = "Un jour férié" if self.kind.data == "public" else "Une période de vacances"
            self.starts_on.errors.append(f"{what} commence déjà à cette date.")
            return False
        return True

    def values(self) -> dict:
        return {
            "kind": self.kind.data,
            "name": self.name.data,
            "starts_on": self.starts_on.data,
            "ends_on": self.ends_on.data,
        }


def optional_id(value):
    """Select value to id: "" (the whole service) is None."""
    if value in ("", None):
        return None
    return int(value)


class ClosureForm(FlaskForm):
    """A service, or one of its activities, closed for a few days."""

    service_id = SelectField(
        "Service",
        coerce=int,
        choices=[],
        invalid_choice_message="Choisissez un de vos services dans la liste.",
        invalid_value_message="Choisissez un de vos services dans la liste.",
    )
    activity_id = SelectField(
        "Activité",
        coerce=optional_id,
        choices=[],
        description="« Tout le service » ferme toutes ses activités.",
        invalid_choice_message="Choisissez une activité dans la liste.",
        invalid_value_message="Choisissez une activité dans la liste.",
    )
    starts_on = date_field("Premier jour fermé", "Le premier jour fermé")
    ends_on = date_field(
        "Dernier jour fermé",
        "Le dernier jour fermé",
        is_required=False,
        description="Laissez vide pour un seul jour.",
    )
    reason = StringField(
        "Motif",
        filters=[strip],
        validators=required_text("Le motif", 200),
        description="Repris dans l'e-mail envoyé aux familles dont les réservations sont "
        "annulées. Par exemple : grève, travaux, formation du personnel.",
    )

    def __init__(self, *args, services=(), activities=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.service_id.choices = [SelectChoice(s.id, s.name) for s in services]
        self.activity_id.choices = [SelectChoice("", "Tout le service")] + [
            SelectChoice(a.id, f"{a.service.name} — {a.name}") for a in activities
        ]
        self._activity_services = {a.id: a.service_id for a in activities}

    def validate_activity_id(self, field):
        if field.data is None or self.service_id.errors:
            return
        if self._activity_services.get(field.data) != self.service_id.data:
            raise ValidationError("Cette activité n'appartient pas au service choisi.")

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        _one_day_by_default(self.starts_on, self.ends_on)
        message = "Le dernier jour fermé ne peut pas précéder le premier jour."
        if not (in_order(self.starts_on, self.ends_on, message) and valid):
            return False
        problem = _span_problem(self.starts_on.data, self.ends_on.data)
        if problem:
            self.ends_on.errors.append(problem)
            return False
        for day_field in (self.starts_on, self.ends_on):
            if ops.school_year_of(day_field.data) is None:
                day_field.errors.append(
                    "Aucune année scolaire ne contient cette date : une fermeture se place "
                    "dans une année scolaire définie."
                )
                valid = False
        return valid


# --- Helpers ----------------------------------------------------------------------------------


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


# --- Calendar: holidays and opening days -------------------------------------------------------


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
    overview = ops.days_overview(year) if year else []
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


# --- Closures ---------------------------------------------------------------------------------


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
            return redirect(url_for("admin.closures"), 303)
    coming, past = visible_closures(current_user, today_in_paris())
    return render(
        "admin/calendar/closures.html",
        form=form,
        services=services,
        coming=coming,
        past=past,
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
