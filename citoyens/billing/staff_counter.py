"""Back office: money taken at the counter. A family's invoices and payments, the form
« Enregistrer un paiement », a receipt with its PDF and, for administrators, its reversal.

Like the invoices, an agent acts for the families they see (`services.scope`): another
family answers 404 (audited). Only administrators reverse a receipt (`admin_required`).
Every change is a POST with CSRF, run in one write transaction.
"""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_login import current_user

from citoyens import audit
from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import MAX_ID, bp, visible_or_deny
from citoyens.billing import counter, counter_list, counter_pdf, counter_reversal, pdf, rules
from citoyens.billing.counter_forms import CounterPaymentForm, ReversalForm
from citoyens.billing.counter_models import CounterReceipt
from citoyens.billing.credits import credit_balance
from citoyens.billing.money import euros
from citoyens.billing.staff_credits import household_or_404
from citoyens.extensions import db
from citoyens.forms import parse_id
from citoyens.households.directory import household_names
from citoyens.services.scope import may_see_household
from citoyens.transactions import write_transaction
from citoyens.web import render


def _name(household_id: int) -> str:
    return household_names({household_id}).get(household_id, f"Foyer n° {household_id}")


def _receipt_or_404(receipt_id: int) -> CounterReceipt:
    receipt = db.session.get(CounterReceipt, receipt_id) if receipt_id <= MAX_ID else None
    allowed = receipt is not None and may_see_household(current_user, receipt.household_id)
    return visible_or_deny(receipt, allowed, f"receipt:{receipt_id}")


@bp.get("/factures/familles/<int:household_id>", endpoint="household_invoices")
def household_invoices(household_id: int):
    household_id = household_or_404(household_id)
    return render(
        "admin/counter/household.html",
        household_id=household_id,
        name=_name(household_id),
        statement=rules.household_statement(household_id, rules.today()),
        receipts=counter_list.household_receipts(household_id),
        balance=credit_balance(household_id),
        receipt_label=rules.receipt_label,
    )


def _form_page(household_id: int, form: CounterPaymentForm, status: int = 200, owed=None):
    return render(
        "admin/counter/new.html",
        status=status,
        form=form,
        household_id=household_id,
        name=_name(household_id),
        open_invoices=counter_list.open_invoices(household_id) if owed is None else owed,
        ticked=set(form.invoices.data or ()),
        balance=credit_balance(household_id),
    )


@bp.route(
    "/factures/familles/<int:household_id>/encaissement",
    methods=["GET", "POST"],
    endpoint="counter_new",
)
def counter_new(household_id: int):
    household_id = household_or_404(household_id)
    form = CounterPaymentForm()
    if not form.is_submitted():
        form.received_on.data = rules.today()
        owed = counter_list.open_invoices(household_id)
        chosen = parse_id(request.args.get("facture"))
        open_ids = [item.invoice.id for item in owed]
        # From an invoice's page: that one; from the family's page: all it owes.
        form.invoices.data = [chosen] if chosen in open_ids else open_ids
        return _form_page(household_id, form, owed=owed)
    if not form.validate():
        return _form_page(household_id, form, 422)

    def work():
        return counter.record_receipt(
            household_id,
            method=form.method.data,
            amount_cents=form.amount.cents,
            received_on=form.received_on.data,
            invoice_ids=form.invoices.data,
            reference=form.reference.data,
            issuer=form.issuer.data,
            note=form.note.data,
            actor=current_user,
            today=rules.today(),
        )

    try:
        receipt = write_transaction(work)
    except counter.CounterError as error:
        field = getattr(form, error.field, form.invoices)
        field.errors = [*field.errors, str(error)]
        return _form_page(household_id, form, 422)
    message = f"Paiement de {euros(receipt.amount_cents)} enregistré : reçu n° {receipt.number}."
    if receipt.credit_cents:
        message += f" {euros(receipt.credit_cents)} gardés au crédit de la famille."
    flash(message, "success")
    return redirect(url_for("admin.counter_receipt", receipt_id=receipt.id), 303)


def _receipt_page(receipt: CounterReceipt, form: ReversalForm | None = None, status: int = 200):
    return render(
        "admin/counter/receipt.html",
        status=status,
        receipt=receipt,
        lines=counter_list.receipt_lines(receipt.id),
        name=_name(receipt.household_id),
        label=rules.receipt_label(receipt),
        form=form or ReversalForm(formdata=None),
    )


@bp.get("/factures/encaissements/<int:receipt_id>", endpoint="counter_receipt")
def counter_receipt(receipt_id: int):
    return _receipt_page(_receipt_or_404(receipt_id))


@bp.get("/factures/encaissements/<int:receipt_id>.pdf", endpoint="counter_receipt_pdf")
def counter_receipt_pdf(receipt_id: int):
    receipt = _receipt_or_404(receipt_id)
    lines = counter_list.receipt_lines(receipt.id)
    audit.record("counter.pdf", actor=current_user, target=f"receipt:{receipt.id}")
    db.session.commit()
    body = counter_pdf.render_receipt(receipt, lines, pdf.current_issuer())
    return pdf.pdf_response(body, counter_pdf.filename(receipt))


@bp.post("/factures/encaissements/<int:receipt_id>/annuler", endpoint="counter_reverse")
@admin_required
def counter_reverse(receipt_id: int):
    receipt = _receipt_or_404(receipt_id)
    form = ReversalForm()
    if not form.validate_on_submit():
        return _receipt_page(receipt, form, 422)
    reason = form.reason.data
    try:
        write_transaction(
            lambda: counter_reversal.reverse_receipt(receipt_id, reason, actor=current_user)
        )
    except counter.CounterError as error:
        form.reason.errors = [*form.reason.errors, str(error)]
        db.session.refresh(receipt)
        return _receipt_page(receipt, form, 409 if receipt.reversed_at else 422)
    flash(
        f"Paiement n° {receipt.number} annulé : les factures qu'il réglait sont de nouveau à "
        "payer.",
        "success",
    )
    return redirect(url_for("admin.counter_receipt", receipt_id=receipt_id), 303)
