"""Document rules: validity, what a family must provide, and where it stands.

Plain functions (no request, no template): the pages, the dashboard and the
enrolment checks call them alike. Every function runs a fixed number of
queries, whatever the number of children or types.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, true
from sqlalchemy.orm import joinedload

from citoyens.documents.models import DOCUMENT_STATUSES, Document, DocumentType
from citoyens.extensions import db
from citoyens.households.models import HouseholdMember, Person

PARIS = ZoneInfo("Europe/Paris")
# What a line of "Mes documents" says; "missing" is a line without a current document.
LINE_STATUSES = {"missing": "À envoyer", **DOCUMENT_STATUSES}
EXPIRY_WARNING_DAYS = 30


def today_in_paris(now: datetime | None = None) -> date:
    """The commune's calendar day (validity ends are dates in Europe/Paris)."""
    return (now or datetime.now(PARIS)).astimezone(PARIS).date()


def add_months(day: date, months: int) -> date:
    """Same day `months` later, clamped to the month's end (31 Jan + 1 month → 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def school_year_end(day: date) -> date:
    """31 August ending the school year `day` belongs to (1 September → 31 August)."""
    return date(day.year if day <= date(day.year, 8, 31) else day.year + 1, 8, 31)


def validity_end(doc_type: DocumentType, uploaded_on: date) -> date | None:
    """Last day a document of this type uploaded on `uploaded_on` counts; None: no end."""
    if doc_type.until_school_year_end:
        return school_year_end(uploaded_on)
    if doc_type.validity_months:
        return add_months(uploaded_on, doc_type.validity_months)
    return None


def is_expiring(document: Document, today: date) -> bool:
    """Still valid, but not for more than EXPIRY_WARNING_DAYS days."""
    if document.valid_until is None or document.status == "refused":
        return False
    return today <= document.valid_until <= today + timedelta(days=EXPIRY_WARNING_DAYS)


# --- What the family must provide ---------------------------------------------------------


@dataclass
class DocumentLine:
    """One expected document: a type, for the household or one child, and its current file."""

    type: DocumentType
    person: Person | None
    document: Document | None
    status: str  # missing, pending, accepted, refused, expired
    expiring: bool = False

    @property
    def key(self) -> str:
        return f"{self.type.id}-{self.person.id if self.person else 'foyer'}"


@dataclass
class Section:
    """The lines of the household (person None) or of one child."""

    person: Person | None
    lines: list[DocumentLine] = field(default_factory=list)


def active_types() -> list[DocumentType]:
    return list(
        db.session.scalars(
            select(DocumentType)
            .where(DocumentType.active.is_(True))
            .order_by(DocumentType.label, DocumentType.id)
        )
    )


def active_children(household_id: int) -> list[Person]:
    """Children currently in the household (left_at NULL), eldest first."""
    return list(
        db.session.scalars(
            select(Person)
            .join(HouseholdMember, HouseholdMember.person_id == Person.id)
            .where(
                HouseholdMember.household_id == household_id,
                HouseholdMember.role == "child",
                HouseholdMember.left_at.is_(None),
            )
            .order_by(Person.birth_date.is_(None), Person.birth_date, Person.first_name, Person.id)
        )
    )


def active_child(household_id: int, person_id: int) -> Person | None:
    """The child if it is an active child of the household; None otherwise (forged id)."""
    return db.session.scalar(
        select(Person)
        .join(HouseholdMember, HouseholdMember.person_id == Person.id)
        .where(
            Person.id == person_id,
            HouseholdMember.household_id == household_id,
            HouseholdMember.role == "child",
            HouseholdMember.left_at.is_(None),
        )
    )


def current_documents(household_id: int) -> dict[tuple[int, int | None], Document]:
    """The household's current documents (not replaced), by (type id, person id or None)."""
    documents = db.session.scalars(
        select(Document).where(
            Document.household_id == household_id, Document.replaced_at.is_(None)
        )
    )
    # The newest wins should a race ever leave two current documents.
    current: dict[tuple[int, int | None], Document] = {}
    for document in documents:
        key = (document.type_id, document.person_id)
        if key not in current or document.id > current[key].id:
            current[key] = document
    return current


def line_for(
    doc_type: DocumentType, person: Person | None, document: Document | None, today: date
) -> DocumentLine:
    if document is None:
        return DocumentLine(doc_type, person, None, "missing")
    status = document.status_on(today)
    return DocumentLine(doc_type, person, document, status, expiring=is_expiring(document, today))


def checklist(
    household_id: int, today: date, children: list[Person] | None = None
) -> list[Section]:
    """The household's section then one per active child, each line an expected document.

    Three queries: types, children (unless given, in their order), current documents.
    """
    types = active_types()
    if children is None:
        children = active_children(household_id)
    current = current_documents(household_id)
    sections = [
        Section(
            None,
            [
                line_for(t, None, current.get((t.id, None)), today)
                for t in types
                if t.scope == "household"
            ],
        )
    ]
    for child in children:
        sections.append(
            Section(
                child,
                [
                    line_for(t, child, current.get((t.id, child.id)), today)
                    for t in types
                    if t.scope == "child"
                ],
            )
        )
    return sections


def summary(household_id: int, today: date, children: list[Person] | None = None) -> dict:
    """Counts for the dashboard: missing, expired, expiring, refused, pending; up_to_date.

    Up to date: nothing missing, expired or refused (a document under review counts).
    Three queries, whatever the size of the household (two when the caller gives the
    household's current children).
    """
    return summarize(checklist(household_id, today, children))


def summarize(sections: list[Section]) -> dict:
    """The counts of `summary` from a checklist already built (no query)."""
    counts = {"missing": 0, "expired": 0, "expiring": 0, "refused": 0, "pending": 0}
    for section in sections:
        for line in section.lines:
            if line.status in counts:
                counts[line.status] += 1
            if line.expiring:
                counts["expiring"] += 1
    counts["up_to_date"] = not (counts["missing"] or counts["expired"] or counts["refused"])
    return counts


# --- Staff ------------------------------------------------------------------------------------


def pending_queue(limit: int = 200, where=None) -> list[Document]:
    """Current documents waiting for review, oldest first, with their type and person (1 query).

    `where`: a condition on Document keeping what the user may see (see
    `services.scope.document_filter`); None: every document.
    """
    query = (
        select(Document)
        .options(joinedload(Document.type), joinedload(Document.person))
        .where(Document.status == "pending", Document.replaced_at.is_(None))
    )
    if where is not None:
        query = query.where(where)
    return list(db.session.scalars(query.order_by(Document.uploaded_at, Document.id).limit(limit)))


def household_history(household_id: int, where=None) -> list[Document]:
    """Every document of the household, replaced ones included, newest first (1 query).
    `where`: as for `pending_queue`."""
    return list(
        db.session.scalars(
            select(Document)
            .options(joinedload(Document.type), joinedload(Document.person))
            .where(Document.household_id == household_id, true() if where is None else where)
            .order_by(Document.uploaded_at.desc(), Document.id.desc())
        )
    )
