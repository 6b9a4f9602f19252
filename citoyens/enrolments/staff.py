"""The staff side of enrolments: the queue per service, one file, decisions, enrolling a child.

Plain functions (no HTTP, no templates); the back office calls them. A decision
goes through the enrolment's request (`requests.operations.change_status`), whose
handlers mirror the status onto the enrolment; the family is e-mailed each time.
Each function flushes; the caller commits or rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload, selectinload

from citoyens import audit
from citoyens.documents.rules import DocumentLine, current_documents, line_for, today_in_paris
from citoyens.enrolments.models import ENROLMENT_STATUSES, Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.forms import parse_id
from citoyens.households.directory import household_names
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.mail import absolute_url
from citoyens.pagination import QueuePage
from citoyens.requests import operations as request_ops
from citoyens.requests.models import Request, RequestEvent
from citoyens.requests.rules import queue_services
from citoyens.services.models import Activity, SchoolYear, Service, ServiceDocument
from citoyens.services.rules import service_ids_for
from citoyens.services.scope import household_filter

try:
    # Importing the enrolments' operations registers the handlers that mirror a request's
    # status onto its enrolment; decisions taken here need them.
    from citoyens.enrolments import operations as enrolment_ops
except ImportError:  # a build without the parent flow yet
    enrolment_ops = None

QUEUE_PAGE_SIZE = 30
QUEUE_STATUSES = {
    "pending": "En attente de validation",
    "waiting_list": "Liste d'attente",
    "accepted": "Acceptées",
    "refused": "Refusées",
    "cancelled": "Annulées",
    "all": "Toutes",
}
# Request status reached by each staff decision, and the enrolment status it mirrors.
DECISIONS = {"accepted": "accepted", "refused": "refused", "waiting_list": "waiting_list"}
STAFF_ENROLMENT_MESSAGE = "Inscription faite par le service"
REFUSAL_REASON_MISSING = "Indiquez le motif du refus : il sera envoyé à la famille."
WAITING_LIST_ONLY_FOR_PLACES = "La liste d'attente ne concerne que les demandes de place."


__all__ = [
    "DECISIONS",
    "QUEUE_STATUSES",
    "EnrolmentFile",
    "QueueFilters",
    "QueuePage",
    "age_label",
    "decide",
    "enrolment_file",
    "enrolment_for_staff",
    "queue_services",
    "school_years",
    "staff_enrol",
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


# --- Decisions ------------------------------------------------------------------------------


def decide(enrolment: Enrolment, decision: str, *, actor, message: str | None = None):
    """Accept, refuse (with its reason) or put a place request on the waiting list.

    The request's status changes (its handlers mirror it onto the enrolment) and
    the family is e-mailed. Raises RequestError with a French message; the caller
    then rolls back and nothing is kept.
    """
    message = (message or "").strip() or None
    if decision not in DECISIONS:
        raise request_ops.RequestError("Cette décision n'existe pas.")
    if decision == "refused" and not message:
        raise request_ops.RequestError(REFUSAL_REASON_MISSING)
    if decision == "waiting_list" and not is_place_request(enrolment):
        raise request_ops.RequestError(WAITING_LIST_ONLY_FOR_PLACES)
    request = enrolment.request
    if request is None:
        raise request_ops.RequestError(
            "Cette inscription n'a pas de demande associée : elle ne peut pas être décidée ici."
        )
    event = request_ops.change_status(request, DECISIONS[decision], actor=actor, message=message)
    _mirror_if_unhandled(enrolment, DECISIONS[decision], actor)
    audit.record(
        f"enrolment.{decision}",
        actor=actor,
        target=f"enrolment:{enrolment.id}",
        details=f"service:{enrolment.service_id}",
    )
    notify_decision(enrolment, event)
    return event


def _mirror_if_unhandled(enrolment: Enrolment, status: str, actor) -> None:
    """Safety net: the enrolments domain registers handlers that mirror the request's status.

    Should none be registered (a partial deployment), the enrolment would stay
    "pending" beside an accepted request; set it here rather than show two truths.
    """
    db.session.flush()
    db.session.refresh(enrolment, ["status"])
    if enrolment.status == status:
        return
    current_app.logger.warning(
        "enrolment %s: no handler mirrored the request's status; set here", enrolment.id
    )
    from citoyens.database import utcnow

    enrolment.status = status
    if status in ("accepted", "refused"):
        enrolment.decided_at = utcnow()
        enrolment.decided_by_id = getattr(actor, "id", None)
    db.session.flush()


def activity_names(enrolment: Enrolment) -> list[str]:
    return [link.activity.name for link in enrolment.activities if link.activity is not None]


def notify_decision(enrolment: Enrolment, event: RequestEvent) -> None:
    """E-mail the family the decision on its enrolment, with the service's message."""
    from citoyens.mail import send_mail

    request = enrolment.request
    child = enrolment.child
    service = enrolment.service
    status = event.to_status or request.status
    label = {
        "accepted": "acceptée",
        "refused": "refusée",
        "waiting_list": "sur liste d'attente",
    }.get(status, ENROLMENT_STATUSES.get(status, status).lower())
    what = "Demande de place" if is_place_request(enrolment) else "Inscription"
    subject = (
        f"{what} de {child.first_name} — {service.name} {enrolment.school_year.name} : {label}"
    )
    if "enrolments.show" in current_app.view_functions:
        link = absolute_url("enrolments.show", enrolment_id=enrolment.id)
    else:
        link = absolute_url("requests.show", request_id=request.id)
    # An accepted enrolment with activities opens the child's reservation calendar.
    booking_link = (
        absolute_url("reservations.month", child_id=child.id)
        if status == "accepted" and enrolment.activities
        else None
    )
    for email in request_ops.family_recipients(enrolment.household_id):
        send_mail(
            "enrolment-decision",
            email,
            request_ops._one_line(subject),
            "enrolment_decision",
            reply_to=service.mailbox,
            what=what,
            what_phrase="La demande de place" if what == "Demande de place" else "L'inscription",
            child_name=child.first_name,
            service_name=service.name,
            service_mailbox=service.mailbox,
            year_name=enrolment.school_year.name,
            activities=activity_names(enrolment),
            status=status,
            status_label=label,
            message=event.body,
            link=link,
            booking_link=booking_link,
        )


# --- Staff enrolling a child ----------------------------------------------------------------


def enrol_choices(user, household_id: int):
    """What the staff enrolment form offers: the household's children, the agent's active
    services with their active activities, the school years. Four queries."""
    from citoyens.documents.rules import active_children

    services = [s for s in queue_services(user) if s.active]
    activities = (
        list(
            db.session.scalars(
                select(Activity)
                .where(Activity.service_id.in_([s.id for s in services]), Activity.active.is_(True))
                .order_by(Activity.service_id, Activity.id)
            )
        )
        if services
        else []
    )
    return active_children(household_id), services, activities, school_years()


def staff_enrol_available() -> bool:
    """Whether the enrolments domain's `enrol` operation is installed in this build."""
    return enrolment_ops is not None and hasattr(enrolment_ops, "enrol")


def enrol_errors() -> tuple[type[Exception], ...]:
    """What `staff_enrol` raises with a French message for the agent."""
    error = getattr(enrolment_ops, "EnrolmentError", None)
    return (request_ops.RequestError, error) if error else (request_ops.RequestError,)


def staff_enrol(
    household_id: int,
    child_id: int,
    service_id: int,
    school_year_id: int,
    activity_ids: list[int],
    *,
    actor,
    place: dict | None = None,
    today: date | None = None,
) -> Enrolment:
    """An agent enrols a child: the enrolment is made as the family would, then accepted
    at once ("Inscription faite par le service"); the family is e-mailed.

    Raises EnrolmentError (rules not met) or RequestError; the caller rolls back.
    """
    enrolment = enrolment_ops.enrol(
        household_id,
        child_id,
        service_id,
        school_year_id,
        activity_ids,
        actor=actor,
        today=today,
        place=place,
        by_staff=True,
    )
    db.session.flush()
    # Read afresh: the request was attached by id, the relationships may be stale.
    db.session.expire(enrolment)
    enrolment = enrolment_for_staff(enrolment.id)
    audit.record(
        "enrolment.staff_created",
        actor=actor,
        target=f"enrolment:{enrolment.id}",
        details=f"household:{household_id} service:{service_id}",
    )
    decide(enrolment, "accepted", actor=actor, message=STAFF_ENROLMENT_MESSAGE)
    return enrolment
