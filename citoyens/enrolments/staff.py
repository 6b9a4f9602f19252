"""The staff side of enrolments: the queue per service, and one file (enrolments.decisions
holds the decisions and staff enrolling a child).

Plain functions (no HTTP, no templates); the back office calls them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from citoyens.documents.rules import DocumentLine, current_documents, line_for, today_in_paris
from citoyens.enrolments.models import ENROLMENT_STATUSES, Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.forms import parse_id
from citoyens.households.directory import household_names
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.pagination import QueuePage
from citoyens.requests import operations as request_ops
from citoyens.requests.models import Request, RequestEvent
from citoyens.requests.rules import queue_services
from citoyens.services.models import SchoolYear, Service, ServiceDocument
from citoyens.services.rules import service_ids_for
from citoyens.services.scope import household_filter

QUEUE_PAGE_SIZE = 30
QUEUE_STATUSES = {
    "pending": "En attente de validation",
    "waiting_list": "Liste d'attente",
    "accepted": "Acceptées",
    "refused": "Refusées",
    "cancelled": "Annulées",
    "all": "Toutes",
}


__all__ = [
    "QUEUE_STATUSES",
    "EnrolmentFile",
    "QueueFilters",
    "QueuePage",
    "age_label",
    "enrolment_file",
    "enrolment_for_staff",
    "queue_services",
    "school_years",
    "staff_queue",
]


def school_years() -> list[SchoolYear]:
    """Every school year, the most recent first (the queue's year filter)."""
    return list(db.session.scalars(select(SchoolYear).order_by(SchoolYear.starts_on.desc())))


def age_label(birth_date: date | None, on: date) -> str:
    """ "18 mois" under three years (petite enfance counts in months), "7 ans" after."""
    if birth_date is None:
        return "âge inconnu"
    months = (on.year - birth_date.year) * 12 + on.month - birth_date.month
    if on.day < birth_date.day:
        months -= 1
    months = max(0, months)
    if months < 36:
        return f"{months} mois"
    years = months // 12
    return f"{years} ans"


# --- The queue ------------------------------------------------------------------------------


@dataclass
class QueueFilters:
    """The queue's filters as chosen; empty strings mean "all"."""

    service: str = ""  # "" or a service id
    status: str = "pending"  # a key of QUEUE_STATUSES
    year: str = ""  # "" or a school year id
    page: int = 1


def staff_queue(user, filters: QueueFilters, per_page: int = QUEUE_PAGE_SIZE) -> QueuePage:
    """The enrolments of the agent's services (every service for administrators), filtered,
    oldest first: the first sent is the first examined. A fixed number of queries."""
    conditions = [household_filter(Enrolment.household_id, user)]
    allowed = service_ids_for(user)
    if allowed is not None:
        conditions.append(Enrolment.service_id.in_(allowed))
    if (service_id := parse_id(filters.service)) is not None:
        conditions.append(Enrolment.service_id == service_id)
    if filters.status in ENROLMENT_STATUSES:
        conditions.append(Enrolment.status == filters.status)
    if (year_id := parse_id(filters.year)) is not None:
        conditions.append(Enrolment.school_year_id == year_id)

    total = db.session.scalar(select(func.count(Enrolment.id)).where(*conditions)) or 0
    last_page = max(1, -(-total // per_page))
    page = min(max(1, filters.page), last_page)
    items = list(
        db.session.scalars(
            select(Enrolment)
            .options(
                joinedload(Enrolment.child),
                joinedload(Enrolment.service),
                joinedload(Enrolment.school_year),
                selectinload(Enrolment.activities).joinedload(EnrolmentActivity.activity),
            )
            .where(*conditions)
            .order_by(Enrolment.created_at, Enrolment.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    names = household_names({e.household_id for e in items})
    return QueuePage(items, total, page, per_page, names)


# --- One file -------------------------------------------------------------------------------


def enrolment_for_staff(enrolment_id: int) -> Enrolment | None:
    """The enrolment with what its file shows (scope is checked by the caller)."""
    return db.session.scalar(
        select(Enrolment)
        .options(
            joinedload(Enrolment.child),
            joinedload(Enrolment.school_year),
            joinedload(Enrolment.service)
            .selectinload(Service.required_documents)
            .joinedload(ServiceDocument.document_type),
            selectinload(Enrolment.activities).joinedload(EnrolmentActivity.activity),
            joinedload(Enrolment.request).joinedload(Request.service),
            joinedload(Enrolment.request)
            .selectinload(Request.events)
            .joinedload(RequestEvent.actor),
        )
        .where(Enrolment.id == enrolment_id)
    )


@dataclass
class RequiredDocument:
    """A document the service requires, as it stands for this child and school year."""

    line: DocumentLine
    # Valid today but ending before the school year does.
    ends_before_year_end: bool = False


@dataclass
class EnrolmentFile:
    enrolment: Enrolment
    household: Household
    household_name: str
    adults: list[Person]
    school_name: str | None
    documents: list[RequiredDocument]
    today: date

    @property
    def is_place_request(self) -> bool:
        return is_place_request(self.enrolment)

    @property
    def request(self) -> Request | None:
        return self.enrolment.request

    @property
    def can_decide(self) -> bool:
        return self.request is not None and self.request.is_open

    @property
    def can_wait(self) -> bool:
        # Offered only where the request's transitions allow it.
        return (
            self.can_decide
            and self.is_place_request
            and "waiting_list" in request_ops.TRANSITIONS.get(self.request.status, ())
        )

    @property
    def documents_complete(self) -> bool:
        return all(d.line.status in ("accepted", "pending") for d in self.documents)


def is_place_request(enrolment: Enrolment) -> bool:
    if enrolment.request is not None:
        return enrolment.request.kind == "place_request"
    return bool(enrolment.service.place_request)


def enrolment_file(enrolment: Enrolment, today: date | None = None) -> EnrolmentFile:
    """Child, household (adults, phones, QF) and the service's required documents."""
    from citoyens.services.models import School

    today = today or today_in_paris()
    child = enrolment.child
    household = db.session.get(Household, enrolment.household_id)
    adults = list(
        db.session.scalars(
            select(Person)
            .join(HouseholdMember, HouseholdMember.person_id == Person.id)
            .where(
                HouseholdMember.household_id == enrolment.household_id,
                HouseholdMember.role == "adult",
                HouseholdMember.left_at.is_(None),
            )
            .order_by(HouseholdMember.id)
        )
    )
    school_name = (
        db.session.scalar(select(School.name).where(School.id == child.school_id))
        if child.school_id
        else None
    )
    current = current_documents(enrolment.household_id)
    year_end = enrolment.school_year.ends_on
    documents = []
    for required in enrolment.service.required_documents:
        doc_type = required.document_type
        person = child if doc_type.scope == "child" else None
        document = current.get((doc_type.id, person.id if person else None))
        line = line_for(doc_type, person, document, today)
        ends_early = (
            document is not None
            and document.valid_until is not None
            and line.status in ("accepted", "pending")
            and document.valid_until < year_end
        )
        documents.append(RequiredDocument(line, ends_early))
    documents.sort(key=lambda d: d.line.type.label)
    return EnrolmentFile(
        enrolment=enrolment,
        household=household,
        household_name=household_names({enrolment.household_id})[enrolment.household_id],
        adults=adults,
        school_name=school_name,
        documents=documents,
        today=today,
    )
