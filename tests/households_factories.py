"""Factories for the household tests: each commits in its own app context and returns ids."""

from __future__ import annotations

import itertools
from datetime import date

from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.core.models import AuditEvent, Commune
from citoyens.extensions import db
from citoyens.households.models import (
    Household,
    HouseholdChange,
    HouseholdMember,
    Invitation,
    Person,
)
from citoyens.requests.models import Request
from citoyens.services.models import School

_counter = itertools.count(1)

TOWN_HALL = "mairie-tests@example.org"


def add_member(app, household_id: int, role: str = "child", **fields) -> int:
    """Add a person to the household with the given role; return the person's id."""
    membership_fields = {
        key: fields.pop(key)
        for key in ("relationship_label", "can_pick_up", "emergency_contact", "left_at")
        if key in fields
    }
    n = next(_counter)
    fields.setdefault("first_name", f"Membre{n}")
    fields.setdefault("last_name", "Test")
    if role == "child":
        fields.setdefault("birth_date", date(2018, 5, 4))
    with app.app_context():
        person = Person(**fields)
        db.session.add(
            HouseholdMember(
                household_id=household_id, person=person, role=role, **membership_fields
            )
        )
        db.session.commit()
        return person.id


def share_person(app, person_id: int, household_id: int, role: str = "child") -> None:
    """Make an existing person a member of another household too (separated parents)."""
    with app.app_context():
        db.session.add(HouseholdMember(household_id=household_id, person_id=person_id, role=role))
        db.session.commit()


def make_school(app, name: str | None = None, kind: str = "public", active: bool = True) -> int:
    with app.app_context():
        school = School(name=name or f"École test {next(_counter)}", kind=kind, active=active)
        db.session.add(school)
        db.session.commit()
        return school.id


def make_commune(app, contact_email: str = TOWN_HALL) -> None:
    """The town hall whose address receives requests when a family uses no service yet."""
    with app.app_context():
        commune = db.session.scalar(select(Commune).limit(1))
        if commune is None:
            db.session.add(Commune(name="Chalonnes-sur-Loire", contact_email=contact_email))
        else:
            commune.contact_email = contact_email
        db.session.commit()


def person_ids(app, household_id: int, role: str | None = None) -> list[int]:
    with app.app_context():
        query = select(HouseholdMember.person_id).where(
            HouseholdMember.household_id == household_id
        )
        if role:
            query = query.where(HouseholdMember.role == role)
        return list(db.session.scalars(query.order_by(HouseholdMember.id)))


def account_person_id(app, user_id: int) -> int:
    with app.app_context():
        return db.session.get(User, user_id).person_id


def counts(app) -> dict[str, int]:
    """Row counts of everything a household form may write."""
    models = {
        "people": Person,
        "members": HouseholdMember,
        "changes": HouseholdChange,
        "households": Household,
        "invitations": Invitation,
        "requests": Request,
        "users": User,
    }
    with app.app_context():
        return {
            name: db.session.scalar(select(func.count()).select_from(model))
            for name, model in models.items()
        }


def changes(app, household_id: int) -> list[tuple[str, str | None, int | None, int | None]]:
    """(action, fields, person_id, actor_id) of the household's history, oldest first."""
    with app.app_context():
        return [
            (c.action, c.fields, c.person_id, c.actor_id)
            for c in db.session.scalars(
                select(HouseholdChange)
                .where(HouseholdChange.household_id == household_id)
                .order_by(HouseholdChange.id)
            )
        ]


def history_text(app) -> str:
    """Everything written in the change history and the audit trail, as one string."""
    with app.app_context():
        rows = db.session.execute(select(HouseholdChange.fields, HouseholdChange.action)).all()
        audit = db.session.scalars(select(AuditEvent.details)).all()
    return " ".join(str(v) for row in rows for v in row) + " " + " ".join(map(str, audit))
