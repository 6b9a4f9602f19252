"""Households as staff find them: search, a household's full record, and names for households.

Fixed number of queries whatever the page size.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, literal, or_, select, union
from sqlalchemy.orm import joinedload, selectinload

from citoyens.extensions import db
from citoyens.households.models import (
    Household,
    HouseholdChange,
    HouseholdMember,
    Invitation,
    Person,
)


@dataclass
class HouseholdRow:
    household: Household
    adults: list[Person]
    children_count: int
    emails: list[str]


@dataclass
class HouseholdSearch:
    rows: list[HouseholdRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column, like: str):
    """lower(column) LIKE lower(:like): what the trigram indexes of PostgreSQL serve
    (`extensions.trigram_index`); SQLite lowers ASCII only, as its ILIKE did."""
    return func.lower(column).like(func.lower(literal(like)), escape="\\")


def _households_matching(term: str):
    """The ids of the households a word matches: reference or city, a member's (past ones
    too) names or e-mail, an account's e-mail. Each branch of the UNION is served by its
    table's trigram indexes on PostgreSQL."""
    from citoyens.accounts.models import User

    like = _like(term)
    return union(
        select(Household.id).where(
            or_(_contains(Household.external_ref, like), _contains(Household.city, like))
        ),
        select(HouseholdMember.household_id)
        .join(Person, Person.id == HouseholdMember.person_id)
        .where(
            or_(
                _contains(Person.first_name, like),
                _contains(Person.last_name, like),
                _contains(Person.email, like),
            )
        ),
        select(User.household_id).where(
            User.household_id.is_not(None), _contains(User.email, like)
        ),
    )


def search_households(
    query: str = "", page: int = 1, per_page: int = 25, *, user=None
) -> HouseholdSearch:
    """Households whose members' names or e-mails, accounts' e-mails, reference or city
    contain every word of `query`; only those `user` may see when given (services.scope).

    A search runs once: the page and the total come from one query (a window count);
    only a page past the end asks for the total again. Three queries in all, whatever
    the page size (four without a search: the count, then the page)."""
    from citoyens.accounts.models import User
    from citoyens.services.scope import household_filter

    stmt = select(Household)
    if user is not None:
        stmt = stmt.where(household_filter(Household.id, user))
    terms = query.split()[:6]
    for term in terms:
        stmt = stmt.where(Household.id.in_(_households_matching(term)))
    paged = stmt.options(
        selectinload(Household.memberships).joinedload(HouseholdMember.person)
    ).order_by(Household.id.desc())
    households: list[Household] = []
    total = None
    if terms:
        page = max(1, page)
        found = db.session.execute(
            paged.add_columns(func.count().over()).offset((page - 1) * per_page).limit(per_page)
        ).all()
        households = [household for household, _total in found]
        total = found[0][1] if found else (0 if page == 1 else None)
    if total is None:
        total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        page = max(1, min(page, max(1, -(-total // per_page))))
        households = list(
            db.session.scalars(paged.offset((page - 1) * per_page).limit(per_page)).all()
        )
    ids = [h.id for h in households]
    emails: dict[int, list[str]] = {}
    if ids:
        for household_id, email in db.session.execute(
            select(User.household_id, User.email)
            .where(User.household_id.in_(ids))
            .order_by(User.id)
        ):
            emails.setdefault(household_id, []).append(email)
    rows = []
    for household in households:
        current = [m for m in household.memberships if m.left_at is None]
        rows.append(
            HouseholdRow(
                household=household,
                adults=[m.person for m in current if m.role == "adult"],
                children_count=sum(1 for m in current if m.role == "child"),
                emails=emails.get(household.id, []),
            )
        )
    return HouseholdSearch(rows=rows, total=total, page=page, per_page=per_page)


@dataclass
class HouseholdRecord:
    """A household as staff see it: every membership (past ones too), accounts, history."""

    household: Household
    members: list[HouseholdMember]
    accounts: list
    changes: list[HouseholdChange]
    invitations: list[Invitation]


def household_record(household_id: int, history_limit: int = 200) -> HouseholdRecord | None:
    from citoyens.accounts.models import User

    household = db.session.get(Household, household_id)
    if household is None:
        return None
    members = (
        db.session.scalars(
            select(HouseholdMember)
            .options(joinedload(HouseholdMember.person).joinedload(Person.school))
            .where(HouseholdMember.household_id == household_id)
            .order_by(HouseholdMember.left_at.is_not(None), HouseholdMember.id)
        )
        .unique()
        .all()
    )
    accounts = list(
        db.session.scalars(select(User).where(User.household_id == household_id).order_by(User.id))
    )
    changes = list(
        db.session.scalars(
            select(HouseholdChange)
            .options(joinedload(HouseholdChange.actor), joinedload(HouseholdChange.person))
            .where(HouseholdChange.household_id == household_id)
            .order_by(HouseholdChange.created_at.desc(), HouseholdChange.id.desc())
            .limit(history_limit)
        )
    )
    invitations = list(
        db.session.scalars(
            select(Invitation)
            .where(Invitation.household_id == household_id)
            .order_by(Invitation.id.desc())
        )
    )
    return HouseholdRecord(household, list(members), accounts, changes, invitations)


def household_names(household_ids) -> dict[int, str]:
    """A name for each household, from its current responsible adults, in one query.

    Households have no name of their own: "Camille Martin et Paul Durand".
    """
    household_ids = set(household_ids)
    if not household_ids:
        return {}
    rows = db.session.execute(
        select(HouseholdMember.household_id, Person.first_name, Person.last_name)
        .join(Person, Person.id == HouseholdMember.person_id)
        .where(
            HouseholdMember.household_id.in_(household_ids),
            HouseholdMember.role == "adult",
            HouseholdMember.left_at.is_(None),
        )
        .order_by(HouseholdMember.household_id, HouseholdMember.id)
    )
    adults: dict[int, list[str]] = {}
    for household_id, first_name, last_name in rows:
        adults.setdefault(household_id, []).append(f"{first_name} {last_name}")
    return {
        household_id: _and_join(adults[household_id])
        if household_id in adults
        else f"Foyer n° {household_id}"
        for household_id in household_ids
    }


def _and_join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} et {names[-1]}"
