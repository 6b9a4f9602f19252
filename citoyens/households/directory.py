"""Households as staff find them: search, a household's full record, and names for households.

Fixed number of queries whatever the page size.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, literal, or_, select, text, union_all
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
    # A word found in more than SEARCH_LIMIT places: `total` counts the households of
    # those first places only ("au moins"), and staff are asked for a closer search.
    capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


# Places (a household's reference or city, a member, an account) read per word at most:
# a word of every address ("Chalonnes") must not make staff wait while 100,000
# households are counted.
SEARCH_LIMIT = 1000


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column, like: str):
    """lower(column) LIKE lower(:like): what the trigram indexes of PostgreSQL serve
    (`extensions.trigram_index`); SQLite lowers ASCII only, as its ILIKE did."""
    return func.lower(column).like(func.lower(literal(like)), escape="\\")


def _places_matching(term: str, *, among=None, user=None):
    """Where a word matches, as household ids (one per place, so a household may come
    twice): reference or city, a member's (past ones too) names or e-mail, an account's
    e-mail. Each branch of the UNION ALL is served by its table's trigram indexes on
    PostgreSQL, or read in order and left early when the word is everywhere."""
    from citoyens.accounts.models import User
    from citoyens.services.scope import household_filter

    like = _like(term)
    people = select(Person.id).where(
        or_(
            _contains(Person.first_name, like),
            _contains(Person.last_name, like),
            _contains(Person.email, like),
        )
    )
    if among is None and user is None:
        # The first people found, then their households by index: joined whole,
        # PostgreSQL would hash every match ("Martin": 10,000 people) before the LIMIT.
        people = people.limit(SEARCH_LIMIT + 1)
    people = people.subquery()
    branches = [
        (
            Household.id,
            select(Household.id.label("household_id")).where(
                or_(_contains(Household.external_ref, like), _contains(Household.city, like))
            ),
        ),
        (
            HouseholdMember.household_id,
            select(HouseholdMember.household_id.label("household_id")).join(
                people, people.c.id == HouseholdMember.person_id
            ),
        ),
        (
            User.household_id,
            select(User.household_id.label("household_id")).where(
                User.household_id.is_not(None), _contains(User.email, like)
            ),
        ),
    ]
    selects = []
    for column, branch in branches:
        if among is not None:
            branch = branch.where(column.in_(among))
        if user is not None:
            branch = branch.where(household_filter(column, user))
        selects.append(branch)
    return union_all(*selects)


def _matching_ids(terms: list[str], user=None) -> tuple[list[int], bool]:
    """The ids of the households every word matches, newest first, and whether a word was
    found in more than SEARCH_LIMIT places (then only the households of its first places
    are given). One query, two when a word is that common and another is not."""
    limited = []
    for number, term in enumerate(terms):
        places = _places_matching(term, user=user).subquery()
        limited.append(
            select(literal(number).label("term"), places.c.household_id)
            .limit(SEARCH_LIMIT + 1)
            .subquery()
        )
    found: dict[int, list[int]] = {number: [] for number in range(len(terms))}
    if db.session.get_bind().dialect.name == "postgresql":
        # A few places read, then the LIMIT stops: parallel workers would cost more to
        # start (and to hash a whole table) than they save. For this transaction only.
        db.session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    for number, household_id in db.session.execute(
        union_all(*(select(sub.c.term, sub.c.household_id) for sub in limited))
    ):
        found[number].append(household_id)
    complete = [set(ids) for ids in found.values() if len(ids) <= SEARCH_LIMIT]
    common = [terms[n] for n, ids in found.items() if len(ids) > SEARCH_LIMIT]
    if complete:
        candidates = set.intersection(*complete)
        capped = False
    else:  # every word is everywhere: the first word's first places
        candidates = set(found[0])
        common = common[1:]
        capped = True
    if common and candidates:
        # The common words, checked among the few households left (by their ids).
        among = sorted(candidates)
        for term in common:
            kept = select(Household.id).where(
                Household.id.in_(among),
                Household.id.in_(_places_matching(term, among=among)),
            )
            among = list(db.session.scalars(kept))  # one query per common word
            if not among:
                break
        candidates = set(among)
    return sorted(candidates, reverse=True), capped


def search_households(
    query: str = "", page: int = 1, per_page: int = 25, *, user=None
) -> HouseholdSearch:
    """Households whose members' names or e-mails, accounts' e-mails, reference or city
    contain every word of `query`; only those `user` may see when given (services.scope).

    With words: their matches, then the page's households: four queries whatever the page
    size (one more per word found everywhere, when another word is rarer). Without: the
    count, then the page."""
    from citoyens.services.scope import household_filter, household_ids_visible_to

    terms = query.split()[:6]
    capped = False
    if user is not None and household_ids_visible_to(user) is None:
        user = None  # an administrator sees every family
    if terms:
        ids, capped = _matching_ids(terms, user=user)
        total = len(ids)
        page = max(1, min(page, max(1, -(-total // per_page))))
        shown = ids[(page - 1) * per_page : page * per_page]
        stmt = select(Household).where(Household.id.in_(shown))
    else:
        stmt = select(Household)
        if user is not None:
            stmt = stmt.where(household_filter(Household.id, user))
        total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
        page = max(1, min(page, max(1, -(-total // per_page))))
        stmt = stmt.offset((page - 1) * per_page).limit(per_page)
    households: list[Household] = []
    if total:
        households = list(
            db.session.scalars(
                stmt.options(
                    selectinload(Household.memberships).joinedload(HouseholdMember.person)
                ).order_by(Household.id.desc())
            )
        )
    return HouseholdSearch(
        rows=_rows(households), total=total, page=page, per_page=per_page, capped=capped
    )


def _rows(households: list[Household]) -> list[HouseholdRow]:
    """The list's rows: current adults, children count, account e-mails (one query)."""
    from citoyens.accounts.models import User

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
    return rows


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
