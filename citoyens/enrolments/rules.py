"""Enrolment rules: who may enrol where, with which documents, and when.

Plain functions (no request, no template): the family's pages, the staff's
back office and `operations.enrol` call them alike. Each runs a fixed number
of queries, whatever the number of documents, activities or enrolments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import exists, select
from sqlalchemy.orm import joinedload, selectinload

from citoyens.documents.models import Document, DocumentType
from citoyens.documents.rules import DocumentLine, current_documents, line_for
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.households.models import Person
from citoyens.services.models import (
    Activity,
    EnrolmentWindow,
    SchoolYear,
    Service,
    ServiceDocument,
)

# Statuses that hold the place of (child, service, year): the database's partial unique
# index says the same (uq_enrolments_live).
LIVE_STATUSES = ("pending", "accepted", "waiting_list")
MONTHS_FR = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]


def date_fr(day: date) -> str:
    """1er septembre 2026."""
    return f"{day.day}{'er' if day.day == 1 else ''} {MONTHS_FR[day.month - 1]} {day.year}"


# --- Eligibility -------------------------------------------------------------------------------


def age_in_months(birth_date: date, on: date) -> int:
    """Whole months of age on `on` (born 1 September 2023: 36 months on 1 September 2026)."""
    months = (on.year - birth_date.year) * 12 + on.month - birth_date.month
    if on.day < birth_date.day:
        months -= 1
    return months


def age_label(months: int) -> str:
    """18 mois, 3 ans, 4 ans et 6 mois."""
    if months < 24:
        return f"{months} mois"
    years, rest = divmod(months, 12)
    return f"{years} ans" + (f" et {rest} mois" if rest else "")


def service_levels(service: Service) -> list[str]:
    return [level.strip() for level in (service.school_levels or "").split(",") if level.strip()]


def eligibility_problems(child: Person, service: Service, school_year: SchoolYear) -> list[str]:
    """Why the child may not enrol in the service that year (empty: eligible).

    Age in months at the start of the school year; class level when the service lists
    levels; pupils of a private school are sent to the OGEC's canteen.
    """
    problems: list[str] = []
    name = child.first_name
    start = school_year.starts_on
    if service.min_age_months is not None or service.max_age_months is not None:
        if child.birth_date is None:
            problems.append(
                f"La date de naissance de {name} n'est pas renseignée : "
                "complétez-la dans « Mon foyer »."
            )
        else:
            months = age_in_months(child.birth_date, start)
            when = f"au {date_fr(start)}"
            if service.min_age_months is not None and months < service.min_age_months:
                problems.append(
                    f"{name} aura {age_label(max(months, 0))} {when} : {service.name} accueille "
                    f"les enfants à partir de {age_label(service.min_age_months)}."
                )
            if service.max_age_months is not None and months > service.max_age_months:
                problems.append(
                    f"{name} aura {age_label(months)} {when} : {service.name} accueille "
                    f"les enfants jusqu'à {age_label(service.max_age_months)}."
                )
    levels = service_levels(service)
    if levels:
        if not child.class_level:
            problems.append(
                f"{service.name} est réservé aux élèves de {', '.join(levels)} : indiquez la "
                f"classe de {name} dans « Mon foyer »."
            )
        elif child.class_level not in levels:
            problems.append(
                f"{service.name} est réservé aux élèves de {', '.join(levels)} ; "
                f"{name} est en {child.class_level}."
            )
    school = child.school if child.school_id else None
    if service.excludes_private_school and school is not None and school.kind == "private":
        contact = school.canteen_contact or f"renseignez-vous auprès de l'école {school.name}"
        problems.append(
            "Les élèves d'une école privée déjeunent à la cantine de leur école, gérée par "
            f"l'OGEC. Contact : {contact}."
        )
    return problems


# --- Required documents -------------------------------------------------------------------------


@dataclass
class RequiredDocument:
    """A document the service requires, for the child or the household, and where it stands.

    `line` is what "Mes documents" shows (status today, upload form); `problem` is why it
    does not count for this enrolment (None: it counts).
    """

    type: DocumentType
    line: DocumentLine
    problem: str | None = None
    problem_detail: str | None = None


def required_types(service_id: int) -> list[DocumentType]:
    """The active document types the service requires (one query)."""
    return list(
        db.session.scalars(
            select(DocumentType)
            .join(ServiceDocument, ServiceDocument.document_type_id == DocumentType.id)
            .where(ServiceDocument.service_id == service_id, DocumentType.active.is_(True))
            .order_by(DocumentType.scope.desc(), DocumentType.label, DocumentType.id)
        )
    )


def document_problem(document: Document | None, check_on: date, today: date) -> str | None:
    """Why a document does not count on `check_on` (None: it counts). Under review counts."""
    if document is None:
        return "manquant"
    if document.status == "refused":
        return "refusé"
    if document.valid_until is not None:
        if document.valid_until < today:
            return "expiré"
        if document.valid_until < check_on:
            return "expire avant la rentrée"
    return None


def required_documents(
    household_id: int, child: Person, service: Service, school_year: SchoolYear, today: date
) -> list[RequiredDocument]:
    """Each required type with the child's (scope child) or household's current document.

    A document counts when it is not refused and still valid on the later of today and
    the school year's first day. Two queries.
    """
    check_on = max(today, school_year.starts_on)
    current = current_documents(household_id)
    result = []
    for doc_type in required_types(service.id):
        person = child if doc_type.scope == "child" else None
        document = current.get((doc_type.id, person.id if person else None))
        problem = document_problem(document, check_on, today)
        detail = None
        if problem == "expire avant la rentrée":
            detail = (
                f"Il expire le {date_fr(document.valid_until)}, avant le début de l'année "
                f"{school_year.name} ({date_fr(school_year.starts_on)}) : envoyez-en un à jour."
            )
        result.append(
            RequiredDocument(doc_type, line_for(doc_type, person, document, today), problem, detail)
        )
    return result


def missing_documents(
    household_id: int, child_id: int, service: Service, school_year: SchoolYear, today: date
) -> list[tuple[DocumentType, str]]:
    """(type, reason) of each required document that does not count: "manquant", "refusé",
    "expiré", "expire avant la rentrée"."""
    child = db.session.get(Person, child_id)
    return [
        (item.type, item.problem)
        for item in required_documents(household_id, child, service, school_year, today)
        if item.problem
    ]


def of_name(name: str) -> str:
    """ "de Léa", "d'Emma": the French elision before a vowel."""
    return ("d'" if name[:1].lower() in "aeiouyàâéèêëîïôûh" else "de ") + name


def documents_sentence(missing: list[tuple[DocumentType, str]], child_name: str) -> str:
    """ "Attestation d'assurance (manquant), Vaccinations de Léa (expiré)"."""
    parts = []
    for doc_type, reason in missing:
        owner = f" {of_name(child_name)}" if doc_type.scope == "child" else " du foyer"
        parts.append(f"{doc_type.label}{owner} ({reason})")
    return ", ".join(parts)


# --- Duplicates and windows ---------------------------------------------------------------------


def duplicate(child_id: int, service_id: int, school_year_id: int) -> Enrolment | None:
    """The child's live enrolment (pending, accepted, waiting list) in the service that year."""
    return db.session.scalar(
        select(Enrolment).where(
            Enrolment.child_id == child_id,
            Enrolment.service_id == service_id,
            Enrolment.school_year_id == school_year_id,
            Enrolment.status.in_(LIVE_STATUSES),
        )
    )


def enrolment_window(service_id: int, school_year_id: int) -> EnrolmentWindow | None:
    return db.session.scalar(
        select(EnrolmentWindow).where(
            EnrolmentWindow.service_id == service_id,
            EnrolmentWindow.school_year_id == school_year_id,
        )
    )


def window_is_open(window: EnrolmentWindow | None, today: date) -> bool:
    return window is not None and window.opens_on <= today <= window.closes_on


def window_problem(
    window: EnrolmentWindow | None, service: Service, school_year: SchoolYear, today: date
) -> str | None:
    """Why families cannot send an enrolment today (None: the window is open)."""
    what = f"Les inscriptions à {service.name} pour {school_year.name}"
    if window is None:
        return f"{what} ne sont pas ouvertes. Contactez le service pour en savoir plus."
    if today < window.opens_on:
        return (
            f"{what} ouvriront le {date_fr(window.opens_on)} "
            f"(jusqu'au {date_fr(window.closes_on)})."
        )
    if today > window.closes_on:
        return f"{what} sont closes depuis le {date_fr(window.closes_on)}. Contactez le service."
    return None


# --- What a family may choose -------------------------------------------------------------------


def active_services() -> list[Service]:
    return list(
        db.session.scalars(
            select(Service).where(Service.active.is_(True)).order_by(Service.category, Service.name)
        )
    )


def active_service(service_id: int) -> Service | None:
    return db.session.scalar(
        select(Service).where(Service.id == service_id, Service.active.is_(True))
    )


def years_open_for_enrolment(today: date) -> list[SchoolYear]:
    """School years not yet over whose enrolments are open or to come for some service."""
    return list(
        db.session.scalars(
            select(SchoolYear)
            .where(
                SchoolYear.ends_on >= today,
                exists().where(
                    EnrolmentWindow.school_year_id == SchoolYear.id,
                    EnrolmentWindow.closes_on >= today,
                ),
            )
            .order_by(SchoolYear.starts_on)
        )
    )


def service_activities(service_id: int) -> list[Activity]:
    return list(
        db.session.scalars(
            select(Activity)
            .where(Activity.service_id == service_id, Activity.active.is_(True))
            .order_by(Activity.start_time, Activity.name, Activity.id)
        )
    )


@dataclass
class Outlook:
    """Everything the enrolment form shows once child, service and year are chosen."""

    child: Person
    service: Service
    school_year: SchoolYear
    problems: list[str]
    window: EnrolmentWindow | None
    window_problem: str | None
    existing: Enrolment | None
    documents: list[RequiredDocument]
    activities: list[Activity] = field(default_factory=list)

    @property
    def missing(self) -> list[RequiredDocument]:
        return [item for item in self.documents if item.problem]

    @property
    def can_send(self) -> bool:
        """Nothing blocks but (maybe) documents: the form is shown; documents are re-checked."""
        return not self.problems and self.window_problem is None and self.existing is None


def outlook(
    household_id: int, child: Person, service: Service, school_year: SchoolYear, today: date
) -> Outlook:
    """The rules applied to one choice, for the form. Seven queries at most."""
    window = enrolment_window(service.id, school_year.id)
    return Outlook(
        child=child,
        service=service,
        school_year=school_year,
        problems=eligibility_problems(child, service, school_year),
        window=window,
        window_problem=window_problem(window, service, school_year, today),
        existing=duplicate(child.id, service.id, school_year.id),
        documents=required_documents(household_id, child, service, school_year, today),
        activities=service_activities(service.id),
    )


# --- The family's enrolments -------------------------------------------------------------------


def household_enrolments(household_id: int) -> list[Enrolment]:
    """Every enrolment of the household, newest year first, with what the list shows."""
    return list(
        db.session.scalars(
            select(Enrolment)
            .join(SchoolYear, SchoolYear.id == Enrolment.school_year_id)
            .options(
                joinedload(Enrolment.child),
                joinedload(Enrolment.service),
                joinedload(Enrolment.school_year),
                joinedload(Enrolment.request),
                selectinload(Enrolment.activities).joinedload(EnrolmentActivity.activity),
            )
            .where(Enrolment.household_id == household_id)
            .order_by(SchoolYear.starts_on.desc(), Enrolment.created_at.desc(), Enrolment.id.desc())
        ).unique()
    )


def enrolment_of_household(enrolment_id: int, household_id: int) -> Enrolment | None:
    """The enrolment if it belongs to the household; None otherwise (another family's id)."""
    return db.session.scalar(
        select(Enrolment)
        .options(
            joinedload(Enrolment.child),
            joinedload(Enrolment.service),
            joinedload(Enrolment.school_year),
            joinedload(Enrolment.request),
            selectinload(Enrolment.activities).joinedload(EnrolmentActivity.activity),
        )
        .where(Enrolment.id == enrolment_id, Enrolment.household_id == household_id)
    )
