"""Household rules: what a family, or staff, sees of a household. Reads only, no request.

Every function here runs a fixed number of queries, whatever the size of the
household: the pages that call them stay fast for a family of ten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app, has_app_context
from sqlalchemy import exists, select
from sqlalchemy.orm import joinedload

from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.households.models import (
    Household,
    HouseholdMember,
    Invitation,
    Person,
)

# URL slug (French) → role.
ROLE_SLUGS = {"adulte": "adult", "enfant": "child", "contact": "contact"}
ROLE_LABELS = {"adult": "Responsable", "child": "Enfant", "contact": "Autre contact"}

# Stored code → label; "aucun" is stored as NULL.
DIETS = {
    "": "Aucun régime particulier",
    "sans-porc": "Sans porc",
    "sans-viande": "Sans viande",
    "vegetarien": "Végétarien",
    "autre": "Autre (précisez dans « Allergies et précisions »)",
}
SEXES = {"F": "Fille", "M": "Garçon"}
CIVILITIES = {"M.": "M.", "Mme": "Mme"}

# What a family may set on its household. Not the quotient familial: a family declares it
# with its attestation and staff accept it (households.quotient).
HOUSEHOLD_FIELDS = (
    "address_line",
    "address_extra",
    "postcode",
    "city",
    "paperless_invoices",
)
# Fields of the membership (per household), not of the person.
MEMBERSHIP_FIELDS = frozenset({"relationship_label", "can_pick_up", "emergency_contact"})
# What a family may set on each kind of member; anything else posted is ignored.
EDITABLE_FIELDS = {
    "adult": (
        "civility",
        "first_name",
        "last_name",
        "birth_date",
        "email",
        "mobile_phone",
        "home_phone",
        "work_phone",
        "address_line",
        "postcode",
        "city",
    ),
    "child": (
        "first_name",
        "last_name",
        "birth_date",
        "sex",
        "school_id",
        "class_level",
        "allergies",
        "diet",
        "pai",
        "doctor_name",
        "doctor_phone",
        "image_rights",
        "outing_consent",
    ),
    "contact": (
        "first_name",
        "last_name",
        "relationship_label",
        "mobile_phone",
        "home_phone",
        "can_pick_up",
        "emergency_contact",
    ),
}

# French names of the fields, for the history staff read.
FIELD_LABELS = {
    "address_line": "adresse",
    "address_extra": "complément d'adresse",
    "postcode": "code postal",
    "city": "commune",
    "family_quotient": "quotient familial",
    "paperless_invoices": "facture en ligne",
    "civility": "civilité",
    "first_name": "prénom",
    "last_name": "nom",
    "birth_date": "date de naissance",
    "sex": "sexe",
    "email": "e-mail",
    "mobile_phone": "téléphone portable",
    "home_phone": "téléphone fixe",
    "work_phone": "téléphone professionnel",
    "school_id": "école",
    "class_level": "classe",
    "allergies": "allergies",
    "diet": "régime alimentaire",
    "pai": "PAI",
    "doctor_name": "médecin",
    "doctor_phone": "téléphone du médecin",
    "image_rights": "droit à l'image",
    "outing_consent": "autorisation de sortie",
    "relationship_label": "lien avec la famille",
    "can_pick_up": "autorisé à venir chercher",
    "emergency_contact": "à prévenir en cas d'urgence",
}
ACTION_LABELS = {
    "created": "Ajout",
    "updated": "Modification",
    "civil_status_checked": "État civil vérifié",
    "removal_requested": "Demande de retrait",
    "removed": "Retrait du foyer",
    "invited": "Invitation envoyée",
    "joined": "Espace créé sur invitation",
    "account_opened": "Espace créé par les services (à activer par « Mot de passe oublié »)",
    "quotient_declared": "Quotient familial déclaré (en attente de vérification)",
    "quotient_accepted": "Quotient familial déclaré accepté",
    "quotient_refused": "Quotient familial déclaré refusé",
    "quotient_withdrawn": "Déclaration de quotient familial annulée",
}

MAX_OPEN_INVITATIONS = 5


def field_labels(fields: str | None) -> str:
    """ "first_name,allergies" → "prénom, allergies"."""
    names = [name for name in (fields or "").split(",") if name]
    return ", ".join(FIELD_LABELS.get(name, name) for name in names)


def invitation_max_age() -> timedelta:
    default = timedelta(days=7)
    if not has_app_context():
        return default
    return current_app.config.get("INVITATION_TOKEN_MAX_AGE", default)


def has_phone(person: Person) -> bool:
    return bool(person.mobile_phone or person.home_phone or person.work_phone)


def _active_members(household_id: int):
    return (
        select(HouseholdMember)
        .options(joinedload(HouseholdMember.person).joinedload(Person.school))
        .where(HouseholdMember.household_id == household_id, HouseholdMember.left_at.is_(None))
        .order_by(HouseholdMember.id)
    )


@dataclass
class HouseholdOverview:
    adults: list = field(default_factory=list)
    children: list = field(default_factory=list)
    contacts: list = field(default_factory=list)


def household_overview(household_id: int) -> HouseholdOverview:
    """The household's current members (people) grouped by role, in one query."""
    return _overview(db.session.scalars(_active_members(household_id)).unique())


def _overview(members) -> HouseholdOverview:
    overview = HouseholdOverview()
    groups = {"adult": overview.adults, "child": overview.children, "contact": overview.contacts}
    for member in members:
        groups[member.role].append(member.person)
    return overview


def overview_and_checklist(household_id: int) -> tuple[HouseholdOverview, dict]:
    """`household_overview` and `checklist` together (the dashboard): the members are
    read once. Two queries."""
    household = db.session.get(Household, household_id)
    members = db.session.scalars(_active_members(household_id)).unique().all()
    return _overview(members), _checklist(household, members)


@dataclass
class HouseholdPage:
    """Everything the "Mon foyer" page shows; memberships, so per-household flags come along."""

    household: Household
    adults: list[HouseholdMember] = field(default_factory=list)
    children: list[HouseholdMember] = field(default_factory=list)
    contacts: list[HouseholdMember] = field(default_factory=list)
    account_person_ids: set[int] = field(default_factory=set)
    pending_removals: set[int] = field(default_factory=set)
    invitations: list[Invitation] = field(default_factory=list)
    checklist: dict = field(default_factory=dict)


def household_page(household_id: int) -> HouseholdPage | None:
    """The household with its current members, accounts, pending removals and invitations.

    Five queries whatever the number of members.
    """
    from citoyens.accounts.models import User
    from citoyens.requests.models import OPEN_STATUSES, Request

    household = db.session.get(Household, household_id)
    if household is None:
        return None
    page = HouseholdPage(household=household)
    groups = {"adult": page.adults, "child": page.children, "contact": page.contacts}
    members = db.session.scalars(_active_members(household_id)).unique().all()
    for member in members:
        groups[member.role].append(member)
    page.checklist = _checklist(household, members)
    page.account_person_ids = set(
        db.session.scalars(
            select(User.person_id).where(
                User.household_id == household_id, User.person_id.is_not(None)
            )
        )
    )
    page.pending_removals = set(
        db.session.scalars(
            select(Request.person_id).where(
                Request.household_id == household_id,
                Request.kind == "member_removal",
                Request.status.in_(OPEN_STATUSES),
            )
        )
    )
    page.invitations = open_invitations(household_id)
    return page


def active_membership(household_id: int, person_id: int) -> HouseholdMember | None:
    """The person's current membership in this household: the only way to reach a person."""
    return db.session.scalar(
        select(HouseholdMember)
        .options(joinedload(HouseholdMember.person))
        .where(
            HouseholdMember.household_id == household_id,
            HouseholdMember.person_id == person_id,
            HouseholdMember.left_at.is_(None),
        )
    )


def open_removal_request(household_id: int, person_id: int):
    from citoyens.requests.models import OPEN_STATUSES, Request

    return db.session.scalar(
        select(Request).where(
            Request.household_id == household_id,
            Request.person_id == person_id,
            Request.kind == "member_removal",
            Request.status.in_(OPEN_STATUSES),
        )
    )


def open_invitations(household_id: int) -> list[Invitation]:
    """Invitations neither accepted nor expired, newest first."""
    since = utcnow() - invitation_max_age()
    return list(
        db.session.scalars(
            select(Invitation)
            .where(
                Invitation.household_id == household_id,
                Invitation.accepted_at.is_(None),
                Invitation.created_at > since,
            )
            .order_by(Invitation.id.desc())
        )
    )


def is_open(invitation: Invitation, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return invitation.accepted_at is None and invitation.created_at > now - invitation_max_age()


def adults_without_account(household_id: int) -> list[Person]:
    """Current adults of the household who have no account yet: they may be invited."""
    from citoyens.accounts.models import User

    return list(
        db.session.scalars(
            select(Person)
            .join(HouseholdMember, HouseholdMember.person_id == Person.id)
            .where(
                HouseholdMember.household_id == household_id,
                HouseholdMember.role == "adult",
                HouseholdMember.left_at.is_(None),
                ~exists(select(User.id).where(User.person_id == Person.id)),
            )
            .order_by(Person.id)
        )
    )


def active_schools(keep_id: int | None = None):
    """Schools offered in the child form: the active ones, plus the child's own school
    if it was deactivated since (so saving the child does not silently drop it)."""
    from citoyens.services.models import School

    offered = School.active.is_(True)
    if keep_id is not None:
        offered = offered | (School.id == keep_id)
    return list(db.session.scalars(select(School).where(offered).order_by(School.name)))


def checklist(household_id: int) -> dict:
    """What a new family should check first, as booleans.

    - civil_status_checked: a parent said "J'ai vérifié l'état civil";
    - entourage_complete: an adult can be phoned, and someone else can be called in an
      emergency (an emergency contact with a phone, or a second adult).
    """
    household = db.session.get(Household, household_id)
    members = db.session.scalars(_active_members(household_id)).unique().all()
    return _checklist(household, members)


def _checklist(household: Household | None, members: list[HouseholdMember]) -> dict:
    adults = [m for m in members if m.role == "adult"]
    reachable_adult = any(has_phone(m.person) for m in adults)
    backup = len(adults) >= 2 or any(
        m.emergency_contact and has_phone(m.person) for m in members if m.role != "adult"
    )
    return {
        "civil_status_checked": bool(household and household.civil_status_checked_at),
        "entourage_complete": reachable_adult and backup,
    }
