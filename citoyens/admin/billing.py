"""Back office: tariffs (QF bands, prices, walk-in surcharges), the monthly invoice run and
credit notes (issue 6).

Agents may read the tariffs and the run's summary; only administrators change a tariff,
issue a month or write a credit note (`admin_required` on top of the blueprint's staff
guard). Household rows of the run are for administrators only: an agent works for some
services, the run covers them all. No route edits an issued invoice: a correction is a
credit note.
"""

from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import StopValidation

from citoyens.accounts.decorators import admin_required
from citoyens.admin import billing_runs
from citoyens.admin.views import bp
from citoyens.billing import invoicing, tariffs
from citoyens.billing import tasks as billing_tasks
from citoyens.billing.models import INVOICE_STATUSES, Invoice, QfBand
from citoyens.core.models import JobRun
from citoyens.extensions import db
from citoyens.formatting import month_fr
from citoyens.forms import required_text, strip, today_in_paris
from citoyens.households.rules import household_names
from citoyens.services import rules as services_rules
from citoyens.services.forms import whole_number
from citoyens.services.models import SchoolYear, Service
from citoyens.transactions import write_transaction
from citoyens.web import render

MAX_ID = 2**31 - 1


def page(template: str, *, status: int = 200, **context):
    return render(f"admin/billing/{template}", status=status, **context)


def _found(record):
    if record is None:
        abort(404)
    return record


def _get(model, record_id: int):
    return _found(db.session.get(model, record_id) if record_id <= MAX_ID else None)


def _status(form) -> int:
    return 422 if form.is_submitted() else 200


# --- Forms ------------------------------------------------------------------------------------


class EurosField(StringField):
    """An amount typed French style ("3,50"); `cents` holds it once validated, None when
    left empty (allowed unless `required_message` is given)."""

    def __init__(self, label=None, validators=None, *, required_message=None, **kwargs):
        kwargs.setdefault("filters", [strip])
        kwargs.setdefault("render_kw", {"inputmode": "decimal", "autocomplete": "off"})
        super().__init__(label, validators, **kwargs)
        self.required_message = required_message
        self.cents: int | None = None

    def pre_validate(self, form):
        self.cents = None
        if not self.data:
            if self.required_message:
                raise StopValidation(self.required_message)
            return
        try:
            self.cents = tariffs.parse_euros(self.data)
        except ValueError as error:
            raise StopValidation(str(error)) from error


class BandForm(FlaskForm):
    position = whole_number(
        "Position",
        "La position",
        1,
        99,
        required_=True,
        description="1 pour la tranche des plus petits quotients.",
    )
    label = StringField(
        "Libellé",
        description="Tel qu'il figure sur la facture, par exemple « Tranche 2 (QF 501 à 800 €) ».",
        filters=[strip],
        validators=required_text("Le libellé", 60),
    )
    qf_max = whole_number(
        "Plafond du quotient familial (en euros)",
        "Le plafond",
        0,
        tariffs.MAX_QF,
        required_=False,
        description="Quotient jusqu'à ce montant inclus. Laissez vide pour la dernière tranche, "
        "qui reçoit aussi les familles dont le quotient est inconnu.",
    )

    def __init__(self, *args, bands=(), band_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._bands, self._band_id = list(bands), band_id

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if not valid or self.position.errors or self.qf_max.errors:
            return False
        problem = tariffs.band_problem(
            self._bands, self.position.data, self.qf_max.data, self._band_id
        )
        if problem:
            name, message = problem
            self[name].errors.append(message)
            return False
        return True


def prices_form(bands: list[QfBand], data: dict | None = None) -> FlaskForm:
    """One amount per band of the year; empty means no tariff for that band."""

    class PricesForm(FlaskForm):
        pass

    for band in bands:
        setattr(
            PricesForm,
            f"band_{band.id}",
            EurosField(
                band.label,
                description="Prix d'une unité (journée, repas) en euros, par exemple 3,50. "
                "Vide : pas de tarif, ces jours ne seront pas facturés.",
            ),
        )
    return PricesForm(data=data)


class SurchargeForm(FlaskForm):
    amount = EurosField(
        "Majoration pour une présence sans réservation (en euros)",
        required_message="Le montant est obligatoire : 0 s'il n'y a pas de majoration.",
        description="Ajoutée au prix de l'unité ; aucune majoration si un certificat médical "
        "est fourni.",
    )


class IssueForm(FlaskForm):
    mois = HiddenField()
    confirm_missing = BooleanField(
        "Émettre quand même : les jours sans tarif ne seront pas facturés, et une nouvelle "
        "émission de ce mois ne les rattrapera pas."
    )


class CreditNoteForm(FlaskForm):
    amount = EurosField(
        "Montant de l'avoir (en euros)",
        required_message="Le montant est obligatoire.",
        description="Par exemple 12,30. Le montant total de la facture l'annule entièrement.",
    )
    reason = StringField(
        "Motif",
        description="Figure sur l'avoir, par exemple « Repas du 12/09 compté deux fois ».",
        filters=[strip],
        validators=required_text("Le motif", 200),
    )


# --- Tariffs ----------------------------------------------------------------------------------


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
    year = _get(SchoolYear, year_id)
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
    return page("band_form.html", form=form, year=year, band=None, status=_status(form))


@bp.route("/tarifs/tranches/<int:band_id>/modifier", methods=["GET", "POST"])
@admin_required
def tariffs_band_edit(band_id: int):
    band = _get(QfBand, band_id)
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
    return page("band_form.html", form=form, year=year, band=band, status=_status(form))


@bp.route("/tarifs/<int:year_id>/activites/<int:activity_id>", methods=["GET", "POST"])
@admin_required
def tariffs_prices(year_id: int, activity_id: int):
    year = _get(SchoolYear, year_id)
    activity = _found(services_rules.activity_with_service(activity_id))
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
        status=_status(form),
    )


@bp.post("/tarifs/services/<int:service_id>/majoration")
@admin_required
def tariffs_surcharge(service_id: int):
    service = _get(Service, service_id)
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


# --- The monthly run --------------------------------------------------------------------------


def _run_page(month: date, *, form: IssueForm | None = None, notice: str | None = None):
    today = today_in_paris()
    plan = invoicing.plan_month(month)
    issued = invoicing.month_invoices(month)
    rows, names, paperless = [], {}, {}
    ids = [bill.household_id for bill in plan.bills]
    mandates = invoicing.active_mandates(ids, month)
    if current_user.is_admin:
        names = household_names(ids + [invoice.household_id for invoice in issued.invoices])
        who = invoicing.addressees(ids)
        paperless = {household_id: who[household_id].paperless for household_id in ids}
        rows = plan.bills
    if form is None:
        form = IssueForm(formdata=None, data={"mois": f"{month:%Y-%m}"})
    return page(
        "run.html",
        month=month,
        month_label=month_fr(month),
        of_month=invoicing.of_month(month),
        previous=invoicing.previous_month(month),
        following=invoicing.next_month(month),
        over=month < today.replace(day=1),
        plan=plan,
        rows=rows,
        names=names,
        paperless=paperless,
        mandates=mandates,
        issued=issued,
        debit_warning=invoicing.debit_warning(month, today) if mandates else None,
        statuses=INVOICE_STATUSES,
        form=form,
        notice=notice,
        run=billing_tasks.latest_run(month),
        **billing_runs.status_context(),
        status=422 if form.is_submitted() or notice else 200,
    )


@bp.get("/facturation")
def billing_run():
    value = request.args.get("mois")
    if value:
        try:
            month = invoicing.parse_month(value)
        except invoicing.BillingError as error:
            return _run_page(invoicing.previous_month(today_in_paris()), notice=str(error))
    else:
        month = invoicing.previous_month(today_in_paris())
    return _run_page(month)


@bp.post("/facturation/emettre")
@admin_required
def billing_issue():
    form = IssueForm()
    try:
        month = invoicing.parse_month(form.mois.data)
    except invoicing.BillingError as error:
        return _run_page(invoicing.previous_month(today_in_paris()), notice=str(error))
    if not form.validate():
        return _run_page(month, form=form)
    today = today_in_paris()
    try:
        invoicing.check_month_is_over(month, today)
    except invoicing.BillingError as error:
        return _run_page(month, form=form, notice=str(error))
    plan = invoicing.plan_month(month)
    if plan.missing_tariffs and not form.confirm_missing.data:
        form.confirm_missing.errors.append(
            "Des activités n'ont pas de tarif pour certaines tranches : complétez les tarifs, "
            "ou cochez cette case pour émettre sans facturer ces jours."
        )
        return _run_page(month, form=form)
    # The run goes to the job queue; the page follows it (billing_runs.py).
    run_id, started = billing_tasks.queue_invoice_run(month, current_user.id, today)
    run = db.session.get(JobRun, run_id)
    if not started:
        flash(f"Une émission {invoicing.of_month(month)} est déjà en cours : la voici.", "info")
    elif run.status == "done":  # already over (a quick worker, or the tests' immediate mode)
        flash(run.summary, "success")
    elif run.status == "failed":
        flash(run.error, "error")
    else:
        flash("Émission des factures lancée : suivez son avancement ci-dessous.", "success")
    return redirect(url_for("admin.billing_run", mois=f"{month:%Y-%m}"), 303)


@bp.route("/facturation/factures/<int:invoice_id>/avoir", methods=["GET", "POST"])
@admin_required
def billing_credit_note(invoice_id: int):
    invoice = _get(Invoice, invoice_id)
    if invoice.kind != "invoice":
        abort(404)
    form = CreditNoteForm()
    if not form.is_submitted():
        form.amount.data = tariffs.euros_input(invoicing.creditable_cents(invoice))
    status = _status(form)
    if form.validate_on_submit():
        amount, reason = form.amount.cents, form.reason.data

        def work():
            target = db.session.get(Invoice, invoice_id)
            credit = invoicing.credit_note(
                target, [(reason, amount)], reason, current_user, today=today_in_paris()
            )
            return credit.number

        try:
            number = write_transaction(work)
        except invoicing.BillingError as error:
            form.amount.errors.append(str(error))
        else:
            flash(f"Avoir {number} établi ({tariffs.euros(amount)}).", "success")
            return redirect(url_for("admin.billing_run", mois=f"{invoice.month:%Y-%m}"), 303)
    invoice = db.session.get(Invoice, invoice_id)
    return page(
        "credit_note.html",
        form=form,
        invoice=invoice,
        creditable=invoicing.creditable_cents(invoice),
        credits=invoicing.credits_of(invoice.id),
        statuses=INVOICE_STATUSES,
        status=status,
    )
