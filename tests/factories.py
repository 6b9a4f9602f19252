"""Test data factories: each call makes what it needs and returns plain values.

They commit inside their own app context (the test's outer transaction still
rolls everything back), so no app context stays pushed while the test client
makes requests (Flask would share `g`, and the logged-in user, across them).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

from citoyens.accounts.models import User
from citoyens.accounts.passwords import hash_password
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person

PASSWORD = "une phrase de passe assez longue"
_counter = itertools.count(1)


@dataclass
class Account:
    id: int
    email: str
    password: str
    household_id: int | None
    role: str


def make_user(
    app,
    *,
    role: str = "parent",
    email: str | None = None,
    password: str | None = PASSWORD,
    confirmed: bool = True,
    children: int = 0,
    active: bool = True,
) -> Account:
    n = next(_counter)
    email = email or f"{role}{n}@example.org"
    with app.app_context():
        household = None
        person = None
        if role == "parent":
            household = Household()
            person = Person(first_name=f"Parent{n}", last_name="Test")
            household.memberships.append(HouseholdMember(person=person, role="adult"))
            for i in range(children):
                child = Person(
                    first_name=f"Enfant{i}", last_name="Test", birth_date=date(2018, 1, 1)
                )
                household.memberships.append(HouseholdMember(person=child, role="child"))
        user = User(
            email=email,
            password_hash=hash_password(password) if password else None,
            role=role,
            first_name=f"Prénom{n}",
            last_name="Test",
            household=household,
            person=person,
            confirmed_at=utcnow() if confirmed else None,
            active=active,
        )
        db.session.add(user)
        db.session.commit()
        return Account(user.id, email, password, user.household_id, role)
