"""Demo data of the households domain, called by citoyens.demo.seed (idempotent).

Neutral school names (no real school is named), @example.org addresses only, and
phone numbers that are either libphonenumber's own example (06 12 34 56 78) or in
the 02 61 91 xx xx block ARCEP reserves for fiction.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.services.models import School

DEMO_REF = "DEMO-0001"
NURSERY = "École maternelle publique"
ELEMENTARY = "École élémentaire publique"
PRIVATE = "École privée Saint-Joseph"

DEMO_SCHOOLS = [
    (NURSERY, "public", None),
    (ELEMENTARY, "public", None),
    (PRIVATE, "private", "Secrétariat de l'OGEC Saint-Joseph, ogec@example.org"),
]

HOUSEHOLD_DETAILS = {
    "address_line": "12 rue de l'Exemple",
    "postcode": "49290",
    "city": "Chalonnes-sur-Loire",
    "family_quotient": 850,
}
ADULT_DETAILS = {
    "civility": "Mme",
    "email": "parent@example.org",
    "mobile_phone": "+33612345678",
    "work_phone": "+33261910001",
}


def seed_schools() -> int:
    existing = set(db.session.scalars(select(School.name)))
    created = 0
    for name, kind, canteen_contact in DEMO_SCHOOLS:
        if name not in existing:
            db.session.add(
                School(name=name, kind=kind, canteen_contact=canteen_contact, active=True)
            )
            created += 1
    db.session.flush()
    return created


def _fill(target, values: dict) -> None:
    """Set only what is still empty: a family's own corrections are never overwritten."""
    for name, value in values.items():
        if getattr(target, name) is None:
            setattr(target, name, value)


def seed_demo() -> int:
    """Create what is missing; return how many records were added."""
    created = seed_schools()
    household = db.session.scalar(select(Household).where(Household.external_ref == DEMO_REF))
    if household is None:
        return created
    schools = {s.name: s for s in db.session.scalars(select(School))}
    _fill(household, HOUSEHOLD_DETAILS)
    members = {
        (m.role, m.person.first_name): m
        for m in db.session.scalars(
            select(HouseholdMember).where(
                HouseholdMember.household_id == household.id, HouseholdMember.left_at.is_(None)
            )
        )
    }
    for (role, _first_name), member in members.items():
        if role == "adult":
            _fill(member.person, ADULT_DETAILS)
            break
    children = {
        "Léa": (date(2017, 9, 3), "F", ELEMENTARY, "CE1"),
        "Hugo": (date(2020, 2, 21), "M", NURSERY, "MS"),
    }
    for first_name, (birth_date, sex, school, level) in children.items():
        member = members.get(("child", first_name))
        if member is None:
            person = Person(first_name=first_name, last_name="Martin")
            db.session.add(HouseholdMember(household=household, person=person, role="child"))
            created += 2
        else:
            person = member.person
        _fill(
            person,
            {
                "birth_date": birth_date,
                "sex": sex,
                "school_id": schools[school].id,
                "class_level": level,
            },
        )
    if ("contact", "Mamie") not in members:
        db.session.add(
            HouseholdMember(
                household=household,
                person=Person(first_name="Mamie", last_name="Martin", home_phone="+33261910002"),
                role="contact",
                relationship_label="Grand-mère",
                can_pick_up=True,
                emergency_contact=True,
            )
        )
        created += 2
    db.session.flush()
    return created
