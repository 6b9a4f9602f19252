"""Back office: a household's credit balance (avoir), its movements and refunds, and the
overpayments to look at ("Trop-perçus à traiter").

Like the invoices, an agent reads those of the families they see (`services.scope`, else
404); only administrators record a refund or mark an overpayment as seen (`admin_required`).
Each change is a POST with CSRF.
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length

from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp, get_or_404, visible_or_deny
from citoyens.billing import refunds
from citoyens.billing.credits import credit_balance
from citoyens.billing.models import CREDIT_KINDS
from citoyens.billing.staff_forms import EurosField
from citoyens.forms import strip
from citoyens.households.directory import household_names
from citoyens.households.models import Household
from citoyens.services.scope import may_see_household
from citoyens.transactions import write_transaction
from citoyens.web import render

MAX_ID = 2**31 - 1


class RefundForm(FlaskForm):
    amount = EurosField(
        "Montant remboursé (en euros)",
        required_message="Indiquez le montant remboursé, par exemple 12,50.",
        description="Au plus le solde créditeur de la famille.",
    )
    # Checked by record_refund, with a French message.
    method = SelectField(
        "Remboursé par", choices=list(refunds.REFUND_METHODS.items()), validate_choice=False
    )
    note = StringField(
        "Note (référence du virement, n° du chèque…)",
        filters=[strip],
        validators=[Length(max=150, message="150 caractères au plus.")],
    )


class ReviewForm(FlaskForm):
    pass


def household_or_404(household_id: int) -> int:
    household = get_or_404(Household, household_id)
    allowed = may_see_household(current_user, household_id)
    return visible_or_deny(household, allowed, f"household:{household_id}").id


def _balance_page(household_id: int, form: RefundForm | None = None, status: int = 200):
    movements = refunds.movements(household_id)
    return render(
        "admin/credits/household.html",
        status=status,
        household_id=household_id,
        name=household_names({household_id}).get(household_id, f"Foyer n° {household_id}"),
        balance=credit_balance(household_id),
        movements=movements,
        kinds=CREDIT_KINDS,
        form=form or RefundForm(formdata=None),
        review_form=ReviewForm(formdata=None),
        waiting=any(
            m.credit.kind == "overpayment" and m.credit.reviewed_at is None for m in movements
        ),
    )


@bp.get("/factures/familles/<int:household_id>/solde", endpoint="household_credit")
def household_credit(household_id: int):
    return _balance_page(household_or_404(household_id))


@bp.post("/factures/familles/<int:household_id>/solde/rembourser", endpoint="credit_refund")
@admin_required
def credit_refund(household_id: int):
    household_or_404(household_id)
    form = RefundForm()
    if not form.validate_on_submit():
        return _balance_page(household_id, form, 422)
    amount, method, note = form.amount.cents, form.method.data, form.note.data

    def work():
        refunds.record_refund(household_id, amount, method, note, actor=current_user)

    try:
        write_transaction(work)
    except refunds.RefundError as error:
        field = form.method if error.field == "method" else form.amount
        field.errors = [*field.errors, str(error)]
        return _balance_page(household_id, form, 422)
    flash(f"Remboursement de {refunds.euros(amount)} enregistré.", "success")
    return redirect(url_for("admin.household_credit", household_id=household_id), 303)


@bp.post("/factures/familles/<int:household_id>/solde/vu", endpoint="credit_reviewed")
@admin_required
def credit_reviewed(household_id: int):
    household_or_404(household_id)
    if not ReviewForm().validate_on_submit():
        abort(400)
    write_transaction(lambda: refunds.mark_overpayments_reviewed(household_id, actor=current_user))
    flash(
        "Trop-perçu vérifié : il reste au solde et sera déduit de la prochaine facture.",
        "success",
    )
    return redirect(url_for("admin.overpayments"), 303)


@bp.get("/factures/trop-percus", endpoint="overpayments")
def overpayments():
    items = refunds.overpayments_to_review(current_user)
    return render(
        "admin/credits/overpayments.html",
        items=items,
        names=household_names({item.household_id for item in items}),
        review_form=ReviewForm(formdata=None),
    )
