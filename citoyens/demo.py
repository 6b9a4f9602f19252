"""Demo data for Chalonnes-sur-Loire. Every address is @example.org (DOMAIN.md)."""

from __future__ import annotations

from datetime import date, time

from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.accounts.operations import create_staff, find_user
from citoyens.accounts.passwords import hash_password
from citoyens.core.models import Commune
from citoyens.database import utcnow
from citoyens.documents.models import DocumentType
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.services.models import (
    Activity,
    EnrolmentWindow,
    ExclusionSet,
    SchoolYear,
    Service,
    ServiceDocument,
    StaffService,
)

PARENT = ("parent@example.org", "citoyens-demo-parent")
AGENT = ("agent@example.org", "citoyens-demo-agent")
ADMIN = ("admin@example.org", "citoyens-demo-admin")


DEMO_SERVICES = [
    (
        "multiaccueil",
        "Multi-accueil",
        "petite-enfance",
        "multiaccueil@example.org",
        "Accueil des enfants de 10 semaines à 4 ans, sur demande de place.",
    ),
    (
        "aps",
        "Accueil périscolaire (APS)",
        "enfance",
        "aps@example.org",
        "Accueil avant et après l'école, les jours d'école.",
    ),
    (
        "restauration",
        "Restauration scolaire",
        "enfance",
        "restauration@example.org",
        "Repas du midi les lundis, mardis, jeudis et vendredis d'école.",
    ),
    (
        "goulidons",
        "Goulidons, accueil de loisirs",
        "enfance",
        "goulidons@example.org",
        "Accueil de loisirs des mercredis et des vacances scolaires.",
    ),
]


# How each demo service is set up the first time it is seeded (DOMAIN.md, issue 4).
# Ages are in months at the start of the school year; 10 weeks ≈ 2 months.
SERVICE_RULES = {
    "multiaccueil": {"min_age_months": 2, "max_age_months": 48, "place_request": True},
    "aps": {"school_levels": "TPS,PS,MS,GS,CP,CE1,CE2,CM1,CM2"},
    "restauration": {
        "school_levels": "PS,MS,GS,CP,CE1,CE2,CM1,CM2",
        "excludes_private_school": True,
    },
    "goulidons": {"min_age_months": 36, "max_age_months": 144},
}
# Every service requires these two; the third is per service (DOMAIN.md).
COMMON_DOCUMENTS = ("responsabilite-civile", "vaccinations")
SERVICE_DOCUMENTS = {
    "multiaccueil": ("certificat-medical",),
    "goulidons": ("certificat-medical",),
    "aps": ("justificatif-domicile",),
    "restauration": ("justificatif-domicile",),
}
# code: (name, weekdays, start, end, capacity, calendar, unit); calendar: the periods the
# activity runs in, "term", "holidays" or "both" (DOMAIN.md "Calendar").
DEMO_ACTIVITIES = {
    "aps": [
        # Morning and evening: different times, a child may hold both.
        ("Accueil du matin", "1,2,4,5", time(7, 15), time(8, 45), 60, "term", None),
        ("Accueil du soir", "1,2,4,5", time(16, 30), time(18, 45), 80, "term", None),
    ],
    "restauration": [
        ("Repas du midi", "1,2,4,5", time(12, 0), time(13, 30), 600, "term", None),
    ],
    "goulidons": [
        ("Mercredi journée", "3", time(8, 30), time(17, 30), 80, "term", "day"),
        # The morning one; an afternoon (13:30-17:30) would be a second activity.
        ("Mercredi demi-journée", "3", time(8, 30), time(12, 0), 40, "term", "half_day"),
        ("Vacances journée", "1,2,3,4,5", time(8, 30), time(17, 30), 100, "holidays", "day"),
    ],
    # The crèche opens on weekdays all year, term time and school holidays.
    "multiaccueil": [
        ("Accueil régulier", "1,2,3,4,5", time(7, 30), time(18, 30), 30, "both", None),
    ],
}
# code: (name of the set, its activities): a child holds one of them per date.
DEMO_EXCLUSION_SETS = {
    "goulidons": (
        "Une seule formule par jour",
        ("Mercredi journée", "Mercredi demi-journée", "Vacances journée"),
    ),
}
DEMO_SCHOOL_YEARS = ("2025-2026", "2026-2027", "2027-2028")
# school year: (opens_on, closes_on), the same for every service
DEMO_WINDOWS = {
    "2026-2027": (date(2026, 6, 1), date(2027, 6, 30)),
    "2027-2028": (date(2027, 5, 1), date(2027, 8, 31)),
}


def seed_services() -> int:
    """The four services of Chalonnes-sur-Loire, with @example.org mailboxes (DOMAIN.md),
    their activities, required documents, school years and enrolment windows.

    Idempotent. A service is configured (rules of access, documents, activities) only
    while it has no activity: after that, what staff changed in the back office stays.
    """
    from citoyens.documents.demo import seed_demo as seed_document_types

    created = seed_document_types()
    services = {service.code: service for service in db.session.scalars(select(Service))}
    for code, name, category, mailbox, description in DEMO_SERVICES:
        if code not in services:
            services[code] = Service(
                code=code,
                name=name,
                category=category,
                mailbox=mailbox,
                description=description,
            )
            db.session.add(services[code])
            created += 1
    db.session.flush()
    created += _configure_services(services)
    created += _seed_school_years_and_windows(services)
    db.session.flush()
    return created


def _configure_services(services: dict[str, Service]) -> int:
    configured = set(db.session.scalars(select(Activity.service_id).distinct()))
    type_ids = dict(db.session.execute(select(DocumentType.code, DocumentType.id)).all())
    created = 0
    for code, activities in DEMO_ACTIVITIES.items():
        service = services.get(code)
        if service is None or service.id in configured:
            continue
        for key, value in SERVICE_RULES.get(code, {}).items():
            setattr(service, key, value)
        linked = set(
            db.session.scalars(
                select(ServiceDocument.document_type_id).where(
                    ServiceDocument.service_id == service.id
                )
            )
        )
        for type_code in COMMON_DOCUMENTS + SERVICE_DOCUMENTS.get(code, ()):
            type_id = type_ids.get(type_code)
            if type_id is not None and type_id not in linked:
                db.session.add(ServiceDocument(service_id=service.id, document_type_id=type_id))
                created += 1
        exclusion = DEMO_EXCLUSION_SETS.get(code)
        group = None
        if exclusion is not None:
            group = ExclusionSet(service_id=service.id, name=exclusion[0])
            db.session.add(group)
            db.session.flush()
        for name, weekdays, start, end, capacity, calendar, unit in activities:
            db.session.add(
                Activity(
                    service_id=service.id,
                    name=name,
                    weekdays=weekdays,
                    start_time=start,
                    end_time=end,
                    capacity=capacity,
                    cutoff_hours=72,
                    calendar=calendar,
                    unit=unit,
                    exclusion_set_id=group.id if group and name in exclusion[1] else None,
                )
            )
            created += 1
    return created


def _seed_school_years_and_windows(services: dict[str, Service]) -> int:
    years = {year.name: year for year in db.session.scalars(select(SchoolYear))}
    created = 0
    for name in DEMO_SCHOOL_YEARS:
        if name not in years:
            first = int(name[:4])
            years[name] = SchoolYear(
                name=name, starts_on=date(first, 9, 1), ends_on=date(first + 1, 8, 31)
            )
            db.session.add(years[name])
            created += 1
    db.session.flush()
    existing = {
        (service_id, year_id)
        for service_id, year_id in db.session.execute(
            select(EnrolmentWindow.service_id, EnrolmentWindow.school_year_id)
        )
    }
    for code, *_rest in DEMO_SERVICES:
        service = services[code]
        for year_name, (opens_on, closes_on) in DEMO_WINDOWS.items():
            year = years[year_name]
            if (service.id, year.id) not in existing:
                db.session.add(
                    EnrolmentWindow(
                        service_id=service.id,
                        school_year_id=year.id,
                        opens_on=opens_on,
                        closes_on=closes_on,
                    )
                )
                created += 1
    return created


def parent_account(credentials: tuple[str, str], household: Household, adult: Person) -> User:
    """A confirmed parent account of the demo for `adult` of `household`."""
    email, password = credentials
    return User(
        email=email,
        password_hash=hash_password(password),
        role="parent",
        first_name=adult.first_name,
        last_name=adult.last_name,
        household=household,
        person=adult,
        confirmed_at=utcnow(),
        password_changed_at=utcnow(),
    )


def seed() -> int:
    """Create what is missing of the demo; return how many records were added."""
    created = 0
    if db.session.scalar(select(Commune.id).limit(1)) is None:
        db.session.add(
            Commune(
                name="Chalonnes-sur-Loire",
                insee_code="49063",
                address="Place de l'Hôtel de Ville, 49290 Chalonnes-sur-Loire",
                contact_email="mairie@example.org",
                phone="+33241744410",
            )
        )
        created += 1
    if find_user(PARENT[0]) is None:
        household = Household(external_ref="DEMO-0001")
        adult = Person(first_name="Camille", last_name="Martin", birth_date=date(1988, 4, 12))
        household.memberships += [
            HouseholdMember(person=adult, role="adult"),
            HouseholdMember(
                person=Person(first_name="Léa", last_name="Martin", birth_date=date(2017, 9, 3)),
                role="child",
            ),
            HouseholdMember(
                person=Person(first_name="Hugo", last_name="Martin", birth_date=date(2020, 2, 21)),
                role="child",
            ),
        ]
        db.session.add(parent_account(PARENT, household, adult))
        created += 5
    created += seed_services()
    if find_user(AGENT[0]) is None:
        agent = create_staff(AGENT[0], "Nadia", "Agent", AGENT[1])
        for service in db.session.scalars(
            select(Service).where(Service.code.in_(("aps", "restauration")))
        ):
            db.session.add(StaffService(user_id=agent.id, service_id=service.id))
        created += 1
    from citoyens.billing.demo import seed_demo as seed_billing
    from citoyens.documents.demo import seed_demo as seed_documents
    from citoyens.households.demo import seed_demo as seed_households
    from citoyens.requests.demo import seed_demo as seed_requests
    from citoyens.reservations.demo import seed_demo as seed_reservations

    # Households first (schools, the demo family's details), then its documents, then requests,
    # then the calendar (holidays, opening days) and what the family may book.
    created += seed_households() + seed_documents() + seed_requests() + seed_reservations()
    created += seed_billing()  # tariffs: bands and prices of the demo activities
    if find_user(ADMIN[0]) is None:
        create_staff(ADMIN[0], "Paul", "Admin", ADMIN[1], admin=True)
        created += 1
    db.session.flush()
    from citoyens.demo_history import seed_history
    from citoyens.messages.demo import seed_demo as seed_messages
    from citoyens.requests.demo import seed_family_reply

    # Last month lived: Goulidons, attendance, an invoice to pay, a direct-debit family.
    created += seed_history()
    from citoyens.demo_dashboard import seed_dashboard

    # A document expiring soon and a question from the services: every dashboard card.
    created += seed_dashboard()
    # A family's reply on its document under review; the APS's message to its families.
    return created + seed_family_reply() + seed_messages()


__all__ = ["seed", "PARENT", "AGENT", "ADMIN", "User"]
