"""What a families import plan reads from the database, once (`import_plan`): the
households of the file's references, accounts of its e-mails, schools, services with their
activities, the current school year and its live enrolments. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from citoyens.accounts.models import User
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember
from citoyens.services.models import School, Service
from citoyens.services.rules import current_school_year


@dataclass
class EnrolmentPlan:
    service_id: int
    activity_ids: list[int]
    label: str


@dataclass
class Lookup:
    """What the plan needs from the database, read once."""

    households: dict[str, Household]
    users_by_email: dict[str, User]
    account_person_ids: set[int]
    schools: dict[str, School]
    services: dict[str, Service]
    live_enrolments: set[tuple[int, int]]  # (child id, service id) in the current year
    school_year_id: int | None


def lookup_rows(references: set[str], emails: set[str], today: date) -> Lookup:
    from citoyens.enrolments.models import Enrolment

    households = {
        h.external_ref: h
        for h in db.session.scalars(
            select(Household)
            .options(selectinload(Household.memberships).joinedload(HouseholdMember.person))
            .where(Household.external_ref.in_(references))
        ).unique()
    }
    household_ids = [h.id for h in households.values()]
    users = list(db.session.scalars(select(User).where(func.lower(User.email).in_(emails))))
    account_person_ids = set(
        db.session.scalars(
            select(User.person_id).where(
                User.household_id.in_(household_ids), User.person_id.is_not(None)
            )
        )
    )
    schools = {s.name.casefold(): s for s in db.session.scalars(select(School))}
    services = {
        s.code.casefold(): s
        for s in db.session.scalars(select(Service).options(selectinload(Service.activities)))
    }
    year = current_school_year(today)
    live = set()
    if year is not None and household_ids:
        live = set(
            db.session.execute(
                select(Enrolment.child_id, Enrolment.service_id).where(
                    Enrolment.household_id.in_(household_ids),
                    Enrolment.school_year_id == year.id,
                    Enrolment.status.in_(("pending", "accepted", "waiting_list")),
                )
            ).all()
        )
    return Lookup(
        households=households,
        users_by_email={u.email.lower(): u for u in users},
        account_person_ids=account_person_ids,
        schools=schools,
        services=services,
        live_enrolments=live,
        school_year_id=year.id if year else None,
    )


def enrolments_of(cell: str, lookup: Lookup) -> tuple[list[EnrolmentPlan], list[str]]:
    """ "CANTINE|PERI:Accueil du matin" → one plan per service; reasons for what is unknown."""
    if not cell:
        return [], []
    if lookup.school_year_id is None:
        return [], ["Inscriptions : aucune année scolaire en cours n'est paramétrée."]
    wanted: dict[int, tuple[Service, list[int]]] = {}
    reasons = []
    for token in (t.strip() for t in cell.replace("+", "|").split("|")):
        if not token:
            continue
        code, _, activity_name = (part.strip() for part in token.partition(":"))
        service = lookup.services.get(code.casefold())
        if service is None or not service.active:
            reasons.append(f"Inscriptions : service « {code[:40]} » inconnu (code attendu).")
            continue
        active = [a for a in service.activities if a.active]
        if activity_name:
            chosen = [a for a in active if a.name.casefold() == activity_name.casefold()]
            if not chosen:
                reasons.append(
                    f"Inscriptions : activité « {activity_name[:60]} » inconnue au service "
                    f"{service.code}."
                )
                continue
        else:
            chosen = active
        _, ids = wanted.setdefault(service.id, (service, []))
        ids.extend(a.id for a in chosen if a.id not in ids)
    plans = [
        EnrolmentPlan(service_id, sorted(ids), service.name)
        for service_id, (service, ids) in wanted.items()
    ]
    return plans, reasons
