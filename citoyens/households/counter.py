"""A family created by staff, on the phone or at the counter: the household, its first
responsible adult, optionally a first child, and optionally a parent account without a
password (activated through « Mot de passe oublié », as imported families are).

Same fields and validation as the family's own pages (the forms of households.forms),
the same verbs (`add_member`), and every step in the household's history with the agent
as actor. Flushes; the caller commits.
"""

from __future__ import annotations

from citoyens import audit
from citoyens.extensions import db
from citoyens.households import rules
from citoyens.households.models import Household
from citoyens.households.operations import HouseholdError, add_member, record_change

ACCOUNT_EXISTS = (
    "Un espace famille existe déjà avec l'adresse {email} : cherchez cette famille "
    "plutôt que d'en créer une autre, ou décochez « Créer son espace »."
)


def create_household(
    household_data: dict,
    adult_data: dict,
    child_data: dict | None = None,
    *,
    actor,
    open_account: bool = False,
) -> Household:
    """Create the household with its first adult (and child); raise HouseholdError when an
    account is asked for an address that already has one (nothing is written then)."""
    from citoyens.accounts.models import User
    from citoyens.accounts.operations import find_user, normalize_email

    email = normalize_email(adult_data.get("email") or "") or None
    if open_account:
        if not email:
            raise HouseholdError(
                "Indiquez l'adresse e-mail du responsable pour lui créer son espace."
            )
        if find_user(email) is not None:
            raise HouseholdError(ACCOUNT_EXISTS.format(email=email))
    household = Household(
        **{
            name: household_data.get(name)
            for name in rules.HOUSEHOLD_FIELDS
            if name in household_data
        }
    )
    db.session.add(household)
    db.session.flush()
    given = [name for name in rules.HOUSEHOLD_FIELDS if household_data.get(name) not in (None, "")]
    record_change(household.id, "created", actor=actor, fields=given)
    adult = add_member(household.id, "adult", adult_data, actor=actor).person
    if child_data:
        add_member(household.id, "child", child_data, actor=actor)
    if open_account:
        user = User(
            email=email,
            password_hash=None,  # set by the family through the forgotten-password link
            role="parent",
            first_name=adult.first_name,
            last_name=adult.last_name,
            household_id=household.id,
            person_id=adult.id,
        )
        db.session.add(user)
        db.session.flush()
        record_change(household.id, "account_opened", actor=actor, person_id=adult.id)
        audit.record("account.created-by-staff", actor=actor, target=f"user:{user.id}")
    audit.record("household.created", actor=actor, target=f"household:{household.id}")
    db.session.flush()
    return household
