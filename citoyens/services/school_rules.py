"""Schools children attend: the list with children counts, and the changes administrators make.

The changes flush and write the audit log; the caller commits. No request here.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from citoyens import audit
from citoyens.extensions import db
from citoyens.households.models import HouseholdMember, Person
from citoyens.services.models import School

SCHOOL_FIELDS = ("name", "kind", "address", "canteen_contact")


@dataclass
class SchoolRow:
    school: School
    children: int


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
