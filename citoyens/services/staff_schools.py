"""Back office: the schools children attend, managed by administrators (issue 3).

Every route sits on the admin blueprint (staff only) and adds `admin_required`:
an agent gets 403. A school is never deleted: deactivated, it is no longer
offered in the child form, and the children who attend it keep it.
"""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp
from citoyens.extensions import db
from citoyens.services.models import SCHOOL_KINDS, School
from citoyens.services.school_forms import ActivationForm, SchoolForm
from citoyens.services.school_rules import (
    create_school,
    schools_with_children,
    set_school_active,
    update_school,
)
from citoyens.web import render

# Ids beyond a 32-bit integer would make PostgreSQL fail instead of answering 404.
MAX_ID = 2**31 - 1


def _school_or_404(school_id: int) -> School:
    school = db.session.get(School, school_id) if school_id <= MAX_ID else None
    if school is None:
        abort(404)
    return school


def _form_page(form: SchoolForm, school: School | None):
    status = 422 if form.is_submitted() else 200
    return render("admin/schools/form.html", form=form, school=school, status=status)


@bp.get("/ecoles")
@admin_required
def schools():
    return render(
        "admin/schools/index.html",
        rows=schools_with_children(),
        kinds=SCHOOL_KINDS,
    )


@bp.route("/ecoles/nouvelle", methods=["GET", "POST"])
@admin_required
def schools_new():
    form = SchoolForm()
    if form.validate_on_submit():
        school = create_school(actor=current_user, **form.values())
        db.session.commit()
        flash(f"École « {school.name} » ajoutée.", "success")
        return redirect(url_for("admin.schools"), 303)
    return _form_page(form, None)


@bp.route("/ecoles/<int:school_id>/modifier", methods=["GET", "POST"])
@admin_required
def schools_edit(school_id: int):
    school = _school_or_404(school_id)
    form = SchoolForm(obj=school, school_id=school.id)
    if form.validate_on_submit():
        changed = update_school(school, actor=current_user, **form.values())
        db.session.commit()
        flash(
            f"École « {school.name} » enregistrée." if changed else "Aucune modification.",
            "success",
        )
        return redirect(url_for("admin.schools"), 303)
    return _form_page(form, school)


@bp.post("/ecoles/<int:school_id>/activation")
@admin_required
def schools_toggle(school_id: int):
    """Deactivate (no longer offered to families) or reactivate a school; nothing is deleted."""
    school = _school_or_404(school_id)
    form = ActivationForm()
    if not form.validate():
        abort(400)
    set_school_active(school, form.active.data == "1", actor=current_user)
    db.session.commit()
    flash(
        f"« {school.name} » "
        + (
            "est de nouveau proposée aux familles."
            if school.active
            else "n'est plus proposée aux familles ; les enfants qui y sont inscrits la gardent."
        ),
        "success",
    )
    return redirect(url_for("admin.schools"), 303)
