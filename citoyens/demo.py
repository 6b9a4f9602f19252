"""Demo data for Chalonnes-sur-Loire. Every address is @example.org (DOMAIN.md)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.accounts.operations import create_staff, find_user
from citoyens.accounts.passwords import hash_password
from citoyens.core.models import Commune
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.services.models import Service, StaffService

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


def seed_services() -> int:
    """The four services of Chalonnes-sur-Loire, with @example.org mailboxes (DOMAIN.md)."""
    existing = set(db.session.scalars(select(Service.code)))
    created = 0
    for code, name, category, mailbox, description in DEMO_SERVICES:
        if code not in existing:
            db.session.add(
                Service(
                    code=code,
                    name=name,
                    category=category,
                    mailbox=mailbox,
                    description=description,
                )
            )
            created += 1
    db.session.flush()
    return created


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
        db.session.add(
            User(
                email=PARENT[0],
                password_hash=hash_password(PARENT[1]),
                role="parent",
                first_name=adult.first_name,
                last_name=adult.last_name,
                household=household,
                person=adult,
                confirmed_at=utcnow(),
                password_changed_at=utcnow(),
            )
        )
        created += 5
    created += seed_services()
    if find_user(AGENT[0]) is None:
        agent = create_staff(AGENT[0], "Nadia", "Agent", AGENT[1])
        for service in db.session.scalars(
            select(Service).where(Service.code.in_(("aps", "restauration")))
        ):
            db.session.add(StaffService(user_id=agent.id, service_id=service.id))
        created += 1
    from citoyens.documents.demo import seed_demo as seed_documents
    from citoyens.households.demo import seed_demo as seed_households
    from citoyens.requests.demo import seed_demo as seed_requests

    # Households first (schools, the demo family's details), then its documents, then requests.
    created += seed_households() + seed_documents() + seed_requests()
    if find_user(ADMIN[0]) is None:
        create_staff(ADMIN[0], "Paul", "Admin", ADMIN[1], admin=True)
        created += 1
    db.session.flush()
    return created


__all__ = ["seed", "PARENT", "AGENT", "ADMIN", "User"]
