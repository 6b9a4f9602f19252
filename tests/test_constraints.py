"""Rules the database itself enforces, whatever the code above it does."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from citoyens.extensions import db
from citoyens.households import operations as household_ops
from citoyens.households import rules as household_rules
from citoyens.households.models import HouseholdMember
from citoyens.requests.operations import open_request
from tests.documents_factories import make_document, make_type
from tests.factories import make_user
from tests.households_factories import add_member


def test_only_one_current_document_per_type_and_person(app, parent):
    child_type = make_type(app, scope="child")
    household_type = make_type(app, scope="household")
    child = add_member(app, parent.household_id, "child", first_name="Zoé")
    make_document(app, household_id=parent.household_id, type_id=child_type, person_id=child)
    make_document(app, household_id=parent.household_id, type_id=household_type)
    with pytest.raises(IntegrityError):
        make_document(app, household_id=parent.household_id, type_id=child_type, person_id=child)
    with pytest.raises(IntegrityError):  # household documents (no person) count too
        make_document(app, household_id=parent.household_id, type_id=household_type)


def test_one_open_removal_request_per_person_even_if_the_check_is_raced(app, parent, monkeypatch):
    child = add_member(app, parent.household_id, "child", first_name="Zoé")
    with app.test_request_context():
        from citoyens.accounts.models import User

        user = db.session.get(User, parent.id)
        open_request(
            "member_removal", parent.household_id, "Retirer Zoé", actor=user, person_id=child
        )
        db.session.commit()
        # Two parents pressing at the same instant both pass the Python check...
        monkeypatch.setattr(household_rules, "open_removal_request", lambda *a: None)
        membership = db.session.scalar(
            db.select(HouseholdMember).where(HouseholdMember.person_id == child)
        )
        # ...the database refuses the second, and the family reads why.
        with pytest.raises(household_ops.HouseholdError, match="déjà en cours"):
            household_ops.request_removal(membership, actor=user)


def test_a_closed_removal_request_does_not_block_a_new_one(app):
    account = make_user(app, children=0)
    child = add_member(app, account.household_id, "child", first_name="Zoé")
    with app.test_request_context():
        from citoyens.accounts.models import User
        from citoyens.requests.operations import change_status

        user = db.session.get(User, account.id)
        first = open_request(
            "member_removal", account.household_id, "Retirer Zoé", actor=user, person_id=child
        )
        change_status(first, "cancelled", actor=user)
        open_request(
            "member_removal", account.household_id, "Retirer Zoé", actor=user, person_id=child
        )
        db.session.commit()
