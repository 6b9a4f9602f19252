"""Back office: the month's direct debits (prélèvements) and their pain.008 files.

Every member of staff sees the page (what is to export, what was exported); generating
a file, downloading one (it holds every family's IBAN) and recording a rejection are for
administrators. The rules live in `citoyens.billing.direct_debit_export` and
`citoyens.billing.debit_overview`; writes go through `write_transaction`, so two exports
at once still take each invoice once.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, request, url_for
from flask_login import current_user

from citoyens import audit
from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp
from citoyens.billing import debit_overview, direct_debit_export, mandates
from citoyens.billing.models import DirectDebitBatch
from citoyens.documents.uploads import content_disposition
from citoyens.extensions import db
from citoyens.transactions import write_transaction
from citoyens.web import render


def _actor():
    return current_user._get_current_object()


def _default_month():
    """The month billed most recently: invoices of month M are issued early in M + 1."""
    return mandates.add_months(mandates.month_start(mandates.today()), -1)


def _page(month, *, error=None, status=200):
    return render(
        "admin/direct_debits/index.html",
        status=status,
        overview=debit_overview.month_overview(month),
        previous_month=mandates.add_months(month, -1),
        next_month=mandates.add_months(month, 1),
        can_export=current_user.is_admin,
        creditor_problem=direct_debit_export.creditor_problem(),
        error=error,
        euros=mandates.format_euros,
        of_month=mandates.of_month,
    )


@bp.get("/prelevements", endpoint="direct_debits")
def direct_debits():
    month = mandates.parse_month(request.args.get("mois")) or _default_month()
    return _page(month)


@bp.post("/prelevements/generer", endpoint="direct_debits_export")
@admin_required
def direct_debits_export():
    month = mandates.parse_month(request.form.get("mois"))
    if month is None:
        return _page(_default_month(), error="Mois inconnu : aucun fichier créé.", status=422)
    actor = _actor()
    try:
        result = write_transaction(lambda: direct_debit_export.export_month(month, actor=actor))
    except direct_debit_export.DirectDebitError as exc:
        return _page(month, error=str(exc), status=422)
    if not result.batch_ids:
        flash(
            f"Aucune facture {mandates.of_month(month)} n'attend de prélèvement : "
            "aucun fichier créé.",
            "warning",
        )
    else:
        files = len(result.batch_ids)
        flash(
            f"{'Fichiers créés' if files > 1 else 'Fichier créé'} : {result.count} "
            f"prélèvement{'s' if result.count > 1 else ''} pour "
            f"{mandates.format_euros(result.total_cents)}. Téléchargez-le et déposez-le sur le "
            "portail de la banque.",
            "success",
        )
    return redirect(url_for("admin.direct_debits", mois=f"{month:%Y-%m}"), 303)


@bp.get("/prelevements/lot/<int:batch_id>.xml", endpoint="direct_debit_batch_xml")
@admin_required
def direct_debit_batch_xml(batch_id: int):
    batch = db.session.get(DirectDebitBatch, batch_id)
    if batch is None:
        abort(404)
    audit.record(
        "direct_debit.downloaded", actor=current_user, target=f"direct_debit_batch:{batch.id}"
    )
    db.session.commit()
    name = f"prelevements-{batch.month:%Y-%m}-lot-{batch.id}.xml"
    response = current_app.response_class(batch.xml.encode("utf-8"), mimetype="application/xml")
    response.headers["Content-Disposition"] = content_disposition(name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route(
    "/prelevements/rejet/<int:item_id>", methods=["GET", "POST"], endpoint="direct_debit_reject"
)
@admin_required
def direct_debit_reject(item_id: int):
    line = debit_overview.exported_line(item_id)
    if line is None:
        abort(404)
    error = None
    status = 200
    if request.method == "POST":
        code = request.form.get("motif", "")
        actor = _actor()
        try:
            done = write_transaction(
                lambda: debit_overview.record_rejection(item_id, code, actor=actor)
            )
        except direct_debit_export.DirectDebitError as exc:
            error, status = str(exc), 422
            line = debit_overview.exported_line(item_id)
        else:
            if done.reopened:
                message = (
                    f"Rejet enregistré : la facture {done.invoice_number} est de nouveau à "
                    "payer et la famille est prévenue par e-mail."
                )
            else:
                message = (
                    f"Rejet enregistré. La facture {done.invoice_number} n'était plus "
                    "« prélevée » (annulée ou réglée autrement) : son état ne change pas."
                )
            flash(message, "success")
            month = line.invoice.month
            return redirect(url_for("admin.direct_debits", mois=f"{month:%Y-%m}"), 303)
    return render(
        "admin/direct_debits/reject.html",
        status=status,
        line=line,
        reasons=debit_overview.REJECTION_REASONS,
        chosen=request.form.get("motif") if request.method == "POST" else None,
        error=error,
        euros=mandates.format_euros,
        of_month=mandates.of_month,
    )
