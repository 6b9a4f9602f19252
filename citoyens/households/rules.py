"""Household rules: what the family sees of its household."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from citoyens.extensions import db
from citoyens.households.models import HouseholdMember


@dataclass
class HouseholdOverview:
    adults: list = field(default_factory=list)
    children: list = field(default_factory=list)
    contacts: list = field(default_factory=list)


def household_overview(household_id: int) -> HouseholdOverview:
    """The household's members grouped by role, in one query."""
    members = db.session.scalars(
        select(HouseholdMember)
        .options(joinedload(HouseholdMember.person))
        .where(HouseholdMember.household_id == household_id)
        .order_by(HouseholdMember.id)
    ).all()
    overview = HouseholdOverview()
    groups = {"adult": overview.adults, "child": overview.children, "contact": overview.contacts}
    for member in members:
        groups[member.role].append(member.person)
    return overview
