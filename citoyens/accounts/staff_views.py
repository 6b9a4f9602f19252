"""Back office: staff accounts, managed by administrators (issue 13). Agents get 403.

Routes on the admin blueprint; the rules live in `citoyens.accounts.staff`.
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from citoyens.accounts import staff as rules
from citoyens.accounts.decorators import admin_required
from citoyens.accounts.staff_forms import (
    NewStaffAccountForm,
    StaffAccountForm,
    StaffActivationForm,
    StaffLinkForm,
)
from citoyens.admin.blueprint import MAX_ID, bp, form_status
from citoyens.transactions import write_transaction
from citoyens.web import render


def _account_or_404(user_id: int):
    user = rules.get_staff_account(user_id) if user_id <= MAX_ID else None
    if user is None:
        abort(404)
    return user


def _actor():
    return current_user._get_current_object()


def _attempt(form, work):
    """Run `work` as one write transaction; a refused change becomes the form's error."""
    try:
        return True, write_transaction(work)
    except rules.StaffAccountError as error:
        target = form[error.field] if error.field and error.field in form else None
        (target.errors if target is not None else form.form_errors).append(error.message)
        return False, None


def _form_page(form, account=None):
    return render(
        "admin/accounts/form.html",
        form=form,
        account=account,
        activation_form=StaffActivationForm(),
        link_form=StaffLinkForm(),
        status=form_status(form),
    )


@bp.get("/equipe")
@admin_required
def staff_accounts():
    return render("admin/accounts/index.html", rows=rules.staff_accounts())


@bp.route("/equipe/nouveau", methods=["GET", "POST"])
@admin_required
def staff_accounts_new():
    form = NewStaffAccountForm()
    if form.validate_on_submit():
        actor = _actor()
        ok, user = _attempt(form, lambda: rules.create_staff_account(actor=actor, **form.values()))
        if ok:
            flash(
                f"Compte de {user.full_name} créé. Un e-mail lui a été envoyé à {user.email} "
                "pour définir son mot de passe.",
                "success",
            )
            return redirect(url_for("admin.staff_accounts"), 303)
    return _form_page(form)


@bp.route("/equipe/<int:user_id>", methods=["GET", "POST"])
@admin_required
def staff_accounts_edit(user_id: int):
    account = _account_or_404(user_id)
    attached = rules.service_ids_of(account.id)
    initial = {"service_ids": attached, "admin": account.is_admin}
    form = StaffAccountForm(obj=account, attached_ids=attached, data=initial)
    if form.validate_on_submit():
        actor = _actor()
        ok, changed = _attempt(
            form, lambda: rules.update_staff_account(user_id, actor=actor, **form.values())
        )
        if ok:
            flash("Compte enregistré." if changed else "Aucune modification.", "success")
            return redirect(url_for("admin.staff_accounts"), 303)
    return _form_page(form, account)


@bp.post("/equipe/<int:user_id>/activation")
@admin_required
def staff_accounts_activation(user_id: int):
    account = _account_or_404(user_id)
    form = StaffActivationForm()
    if not form.validate():
        abort(400)
    active = form.active.data == "1"
    actor = _actor()
    try:
        write_transaction(lambda: rules.set_staff_active(user_id, active, actor=actor))
    except rules.StaffAccountError as error:
        flash(error.message, "error")
        return redirect(url_for("admin.staff_accounts_edit", user_id=user_id), 303)
    flash(
        f"Le compte de {account.full_name} est réactivé."
        if active
        else f"Le compte de {account.full_name} est désactivé : ses sessions sont fermées.",
        "success",
    )
    return redirect(url_for("admin.staff_accounts"), 303)


@bp.post("/equipe/<int:user_id>/lien")
@admin_required
def staff_accounts_send_link(user_id: int):
    account = _account_or_404(user_id)
    if not StaffLinkForm().validate():
        abort(400)
    actor = _actor()
    try:
        write_transaction(lambda: rules.send_password_link(user_id, actor=actor))
    except rules.StaffAccountError as error:
        flash(error.message, "error")
    else:
        flash(f"Un lien pour définir le mot de passe a été envoyé à {account.email}.", "success")
    return redirect(url_for("admin.staff_accounts_edit", user_id=user_id), 303)
