"""Back office: the monthly invoice run, its progress on the job queue, and credit notes
(issue 6).

Agents may read the run's summary; only administrators issue a month or write a credit
note (`admin_required` on top of the blueprint's staff guard). Household rows of the run
are for administrators only: an agent works for some services, the run covers them all.
No route edits an issued invoice: a correction is a credit note. The run page includes the
progress fragment and polls it with htmx every 2 s while the run is queued or running.
"""

from __future__ import annotations

from datetime import date

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import MAX_ID, bp, form_status, get_or_404
from citoyens.billing import credit_notes, invoice_run, month_plan, months, tariffs
from citoyens.billing import tasks as billing_tasks
from citoyens.billing.models import INVOICE_STATUSES, Invoice
from citoyens.billing.staff_forms import CreditNoteForm, IssueForm
from citoyens.core.models import JOB_RUN_STATUSES, JobRun
from citoyens.extensions import db
from citoyens.formatting import month_fr
from citoyens.forms import today_in_paris
from citoyens.households.directory import household_names
from citoyens.transactions import write_transaction
from citoyens.web import render


def _run_page(month: date, *, form: IssueForm | None = None, notice: str | None = None):
    today = today_in_paris()
    plan = month_plan.plan_month(month)
    issued = month_plan.month_invoices(month)
    rows, names, paperless = [], {}, {}
    ids = [bill.household_id for bill in plan.bills]
    mandates = invoice_run.active_mandates(ids, month)
    if current_user.is_admin:
        names = {}
        for chunk in invoice_run.chunks(
            ids + [invoice.household_id for invoice in issued.invoices]
        ):
            names.update(household_names(chunk))
        who = invoice_run.addressees(ids)
        paperless = {household_id: who[household_id].paperless for household_id in ids}
        rows = plan.bills
    if form is None:
        form = IssueForm(formdata=None, data={"mois": f"{month:%Y-%m}"})
    return render(
        "admin/billing/run.html",
        month=month,
        month_label=month_fr(month),
        of_month=months.of_month(month),
        previous=months.previous_month(month),
        following=months.next_month(month),
        over=month < today.replace(day=1),
        plan=plan,
        rows=rows,
        names=names,
        paperless=paperless,
        mandates=mandates,
        issued=issued,
        debit_warning=months.debit_warning(month, today) if mandates else None,
        statuses=INVOICE_STATUSES,
        form=form,
        notice=notice,
        run=billing_tasks.latest_run(month),
        **status_context(),
        status=422 if form.is_submitted() or notice else 200,
    )


@bp.get("/facturation")
def billing_run():
    value = request.args.get("mois")
    if value:
        try:
            month = months.parse_month(value)
        except months.BillingError as error:
            return _run_page(months.previous_month(today_in_paris()), notice=str(error))
    else:
        month = months.previous_month(today_in_paris())
    return _run_page(month)


@bp.post("/facturation/emettre")
@admin_required
def billing_issue():
    form = IssueForm()
    try:
        month = months.parse_month(form.mois.data)
    except months.BillingError as error:
        return _run_page(months.previous_month(today_in_paris()), notice=str(error))
    if not form.validate():
        return _run_page(month, form=form)
    today = today_in_paris()
    try:
        months.check_month_is_over(month, today)
    except months.BillingError as error:
        return _run_page(month, form=form, notice=str(error))
    plan = month_plan.plan_month(month)
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
        flash(f"Une émission {months.of_month(month)} est déjà en cours : la voici.", "info")
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
    invoice = get_or_404(Invoice, invoice_id)
    if invoice.kind != "invoice":
        abort(404)
    form = CreditNoteForm()
    if not form.is_submitted():
        form.amount.data = tariffs.euros_input(credit_notes.creditable_cents(invoice))
    status = form_status(form)
    if form.validate_on_submit():
        amount, reason = form.amount.cents, form.reason.data

        def work():
            target = db.session.get(Invoice, invoice_id)
            credit = credit_notes.credit_note(
                target, [(reason, amount)], reason, current_user, today=today_in_paris()
            )
            return credit.number

        try:
            number = write_transaction(work)
        except months.BillingError as error:
            form.amount.errors.append(str(error))
        else:
            flash(f"Avoir {number} établi ({tariffs.euros(amount)}).", "success")
            return redirect(url_for("admin.billing_run", mois=f"{invoice.month:%Y-%m}"), 303)
    invoice = db.session.get(Invoice, invoice_id)
    return render(
        "admin/billing/credit_note.html",
        form=form,
        invoice=invoice,
        creditable=credit_notes.creditable_cents(invoice),
        credits=credit_notes.credits_of(invoice.id),
        statuses=INVOICE_STATUSES,
        status=status,
    )


@bp.get("/facturation/emissions/<int:run_id>")
def billing_run_status(run_id: int):
    run = db.session.get(JobRun, run_id) if run_id <= MAX_ID else None
    if run is None or run.kind != billing_tasks.INVOICE_RUN:
        abort(404)
    # htmx polls the fragment (the "status" block); opened directly, it is a page.
    return render("admin/billing/run_status.html", block="status", run=run, **status_context())


def status_context() -> dict:
    """What the run-status fragment needs besides the run."""
    return {"run_progress": billing_tasks.progress_of, "run_statuses": JOB_RUN_STATUSES}
