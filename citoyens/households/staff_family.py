"""Back office: staff create a family and edit its details and members (phone, counter,
families without internet), with the family's own forms and validation.

Routes sit on the admin blueprint (staff only). Editing: the families the agent may see
(`staff_can_see_household`, to be replaced by the scope rules of issue 13), all for
administrators; another answers 404 and is logged. Creating: any staff. Deleting a member
stays a removal request decided by staff (households.operations.request_removal).
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField

from citoyens.admin.blueprint import bp, deny, form_status, get_or_404
from citoyens.extensions import db
from citoyens.households import counter, rules
from citoyens.households import operations as ops
from citoyens.households.forms import MEMBER_FORMS, AdultForm, ChildForm, HouseholdForm
from citoyens.households.models import Household
from citoyens.services.rules import staff_can_see_household
from citoyens.web import render

ROLE_TITLES = {"adult": "un responsable", "child": "un enfant", "contact": "un contact"}
NO_CSRF = {"csrf": False}  # sub-forms of one page: the page's form carries the token


class NewFamilyForm(FlaskForm):
    open_account = BooleanField(
        "Créer son espace famille (sans mot de passe : le responsable l'active avec "
        "« Mot de passe oublié » et son adresse e-mail)"
    )
    with_child = BooleanField("Ajouter un enfant maintenant")


def _editable_household(household_id: int) -> Household:
    household = get_or_404(Household, household_id)
    if not staff_can_see_household(current_user, household_id):
        deny(f"household:{household_id}")
    return household


def _child_form(**kwargs) -> ChildForm:
    form = ChildForm(**kwargs)
    form.set_schools(rules.active_schools())
    return form


def _form_page(form, household_id: int, title: str):
    """One staff form of a family's details or a member (422 with its errors)."""
    return render(
        "admin/households/form.html",
        form=form,
        household_id=household_id,
        title=title,
        status=form_status(form),
    )


@bp.route("/familles/nouvelle", methods=["GET", "POST"], endpoint="household_new")
def household_new():
    page = NewFamilyForm()
    household = HouseholdForm(prefix="foyer", meta=NO_CSRF)
    adult = AdultForm(prefix="adulte", meta=NO_CSRF)
    child = _child_form(prefix="enfant", meta=NO_CSRF)
    error = None
    if page.is_submitted():
        forms = [page, household, adult] + ([child] if page.with_child.data else [])
        results = [form.validate() for form in forms]  # every form shows its errors
        if all(results):
            try:
                created = counter.create_household(
                    household.model_data(rules.HOUSEHOLD_FIELDS),
                    adult.model_data(rules.EDITABLE_FIELDS["adult"]),
                    child.model_data(rules.EDITABLE_FIELDS["child"])
                    if page.with_child.data
                    else None,
                    actor=current_user._get_current_object(),
                    open_account=page.open_account.data,
                )
            except ops.HouseholdError as exc:
                db.session.rollback()
                error = str(exc)
            else:
                household_id = created.id
                db.session.commit()
                flash("Famille créée.", "success")
                if staff_can_see_household(current_user, household_id):
                    return redirect(url_for("admin.household", household_id=household_id), 303)
                # An agent sees a family through an enrolment in their services: enrol next.
                flash("Inscrivez maintenant l'enfant à l'un de vos services.", "info")
                return redirect(url_for("admin.enrolment_new", foyer=household_id), 303)
    return render(
        "admin/households/new.html",
        page=page,
        household=household,
        adult=adult,
        child=child,
        error=error,
        status=422 if page.is_submitted() else 200,
    )


@bp.route(
    "/familles/<int:household_id>/modifier", methods=["GET", "POST"], endpoint="household_edit"
)
def household_edit(household_id: int):
    household = _editable_household(household_id)
    form = HouseholdForm(obj=household)
    if form.validate_on_submit():
        changed = ops.update_household(
            household, form.model_data(rules.HOUSEHOLD_FIELDS), actor=current_user
        )
        db.session.commit()
        flash("Foyer enregistré." if changed else "Aucune modification.", "success")
        return redirect(url_for("admin.household", household_id=household_id), 303)
    return _form_page(form, household_id, "Modifier le foyer")


@bp.route(
    "/familles/<int:household_id>/ajouter/<role_slug>",
    methods=["GET", "POST"],
    endpoint="household_member_new",
)
def household_member_new(household_id: int, role_slug: str):
    _editable_household(household_id)
    role = rules.ROLE_SLUGS.get(role_slug)
    if role is None:
        abort(404)
    form = _child_form() if role == "child" else MEMBER_FORMS[role]()
    if form.validate_on_submit():
        membership = ops.add_member(
            household_id, role, form.model_data(rules.EDITABLE_FIELDS[role]), actor=current_user
        )
        db.session.commit()
        flash(f"{membership.person.full_name} fait maintenant partie du foyer.", "success")
        return redirect(url_for("admin.household", household_id=household_id), 303)
    return _form_page(form, household_id, f"Ajouter {ROLE_TITLES[role]}")


@bp.route(
    "/familles/<int:household_id>/membres/<int:person_id>/modifier",
    methods=["GET", "POST"],
    endpoint="household_member_edit",
)
def household_member_edit(household_id: int, person_id: int):
    _editable_household(household_id)
    membership = rules.active_membership(household_id, person_id)
    if membership is None:
        abort(404)
    data = {name: getattr(membership, name) for name in rules.MEMBERSHIP_FIELDS}
    form = MEMBER_FORMS[membership.role](obj=membership.person, data=data)
    if isinstance(form, ChildForm):
        form.set_schools(rules.active_schools(keep_id=membership.person.school_id))
    if form.validate_on_submit():
        changed = ops.update_member(
            membership,
            form.model_data(rules.EDITABLE_FIELDS[membership.role]),
            actor=current_user,
        )
        db.session.commit()
        flash("Modifications enregistrées." if changed else "Aucune modification.", "success")
        return redirect(url_for("admin.household", household_id=household_id), 303)
    return _form_page(form, household_id, f"Modifier {membership.person.full_name}")
