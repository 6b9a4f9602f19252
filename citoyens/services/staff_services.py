"""Back office: services, their activities, school years and enrolment windows (issue 4).

Settings only administrators change: every route adds `admin_required` to the admin
blueprint's staff guard, so an agent gets 403. Nothing here is deleted: a service or an
activity is deactivated, and the enrolments and bookings that refer to it stay whole.
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp
from citoyens.extensions import db
from citoyens.forms import parse_id, today_in_paris
from citoyens.reservations import exclusions
from citoyens.reservations.capacity import days_over_capacity
from citoyens.services import operations, rules
from citoyens.services.forms import WEEKDAYS, ActivityForm, NewServiceForm, ServiceForm
from citoyens.services.models import (
    ACTIVITY_UNITS,
    CALENDAR_KINDS,
    SERVICE_CATEGORIES,
    Activity,
    ExclusionSet,
    SchoolYear,
    Service,
)
from citoyens.services.school_forms import ActivationForm
from citoyens.services.year_forms import EnrolmentWindowForm, SchoolYearForm, school_year_bounds
from citoyens.transactions import write_transaction
from citoyens.web import render

# Ids beyond a 32-bit integer would make PostgreSQL fail instead of answering 404.
MAX_ID = 2**31 - 1
LABELS = {
    "categories": SERVICE_CATEGORIES,
    "calendars": CALENDAR_KINDS,
    "units": ACTIVITY_UNITS,
    "weekdays": WEEKDAYS,
}


def page(template: str, *, status: int = 200, **context):
    return render(f"admin/services/{template}", status=status, **LABELS, **context)


def _found(record):
    if record is None:
        abort(404)
    return record


def _service_or_404(service_id: int):
    return _found(rules.service_with_documents(service_id) if service_id <= MAX_ID else None)


def _activity_or_404(activity_id: int):
    return _found(rules.activity_with_service(activity_id) if activity_id <= MAX_ID else None)


def _school_year_or_404(year_id: int) -> SchoolYear:
    return _found(db.session.get(SchoolYear, year_id) if year_id <= MAX_ID else None)


def _status(form) -> int:
    return 422 if form.is_submitted() else 200


# --- Services ----------------------------------------------------------------------------


@bp.get("/services")
@admin_required
def services():
    return page("index.html", rows=rules.services_overview())


@bp.route("/services/nouveau", methods=["GET", "POST"])
@admin_required
def services_new():
    form = NewServiceForm()
    if form.validate_on_submit():
        service = operations.create_service(
            actor=current_user,
            code=form.code.data,
            document_type_ids=form.document_type_ids.data,
            **form.values(),
        )
        db.session.commit()
        flash(f"Service « {service.name} » créé. Ajoutez-lui ses activités.", "success")
        return redirect(url_for("admin.services_show", service_id=service.id), 303)
    return page("form.html", form=form, service=None, status=_status(form))


@bp.get("/services/<int:service_id>")
@admin_required
def services_show(service_id: int):
    service = _service_or_404(service_id)
    return _service_page(service, _window_form(service))


def _window_form(service, years=None) -> EnrolmentWindowForm:
    years = rules.school_years() if years is None else years
    upcoming = [y for y in years if y.ends_on > today_in_paris()]
    form = EnrolmentWindowForm(school_years=years)
    if not form.is_submitted() and upcoming:
        form.school_year_id.data = upcoming[0].id
    return form


def _service_page(
    service, window_form: EnrolmentWindowForm, status: int = 200, group_error: str | None = None
):
    today = today_in_paris()
    windows = rules.windows_of(service.id)
    years = [
        (year, windows.get(year.id), rules.window_state(windows.get(year.id), today))
        for year in rules.school_years()
    ]
    activities = rules.activities_of(service.id)
    groups = exclusions.sets_of(service.id)
    return page(
        "show.html",
        service=service,
        activities=activities,
        groups=groups,
        group_names={group.id: group.name for group in groups},
        group_error=group_error,
        years=years,
        window_form=window_form,
        status=status,
    )


@bp.route("/services/<int:service_id>/modifier", methods=["GET", "POST"])
@admin_required
def services_edit(service_id: int):
    service = _service_or_404(service_id)
    linked = [link.document_type_id for link in service.required_documents]
    form = ServiceForm(data=ServiceForm.initial(service), linked_type_ids=linked)
    if form.validate_on_submit():
        changed = operations.update_service(
            service,
            actor=current_user,
            document_type_ids=form.document_type_ids.data,
            **form.values(),
        )
        db.session.commit()
        flash(
            f"Service « {service.name} » enregistré." if changed else "Aucune modification.",
            "success",
        )
        return redirect(url_for("admin.services_show", service_id=service.id), 303)
    return page("form.html", form=form, service=service, status=_status(form))


@bp.post("/services/<int:service_id>/periodes-inscription")
@admin_required
def services_window(service_id: int):
    """Set when families may enrol in this service for one school year."""
    service = _service_or_404(service_id)
    years = rules.school_years()
    form = _window_form(service, years)
    if not form.validate():
        return _service_page(service, form, status=422)
    year = next(y for y in years if y.id == form.school_year_id.data)
    _window, changed = operations.set_enrolment_window(
        service,
        year,
        actor=current_user,
        opens_on=form.opens_on.data,
        closes_on=form.closes_on.data,
    )
    db.session.commit()
    flash(
        f"Inscriptions {year.name} : du {form.opens_on.data:%d/%m/%Y} "
        f"au {form.closes_on.data:%d/%m/%Y}."
        if changed
        else "Aucune modification.",
        "success",
    )
    return redirect(url_for("admin.services_show", service_id=service.id), 303)


# --- Activities --------------------------------------------------------------------------


@bp.route("/services/<int:service_id>/activites/nouvelle", methods=["GET", "POST"])
@admin_required
def activities_new(service_id: int):
    service = _service_or_404(service_id)
    form = ActivityForm(exclusion_sets=exclusions.sets_of(service.id))
    if form.validate_on_submit():
        activity = operations.create_activity(service, actor=current_user, **form.values())
        # A new activity has no booking: joining a set cannot conflict.
        exclusions.set_activity_exclusion(activity, form.exclusion_set_id.data, actor=current_user)
        db.session.commit()
        flash(f"Activité « {activity.name} » ajoutée.", "success")
        return redirect(url_for("admin.services_show", service_id=service.id), 303)
    return page(
        "activity_form.html", form=form, service=service, activity=None, status=_status(form)
    )


@bp.route("/activites/<int:activity_id>/modifier", methods=["GET", "POST"])
@admin_required
def activities_edit(activity_id: int):
    activity = _activity_or_404(activity_id)
    form = ActivityForm(
        data=ActivityForm.initial(activity),
        exclusion_sets=exclusions.sets_of(activity.service_id),
    )
    if form.validate_on_submit():
        values, set_id = form.values(), form.exclusion_set_id.data

        def work():
            target = db.session.get(Activity, activity_id)
            changed = operations.update_activity(target, actor=current_user, **values)
            if exclusions.set_activity_exclusion(target, set_id, actor=current_user):
                changed.append("exclusion_set_id")
            return changed

        try:
            changed = write_transaction(work)
        except exclusions.ExclusionError as exc:
            form.exclusion_set_id.errors = [str(exc)]
            return page(
                "activity_form.html",
                form=form,
                service=activity.service,
                activity=activity,
                status=422,
            )
        flash(
            f"Activité « {activity.name} » enregistrée." if changed else "Aucune modification.",
            "success",
        )
        over = days_over_capacity(activity_id, today_in_paris()) if "capacity" in changed else 0
        if over:
            flash(
                f"{over} jour(s) à venir ont déjà plus d'enfants réservés que {activity.capacity} "
                "places : aucune réservation n'est annulée ; les nouvelles réservations "
                "attendront qu'une place se libère.",
                "warning",
            )
        return redirect(url_for("admin.services_show", service_id=activity.service_id), 303)
    return page(
        "activity_form.html",
        form=form,
        service=activity.service,
        activity=activity,
        status=_status(form),
    )


@bp.post("/activites/<int:activity_id>/activation")
@admin_required
def activities_toggle(activity_id: int):
    """Offer an activity no more (or again); its enrolments and bookings stay."""
    activity = _activity_or_404(activity_id)
    form = ActivationForm()
    if not form.validate():
        abort(400)
    operations.set_activity_active(activity, form.active.data == "1", actor=current_user)
    db.session.commit()
    flash(
        f"« {activity.name} » "
        + (
            "est de nouveau proposée aux familles."
            if activity.active
            else "n'est plus proposée aux familles ; les inscriptions existantes restent."
        ),
        "success",
    )
    return redirect(url_for("admin.services_show", service_id=activity.service_id), 303)


# --- Incompatible activities -------------------------------------------------------------


@bp.post("/services/<int:service_id>/incompatibles")
@admin_required
def exclusion_sets_new(service_id: int):
    """A set of the service's activities a child may hold only one of on a date."""
    service = _service_or_404(service_id)
    name = request.form.get("nom", "")
    ids = [parse_id(value) for value in request.form.getlist("activites")]
    if None in ids:
        abort(404)
    service_id = service.id

    def work():
        target = db.session.get(Service, service_id)
        return exclusions.create_exclusion_set(target, name, ids, actor=current_user).name

    try:
        created = write_transaction(work)
    except exclusions.ExclusionError as exc:
        service = _service_or_404(service_id)
        return _service_page(service, _window_form(service), 422, group_error=str(exc))
    flash(f"Activités incompatibles « {created} » enregistrées.", "success")
    return redirect(url_for("admin.services_show", service_id=service_id), 303)


@bp.post("/incompatibles/<int:set_id>/supprimer")
@admin_required
def exclusion_sets_delete(set_id: int):
    """The activities of the set become compatible again."""
    group = _found(db.session.get(ExclusionSet, set_id) if set_id <= MAX_ID else None)
    service_id = group.service_id
    name = write_transaction(lambda: exclusions.delete_exclusion_set(set_id, actor=current_user))
    flash(f"Groupe « {name} » supprimé : ses activités ne s'excluent plus.", "success")
    return redirect(url_for("admin.services_show", service_id=service_id), 303)


# --- School years ------------------------------------------------------------------------


@bp.get("/annees-scolaires")
@admin_required
def school_years():
    today = today_in_paris()
    current = rules.current_school_year(today)
    return page(
        "school_years.html",
        years=rules.school_years(),
        current_id=current.id if current else None,
    )


@bp.route("/annees-scolaires/nouvelle", methods=["GET", "POST"])
@admin_required
def school_years_new():
    form = SchoolYearForm()
    if not form.is_submitted():
        # Suggest the year after the last one set up (or the current one when none is).
        years = rules.school_years()
        today = today_in_paris()
        first = years[-1].starts_on.year + 1 if years else today.year - (today.month < 9)
        form.name.data = f"{first}-{first + 1}"
        form.starts_on.data, form.ends_on.data = school_year_bounds(first)
    if form.validate_on_submit():
        year = operations.create_school_year(actor=current_user, **form.values())
        db.session.commit()
        flash(f"Année scolaire {year.name} ajoutée.", "success")
        return redirect(url_for("admin.school_years"), 303)
    return page("school_year_form.html", form=form, year=None, status=_status(form))


@bp.route("/annees-scolaires/<int:year_id>/modifier", methods=["GET", "POST"])
@admin_required
def school_years_edit(year_id: int):
    year = _school_year_or_404(year_id)
    form = SchoolYearForm(obj=year, school_year_id=year.id)
    if form.validate_on_submit():
        changed = operations.update_school_year(year, actor=current_user, **form.values())
        db.session.commit()
        flash(
            f"Année scolaire {year.name} enregistrée." if changed else "Aucune modification.",
            "success",
        )
        return redirect(url_for("admin.school_years"), 303)
    return page("school_year_form.html", form=form, year=year, status=_status(form))
