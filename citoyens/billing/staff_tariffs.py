"""Back office: tariffs (QF bands, prices, walk-in surcharges) of a school year (issue 6).

Agents may read the tariffs; only administrators change them (`admin_required` on top of
the blueprint's staff guard).
"""

from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp, form_status, get_or_404
from citoyens.billing import tariffs
from citoyens.billing.models import QfBand
from citoyens.billing.staff_forms import BandForm, SurchargeForm, prices_form
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.services import rules as services_rules
from citoyens.services.models import SchoolYear, Service
from citoyens.web import render


def page(template: str, *, status: int = 200, **context):
    return render(f"admin/billing/{template}", status=status, **context)


def _chosen_year(years: list[SchoolYear], name: str | None) -> SchoolYear | None:
    """The year asked for by name, else the current one, else the next, else the last."""
    wanted = (name or "").strip()
    for year in years:
        if year.name == wanted:
            return year
    today = today_in_paris()
    current = next((y for y in years if y.starts_on <= today <= y.ends_on), None)
    upcoming = next((y for y in years if y.starts_on > today), None)
    return current or upcoming or (years[-1] if years else None)


def _tariffs_page(year_name: str | None, *, posted: tuple[int, SurchargeForm] | None = None):
    years = services_rules.school_years()
    year = _chosen_year(years, year_name)
    grid = tariffs.tariff_grid(year) if year else None
    surcharge_forms = {}
    if grid and current_user.is_admin:
        for group in grid.services:
            service = group.service
            if posted and posted[0] == service.id:
                surcharge_forms[service.id] = posted[1]
            else:
                surcharge_forms[service.id] = SurchargeForm(
                    formdata=None,
                    prefix=f"service-{service.id}",
                    data={"amount": tariffs.euros_input(service.walk_in_surcharge_cents)},
                )
    return page(
        "tariffs.html",
        years=years,
        year=year,
        grid=grid,
        surcharge_forms=surcharge_forms,
        status=422 if posted else 200,
    )


@bp.get("/tarifs", endpoint="tariffs")
def tariffs_index():
    """Bands and prices of a school year (`?annee=2026-2027`), and the walk-in surcharges."""
    return _tariffs_page(request.args.get("annee"))


@bp.route("/tarifs/<int:year_id>/tranches/nouvelle", methods=["GET", "POST"])
@admin_required
def tariffs_band_new(year_id: int):
    year = get_or_404(SchoolYear, year_id)
    bands = tariffs.bands_of(year.id)
    form = BandForm(bands=bands)
    if not form.is_submitted():
        form.position.data = max((band.position for band in bands), default=0) + 1
    if form.validate_on_submit():
        band = tariffs.save_band(
            year,
            actor=current_user,
            position=form.position.data,
            label=form.label.data,
            qf_max=form.qf_max.data,
        )
        db.session.commit()
        flash(f"Tranche « {band.label} » ajoutée pour {year.name}.", "success")
        return redirect(url_for("admin.tariffs", annee=year.name), 303)
    return page("band_form.html", form=form, year=year, band=None, status=form_status(form))


@bp.route("/tarifs/tranches/<int:band_id>/modifier", methods=["GET", "POST"])
@admin_required
def tariffs_band_edit(band_id: int):
    band = get_or_404(QfBand, band_id)
    year = db.session.get(SchoolYear, band.school_year_id)
    form = BandForm(obj=band, bands=tariffs.bands_of(year.id), band_id=band.id)
    if form.validate_on_submit():
        tariffs.save_band(
            year,
            actor=current_user,
            position=form.position.data,
            label=form.label.data,
            qf_max=form.qf_max.data,
            band=band,
        )
        db.session.commit()
        flash(f"Tranche « {band.label} » enregistrée.", "success")
        return redirect(url_for("admin.tariffs", annee=year.name), 303)
    return page("band_form.html", form=form, year=year, band=band, status=form_status(form))


@bp.route("/tarifs/<int:year_id>/activites/<int:activity_id>", methods=["GET", "POST"])
@admin_required
def tariffs_prices(year_id: int, activity_id: int):
    year = get_or_404(SchoolYear, year_id)
    activity = services_rules.activity_with_service(activity_id)
    if activity is None:
        abort(404)
    bands = tariffs.bands_of(year.id)
    current = tariffs.prices_of(band.id for band in bands)
    form = prices_form(
        bands,
        {
            f"band_{band.id}": tariffs.euros_input(current.get((activity.id, band.id)))
            for band in bands
        },
    )
    if bands and form.validate_on_submit():
        amounts = {band.id: form[f"band_{band.id}"].cents for band in bands}
        changed = tariffs.set_prices(activity, bands, amounts, actor=current_user)
        db.session.commit()
        flash(
            f"Tarifs de « {activity.name} » ({year.name}) enregistrés."
            if changed
            else "Aucune modification.",
            "success",
        )
        return redirect(url_for("admin.tariffs", annee=year.name), 303)
    fields = [form[f"band_{band.id}"] for band in bands]
    return page(
        "prices_form.html",
        form=form,
        fields=fields,
        year=year,
        activity=activity,
        status=form_status(form),
    )


@bp.post("/tarifs/services/<int:service_id>/majoration")
@admin_required
def tariffs_surcharge(service_id: int):
    service = get_or_404(Service, service_id)
    year_name = request.args.get("annee")
    form = SurchargeForm(prefix=f"service-{service.id}")
    if not form.validate():
        return _tariffs_page(year_name, posted=(service.id, form))
    changed = tariffs.set_walk_in_surcharge(service, form.amount.cents, actor=current_user)
    db.session.commit()
    flash(
        f"Majoration de « {service.name} » : {tariffs.euros(service.walk_in_surcharge_cents)}."
        if changed
        else "Aucune modification.",
        "success",
    )
    return redirect(url_for("admin.tariffs", annee=year_name or None), 303)
