"""Mes factures: the family's invoices, their PDF, status and payments (blueprint `billing`).

Other modules add their routes to this blueprint: pay_views (online payment) and
mandate_views (direct debit). Every page is the household's own: another household's
invoice answers 404, as a missing one does.
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, url_for
from flask_login import current_user
from jinja2 import TemplateNotFound
from werkzeug.routing import BuildError

from citoyens.accounts.decorators import parent_required
from citoyens.billing import counter_list, counter_pdf, pdf, rules
from citoyens.billing.credits import credit_balance
from citoyens.billing.money import euros
from citoyens.web import render

bp = Blueprint("billing", __name__)

# The online-payment block the payment module provides (context: invoice, balance_cents).
PAY_BLOCK = "billing/_pay_block.html"


@bp.app_template_filter("euros")
def euros_filter(cents: int | None) -> str:
    """{{ 1230|euros }} → "12,30 €", on every page of the app."""
    return euros(cents)


def optional_url(endpoint: str, **values) -> str | None:
    """A link to a page this build may not have yet (e.g. the mandate page)."""
    if endpoint not in current_app.view_functions:
        return None
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def has_template(name: str) -> bool:
    try:
        current_app.jinja_env.get_template(name)
    except TemplateNotFound:
        return False
    return True


def _own_invoice(invoice_id: int):
    invoice = rules.household_invoice(current_user.household_id, invoice_id)
    if invoice is None:
        abort(404)
    return invoice


@bp.get("/factures")
@parent_required
def index():
    from citoyens.households.quotient import quotient_status

    statement = rules.household_statement(current_user.household_id, rules.today())
    return render(
        "billing/index.html",
        statement=statement,
        qf=quotient_status(current_user.household_id, rules.today()),
        credit_cents=credit_balance(current_user.household_id),
        mandate_url=optional_url("billing.mandate"),
        household_url=optional_url("households.edit_household"),
    )


@bp.get("/factures/<int:invoice_id>")
@parent_required
def invoice(invoice_id: int):
    detail = rules.invoice_detail(_own_invoice(invoice_id), rules.today())
    return render(
        "billing/invoice.html",
        detail=detail,
        invoice=detail.invoice,
        balance_cents=detail.open_cents,
        has_pay_block=has_template(PAY_BLOCK),
        pay_block=PAY_BLOCK,
        days_label=rules.days_compact,
        method_label=rules.method_label,
    )


@bp.get("/factures/<int:invoice_id>.pdf")
@parent_required
def invoice_pdf(invoice_id: int):
    invoice = _own_invoice(invoice_id)
    originals = rules.original_numbers([invoice])
    body = pdf.render_invoice(invoice, pdf.current_issuer(), originals.get(invoice.credit_for_id))
    return pdf.pdf_response(body, pdf.filename(invoice))


@bp.get("/factures/recus/<int:receipt_id>.pdf")
@parent_required
def receipt_pdf(receipt_id: int):
    """The receipt of a payment made at the counter (the household's own, else 404)."""
    receipt = counter_list.household_receipt(current_user.household_id, receipt_id)
    if receipt is None:
        abort(404)
    lines = counter_list.receipt_lines(receipt.id)
    body = counter_pdf.render_receipt(receipt, lines, pdf.current_issuer())
    return pdf.pdf_response(body, counter_pdf.filename(receipt))
