"""Back office: the schools children attend, managed by administrators (issue 3).

Every route sits on the admin blueprint (staff only) and adds `admin_required`:
an agent gets 403. A school is never deleted: deactivated, it is no longer
offered in the child form, and the children who attend it keep it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, redirect, url_for
from flask_login import current_user
from sqlalchemy import func, select

from citoyens import audit
from citoyens.accounts.decorators import admin_required
from citoyens.admin.blueprint import bp
from citoyens.extensions import db
from citoyens.households.models import HouseholdMember, Person
from citoyens.services.models import SCHOOL_KINDS, School
from citoyens.services.school_forms import SCHOOL_FIELDS, ActivationForm, SchoolForm
from citoyens.web import render

# Ids beyond a 32-bit integer would make PostgreSQL fail instead of answering 404.
MAX_ID = 2**31 - 1


@dataclass
class SchoolRow:
    school: School
    children: int


# --- Rules and operations (they flush and log; the view commits) -----------------------------


def schools_with_children() -> list[SchoolRow]:
    """Every school, active first, with the number of children currently in a household there.

    One statement: the counts come from a grouped subquery joined to the schools.
    """
    counts = (
        select(Person.school_id, func.count(func.distinct(Person.id)).label("children"))
        .join(HouseholdMember, HouseholdMember.person_id == Person.id)
        .where(
            Person.school_id.is_not(None),
            HouseholdMember.role == "child",
            HouseholdMember.left_at.is_(None),
        )
        .group_by(Person.school_id)
        .subquery()
    )
    rows = db.session.execute(
        select(School, func.coalesce(counts.c.children, 0))
        .outerjoin(counts, counts.c.school_id == School.id)
        .order_by(School.active.desc(), School.name)
    )
    return [SchoolRow(school, children) for school, children in rows]


def create_school(*, actor, **values) -> School:
    school = School(active=True, **{k: values[k] for k in SCHOOL_FIELDS})
    db.session.add(school)
    db.session.flush()
    audit.record("school.created", actor=actor, target=f"school:{school.id}")
    return school


def update_school(school: School, *, actor, **values) -> list[str]:
    """Change a school; returns the names of the fields that changed (nothing logged if none)."""
    changed = [k for k in SCHOOL_FIELDS if getattr(school, k) != values[k]]
    for key in changed:
        setattr(school, key, values[key])
    if changed:
        db.session.flush()
        audit.record(
            "school.updated", actor=actor, target=f"school:{school.id}", details=",".join(changed)
        )
    return changed


def set_school_active(school: School, active: bool, *, actor) -> bool:
    """Offer a school in the child form again, or no more. Returns whether anything changed."""
    if school.active == active:
        return False
    school.active = active
    db.session.flush()
    audit.record(
        "school.activated" if active else "school.deactivated",
        actor=actor,
        target=f"school:{school.id}",
    )
    return True


# --- Views -------------------------------------------------------------------------------


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
