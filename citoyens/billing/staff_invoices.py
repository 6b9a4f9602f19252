"""Back office: invoices. The month's list with filters and totals (and its export as CSV
or XLSX), one invoice with its payments and reminders, its PDF, and the batch of paper
invoices to print.

An agent reads the invoices of the families they see (`services.scope`): another
family's answers 404 (audited); administrators read them all.
PDF downloads by staff are recorded in the audit trail (who, which invoice/month).
"""

from __future__ import annotations

from flask import current_app, request, url_for
from flask_login import current_user

from citoyens import audit
from citoyens.admin.blueprint import MAX_ID, bp, visible_or_deny
from citoyens.billing import exports, invoice_list, months, payments, pdf, reminders, rules
from citoyens.billing.models import REMINDER_KINDS
from citoyens.billing.staff_finance import export_format
from citoyens.extensions import db
from citoyens.services.scope import may_see_household
from citoyens.tabular import send_table
from citoyens.web import render


def _optional_url(endpoint: str, **values) -> str | None:
    """A link to another back-office page, when this build has it."""
    return url_for(endpoint, **values) if endpoint in current_app.view_functions else None


def _month():
    """The month asked for (?mois=2026-09); else the latest month invoiced; else the last."""
    month = invoice_list.parse_month(request.args.get("mois"))
    if month is None:
        month = invoice_list.latest_month() or invoice_list.shift_month(
            rules.today().replace(day=1), -1
        )
    return month


def _list_filters() -> tuple[str, str]:
    """The list's status filter and search (?statut=overdue&q=dupont); unknown → none."""
    status = request.args.get("statut", "")
    status = status if status in rules.STATUS_FILTERS else ""
    return status, request.args.get("q", "").strip()[:100]


@bp.get("/factures", endpoint="invoices")
def invoices():
    month = _month()
    today = rules.today()
    status, q = _list_filters()
    page_number = request.args.get("page", 1, type=int) or 1
    summary = invoice_list.month_summary(month, today, user=current_user)
    page, states = invoice_list.month_invoices(
        month,
        status=status,
        q=q,
        page=page_number,
        today=today,
        user=current_user,
        summary=summary,
    )
    filters = {"mois": f"{month:%Y-%m}", "statut": status, "q": q}
    return render(
        "admin/invoices/index.html",
        month=month,
        previous_month=invoice_list.shift_month(month, -1),
        next_month=invoice_list.shift_month(month, 1),
        page=page,
        states=states,
        summary=summary,
        chosen=status,
        q=q,
        filters={key: value for key, value in filters.items() if value},
        status_filters=rules.STATUS_FILTERS,
        # The payments export's period: the month shown.
        payments_first=month,
        payments_last=months.month_bounds(month)[1],
    )


@bp.get("/factures/export", endpoint="invoices_export")
def invoices_export():
    """The list as it is filtered, as a CSV or XLSX file (?format=xlsx): every page."""
    fmt = export_format()
    month = _month()
    status, q = _list_filters()
    audit.record(
        "invoices.exported",
        actor=current_user,
        target=f"month:{month:%Y-%m}",
        details=f"format:{fmt} statut:{status or 'tous'} recherche:{'oui' if q else 'non'}",
    )
    db.session.commit()
    sheets = exports.build_invoice_list(
        month, status=status, q=q, today=rules.today(), user=current_user
    )
    return send_table(fmt, f"factures-{month:%Y-%m}", sheets)


def _invoice_or_404(invoice_id: int):
    invoice = rules.invoice_for_staff(invoice_id) if invoice_id <= MAX_ID else None
    allowed = invoice is not None and may_see_household(current_user, invoice.household_id)
    return visible_or_deny(invoice, allowed, f"invoice:{invoice_id}")


@bp.get("/factures/<int:invoice_id>", endpoint="invoice")
def invoice(invoice_id: int):
    detail = rules.invoice_detail(_invoice_or_404(invoice_id), rules.today())
    household_id = detail.invoice.household_id
    return render(
        "admin/invoices/show.html",
        detail=detail,
        invoice=detail.invoice,
        household_url=_optional_url("admin.household", household_id=household_id),
        list_url=url_for("admin.invoices", mois=f"{detail.invoice.month:%Y-%m}"),
        days_label=rules.days_compact,
        method_label=rules.method_label,
        overpaid=payments.overpayments(invoice_id),
        reminders=reminders.reminders_of(invoice_id),
        reminder_kinds=REMINDER_KINDS,
    )


@bp.get("/factures/<int:invoice_id>.pdf", endpoint="invoice_pdf")
def invoice_pdf(invoice_id: int):
    invoice = _invoice_or_404(invoice_id)
    originals = rules.original_numbers([invoice])
    audit.record("invoice.pdf", actor=current_user, target=f"invoice:{invoice.id}")
    db.session.commit()
    body = pdf.render_invoice(invoice, pdf.current_issuer(), originals.get(invoice.credit_for_id))
    return pdf.pdf_response(body, pdf.filename(invoice))


@bp.get("/factures/papier.pdf", endpoint="invoices_paper_pdf")
def invoices_paper_pdf():
    """One file with the month's invoices for families without "facture en ligne"."""
    month = _month()
    batch = invoice_list.paper_invoices(month, user=current_user)
    audit.record(
        "invoices.paper_pdf",
        actor=current_user,
        target=f"month:{month:%Y-%m}",
        details=f"{len(batch)} document(s)",
    )
    db.session.commit()
    body = pdf.render_invoices(batch, pdf.current_issuer(), rules.original_numbers(batch))
    return pdf.pdf_response(body, f"factures-papier-{month:%Y-%m}.pdf")
