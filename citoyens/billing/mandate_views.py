"""Prélèvement automatique: the family's SEPA mandate (routes on the `billing` blueprint).

GET /prelevement explains direct debit and shows the household's mandate (IBAN masked),
or the form to sign one. Signing and revoking ask for the account's password again; a
refused form saves nothing. The rules live in `citoyens.billing.mandates`.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.accounts.decorators import parent_required
from citoyens.accounts.passwords import verify_password
from citoyens.billing import bank_details, direct_debit_export, mandates
from citoyens.billing.mandate_forms import MandateForm, RevokeForm
from citoyens.billing.views import bp
from citoyens.extensions import db, limiter
from citoyens.transactions import write_transaction
from citoyens.web import render

BAD_CREDENTIAL = "Le mot de passe est incorrect."

# A stolen session must not try passwords here at leisure: a few attempts an hour per account.
mandate_limit = limiter.limit(
    "10 per hour",
    methods=["POST"],
    key_func=lambda: f"mandate:{getattr(current_user, 'id', None)}",
)


def _page(*, form=None, revoke_form=None, status=200, notice=None):
    household_id = current_user.household_id
    mandate = mandates.active_mandate(household_id)
    settings = mandates.creditor()
    planned = mandates.planned_debits(household_id)
    invoices_url = (
        url_for("billing.index") if "billing.index" in current_app.view_functions else None
    )
    return render(
        "billing/mandate.html",
        status=status,
        mandate=mandate,
        form=form if form is not None else MandateForm(),
        revoke_form=revoke_form if revoke_form is not None else RevokeForm(),
        planned=planned,
        due=direct_debit_export.amounts_due(invoice.id for invoice in planned),
        first_month=mandates.first_month_for(household_id),
        signed_on=mandates.signed_on(mandate) if mandate else None,
        creditor_name=settings["name"],
        creditor_id=settings["id"],
        consent=mandates.consent_text(settings["name"]),
        invoices_url=invoices_url,
        notice=notice,
        euros=mandates.format_euros,
        of_month=mandates.of_month,
    )


def _password_refused(form, action: str):
    form.password.errors.append(BAD_CREDENTIAL)
    audit.record("mandate.password_refused", actor=current_user, target=action)
    db.session.commit()


@bp.get("/prelevement", endpoint="mandate")
@parent_required
def mandate():
    return _page()


@bp.post("/prelevement/signer", endpoint="mandate_sign")
@parent_required
@mandate_limit
def mandate_sign():
    household_id = current_user.household_id
    if mandates.active_mandate(household_id) is not None:
        return _page(notice=mandates.ALREADY_ACTIVE, status=409)
    form = MandateForm()
    if not form.validate_on_submit():
        return _page(form=form, status=422)
    if not verify_password(current_user.password_hash, form.password.data):
        _password_refused(form, "mandate_sign")
        return _page(form=form, status=422)
    actor = current_user._get_current_object()

    def work():
        signed = mandates.sign_mandate(
            household_id,
            holder_name=form.holder_name.data,
            iban=form.iban_compact,
            bic=form.bic_code,
            actor=actor,
        )
        return signed.rum, signed.first_month

    try:
        rum, first_month = write_transaction(work)
    except bank_details.MandateError as exc:
        if exc.field in form:
            form[exc.field].errors.append(str(exc))
            return _page(form=form, status=422)
        return _page(notice=str(exc), status=409)
    except IntegrityError:
        # A second tab signed at the same moment: the unique index kept one mandate.
        # Never passed on: the error's parameters hold the IBAN.
        db.session.rollback()
        return _page(notice=mandates.ALREADY_ACTIVE, status=409)
    flash(
        f"Votre mandat de prélèvement est signé (référence {rum}). Il s'applique à partir "
        f"de la facture {mandates.of_month(first_month)}. Un e-mail de confirmation vous a été "
        "envoyé.",
        "success",
    )
    return redirect(url_for("billing.mandate"), 303)


@bp.post("/prelevement/revoquer", endpoint="mandate_revoke")
@parent_required
@mandate_limit
def mandate_revoke():
    household_id = current_user.household_id
    if mandates.active_mandate(household_id) is None:
        return _page(notice=mandates.NO_ACTIVE, status=409)
    form = RevokeForm()
    if not form.validate_on_submit():
        return _page(revoke_form=form, status=422)
    if not verify_password(current_user.password_hash, form.password.data):
        _password_refused(form, "mandate_revoke")
        return _page(revoke_form=form, status=422)
    actor = current_user._get_current_object()
    try:
        done = write_transaction(lambda: mandates.revoke_mandate(household_id, actor=actor))
    except bank_details.MandateError as exc:
        return _page(notice=str(exc), status=409)
    message = "Votre mandat de prélèvement est révoqué : les prochaines factures ne seront "
    message += "plus prélevées."
    if done.reverted:
        numbers = ", ".join(done.reverted)
        plural = len(done.reverted) > 1
        message += (
            f" {'Les factures' if plural else 'La facture'} {numbers} "
            f"{'qui devaient être prélevées sont' if plural else 'qui devait être prélevée est'}"
            f" de nouveau à payer : vous pouvez {'les' if plural else 'la'} régler en ligne "
            "par carte bancaire."
        )
    flash(message, "success")
    return redirect(url_for("billing.mandate"), 303)
