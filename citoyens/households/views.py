"""Family pages of the households domain: "Mon foyer", its forms, removal requests, invitations.

The household is always the logged-in parent's (`current_user.household_id`); a person is
reached only through an active membership of that household, else 404. Posted ids,
roles and household ids are never read.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from citoyens.accounts.decorators import parent_required
from citoyens.extensions import db, limiter
from citoyens.forms import today_in_paris
from citoyens.households import invitations, quotient, rules
from citoyens.households import operations as ops  # also registers the removal decision
from citoyens.households.forms import (
    INLINE_SKIPPED_TYPES,
    MEMBER_FORMS,
    ChildForm,
    HouseholdForm,
    QuotientDeclarationForm,
    RemovalForm,
)
from citoyens.households.invitation_forms import AcceptInvitationForm, InviteForm
from citoyens.households.models import Household, Person
from citoyens.web import is_htmx_fragment_request, render

bp = Blueprint("households", __name__)

# Each invitation sends an e-mail; a family needs a handful at most.
invite_limit = limiter.limit("10 per hour", methods=["POST"])
accept_limit = limiter.limit("20 per hour", methods=["POST"])

ROLE_TITLES = {
    "adult": ("Ajouter un responsable", "Modifier un responsable"),
    "child": ("Ajouter un enfant", "Modifier un enfant"),
    "contact": ("Ajouter un contact", "Modifier un contact"),
}


# --- Form builders (shared by the pages and the inline validation) ----------------------------


def _inline(form, form_name: str):
    form.enable_inline_validation(
        lambda name: url_for("households.validate_field", form_name=form_name, champ=name)
    )
    return form


def household_form(household=None) -> HouseholdForm:
    return _inline(HouseholdForm(obj=household), "foyer")


def member_form(role: str, membership=None):
    obj = membership.person if membership is not None else None
    data = {}
    if membership is not None:
        data = {name: getattr(membership, name) for name in rules.MEMBERSHIP_FIELDS}
    form = MEMBER_FORMS[role](obj=obj, data=data)
    if isinstance(form, ChildForm):
        form.set_schools(rules.active_schools(keep_id=getattr(obj, "school_id", None)))
    slug = {v: k for k, v in rules.ROLE_SLUGS.items()}[role]
    return _inline(form, slug)


def invite_form() -> InviteForm:
    form = InviteForm()
    form.set_people(rules.adults_without_account(current_user.household_id))
    form.email.description = (
        f"Un lien valable {rules.invitation_max_age().days} jours lui permettra "
        "de créer son propre espace."
    )
    return _inline(form, "invitation")


FORM_BUILDERS = {
    "foyer": household_form,
    "adulte": lambda: member_form("adult"),
    "enfant": lambda: member_form("child"),
    "contact": lambda: member_form("contact"),
    "invitation": invite_form,
}


def _membership_or_404(person_id: int):
    membership = rules.active_membership(current_user.household_id, person_id)
    if membership is None:
        abort(404)
    return membership


def _status(form) -> int:
    return 422 if form.is_submitted() else 200


# --- Pages -----------------------------------------------------------------------------------


@bp.get("/mon-foyer")
@parent_required
def index():
    page = rules.household_page(current_user.household_id)
    if page is None:
        abort(404)
    return render(
        "households/index.html",
        page=page,
        diets=rules.DIETS,
        just_checked=False,
        qf=quotient.quotient_status(page.household.id, today_in_paris(), page.household),
    )


@bp.post("/mon-foyer/etat-civil-verifie")
@parent_required
def confirm_civil_status():
    household = db.get_or_404(Household, current_user.household_id)
    ops.confirm_civil_status(household, actor=current_user)
    db.session.commit()
    if is_htmx_fragment_request():
        page = rules.household_page(household.id)
        return render(
            "households/index.html",
            block="civil_status",
            page=page,
            diets=rules.DIETS,
            just_checked=True,
        )
    flash("Merci : l'état civil de votre foyer est marqué comme vérifié.", "success")
    return redirect(url_for("households.index", _anchor="etat-civil"), 303)


@bp.route("/mon-foyer/modifier", methods=["GET", "POST"])
@parent_required
def edit_household():
    household = db.get_or_404(Household, current_user.household_id)
    form = household_form(household)
    if form.validate_on_submit():
        changed = ops.update_household(
            household, form.model_data(rules.HOUSEHOLD_FIELDS), actor=current_user
        )
        db.session.commit()
        flash(
            "Les informations du foyer sont enregistrées." if changed else "Aucune modification.",
            "success",
        )
        return redirect(url_for("households.index"), 303)
    return render("households/household_form.html", form=form, status=_status(form))


@bp.route("/mon-foyer/quotient", methods=["GET", "POST"])
@parent_required
def declare_quotient():
    """The family declares its QF with the attestation: a request, not a change of price."""
    from citoyens.documents.operations import discard_file
    from citoyens.documents.uploads import UploadError, check_upload, read_limited

    household_id = current_user.household_id
    form = QuotientDeclarationForm()
    error = None
    if form.validate_on_submit():
        upload = form.attestation.data
        try:
            checked = check_upload(read_limited(upload.stream), upload.filename)
            request_ = quotient.declare_family_quotient(
                household_id, form.family_quotient.data, checked, actor=current_user
            )
        except UploadError as exc:
            form.attestation.errors.append(str(exc))
        except quotient.QuotientError as exc:
            db.session.rollback()
            error = str(exc)
        else:
            attestation = request_.document
            try:
                db.session.commit()
            except BaseException:
                db.session.rollback()
                discard_file(attestation)
                raise
            flash(
                f"Votre quotient familial de {form.family_quotient.data} € est envoyé avec son "
                "attestation. Il s'appliquera à vos factures une fois vérifié par les services ; "
                "suivez la demande dans « Demandes ».",
                "success",
            )
            return redirect(url_for("households.index", _anchor="quotient"), 303)
    return render(
        "households/quotient_form.html",
        form=form,
        error=error,
        qf=quotient.quotient_status(household_id, today_in_paris()),
        status=422 if form.is_submitted() else 200,
    )


@bp.route("/mon-foyer/ajouter/<role_slug>", methods=["GET", "POST"])
@parent_required
def add_member(role_slug: str):
    role = rules.ROLE_SLUGS.get(role_slug)
    if role is None:
        abort(404)
    form = member_form(role)
    if form.validate_on_submit():
        membership = ops.add_member(
            current_user.household_id,
            role,
            form.model_data(rules.EDITABLE_FIELDS[role]),
            actor=current_user,
        )
        db.session.commit()
        flash(f"{membership.person.full_name} fait maintenant partie de votre foyer.", "success")
        return redirect(url_for("households.index", _anchor=f"membre-{membership.person_id}"), 303)
    return render(
        "households/member_form.html",
        form=form,
        role=role,
        membership=None,
        title=ROLE_TITLES[role][0],
        action=url_for("households.add_member", role_slug=role_slug),
        status=_status(form),
    )


@bp.route("/mon-foyer/membres/<int:person_id>/modifier", methods=["GET", "POST"])
@parent_required
def edit_member(person_id: int):
    membership = _membership_or_404(person_id)
    form = member_form(membership.role, membership)
    if form.validate_on_submit():
        changed = ops.update_member(
            membership, form.model_data(rules.EDITABLE_FIELDS[membership.role]), actor=current_user
        )
        db.session.commit()
        flash(
            f"Les informations de {membership.person.full_name} sont enregistrées."
            if changed
            else "Aucune modification.",
            "success",
        )
        return redirect(url_for("households.index", _anchor=f"membre-{person_id}"), 303)
    return render(
        "households/member_form.html",
        form=form,
        role=membership.role,
        membership=membership,
        title=ROLE_TITLES[membership.role][1],
        action=url_for("households.edit_member", person_id=person_id),
        status=_status(form),
    )


@bp.post("/mon-foyer/valider/<form_name>")
@parent_required
def validate_field(form_name: str):
    """htmx inline validation: validate the posted form, answer the one field's block."""
    builder = FORM_BUILDERS.get(form_name)
    if builder is None:
        abort(404)
    form = builder()
    name = request.args.get("champ", "")
    if name not in form or form[name].type in INLINE_SKIPPED_TYPES:
        abort(404)
    form.validate()
    return render("households/_field.html", field=form[name])


@bp.route("/mon-foyer/membres/<int:person_id>/retrait", methods=["GET", "POST"])
@parent_required
def request_removal(person_id: int):
    membership = _membership_or_404(person_id)
    form = RemovalForm()
    error = None
    if form.validate_on_submit():
        try:
            ops.request_removal(membership, actor=current_user, reason=form.reason.data or None)
        except ops.HouseholdError as exc:
            error = str(exc)
        else:
            db.session.commit()
            flash(
                f"Votre demande de retrait de {membership.person.full_name} est envoyée. "
                "Les services vous répondront par e-mail ; suivez-la dans « Demandes ».",
                "success",
            )
            return redirect(url_for("households.index"), 303)
    return render(
        "households/removal_form.html",
        form=form,
        membership=membership,
        error=error,
        is_self=membership.person_id == current_user.person_id,
        status=422 if form.is_submitted() else 200,
    )


@bp.route("/mon-foyer/inviter", methods=["GET", "POST"])
@parent_required
@invite_limit
def invite():
    form = invite_form()
    error = None
    if form.validate_on_submit():
        try:
            invitation = invitations.invite_adult(
                current_user.household_id,
                form.email.data,
                actor=current_user,
                person_id=form.person_id.data,
                first_name=form.first_name.data,
                last_name=form.last_name.data,
            )
        except ops.HouseholdError as exc:
            db.session.commit()  # keeps the audit of a refused invitation, nothing else
            error = str(exc)
        else:
            db.session.commit()
            flash(
                f"Invitation envoyée à {invitation.email}. Le lien est valable "
                f"{rules.invitation_max_age().days} jours.",
                "success",
            )
            return redirect(url_for("households.index", _anchor="responsables"), 303)
    return render(
        "households/invite.html",
        form=form,
        error=error,
        invitations=rules.open_invitations(current_user.household_id),
        status=422 if form.is_submitted() else 200,
    )


@bp.route("/invitation/<token>", methods=["GET", "POST"])
@accept_limit
def accept_invitation(token: str):
    """Public: the signed link is the credential. GET shows the form; only POST acts."""
    invitation = invitations.invitation_for_token(token)
    if invitation is None:
        return render("households/accept_invitation.html", invalid=True, status=404)
    if current_user.is_authenticated:
        return render("households/accept_invitation.html", invitation=invitation, other=True)
    form = AcceptInvitationForm(email=invitation.email)
    if form.validate_on_submit():
        try:
            invitations.accept_invitation(invitation, form.password.data)
            db.session.commit()
        except (ops.HouseholdError, IntegrityError):
            db.session.rollback()
            return render("households/accept_invitation.html", invalid=True, status=404)
        flash(
            "Votre espace est créé. Connectez-vous avec votre adresse e-mail "
            "et votre mot de passe.",
            "success",
        )
        return redirect(url_for("accounts.login"), 303)
    person = db.session.get(Person, invitation.person_id)
    return render(
        "households/accept_invitation.html",
        invitation=invitation,
        person=person,
        form=form,
        status=_status(form),
    )
