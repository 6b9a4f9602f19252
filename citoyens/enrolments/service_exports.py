"""The families and children of a service for a school year, for its staff. Registered as
the export "familles" (`citoyens.export_jobs`).

- Sheet of the children: one row per child enrolled (accepted enrolments; pending ones
  too when asked, and the sheet's title says which): name, birth date, class, school,
  allergies, PAI, diet, consents, the activities chosen, and the responsible adults of the
  household that enrolled the child (names, phones, e-mails).
- Sheet « Contacts » (XLSX only: a CSV holds one table): the household's other contacts,
  one row per child and contact, with what they may do (pick the child up, be called in
  an emergency).

Health data (allergies, PAI, diet) only reaches staff of the service the child is
enrolled in, by construction: the view checks the service is theirs. Four queries per
sheet whatever the number of children (enrolments, activities, adults, contacts), plus
one COUNT to decide whether the file is streamed or built by the worker.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select

from citoyens import export_jobs
from citoyens.enrolments.models import ENROLMENT_STATUSES, Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.forms import format_phone
from citoyens.households.models import HouseholdMember, Person
from citoyens.services.models import Activity, School, SchoolYear, Service
from citoyens.tabular import Sheet, slug

NAME = "familles"
ADULTS_IN_COLUMNS = 2  # the others share one column

CHILD_COLUMNS = [
    "Nom",
    "Prénom",
    "Date de naissance",
    "Classe",
    "École",
    "Allergies",
    "PAI",
    "Régime",
    "Droit à l'image",
    "Autorisation de sortie",
    "Inscription",
    "Activités",
]
for _n in range(1, ADULTS_IN_COLUMNS + 1):
    CHILD_COLUMNS += [f"Responsable {_n}", f"Téléphones {_n}", f"E-mail {_n}"]
CHILD_COLUMNS.append("Autres responsables")

CONTACT_COLUMNS = [
    "Nom de l'enfant",
    "Prénom de l'enfant",
    "Nom du contact",
    "Prénom du contact",
    "Lien avec l'enfant",
    "Peut venir chercher l'enfant",
    "À prévenir en urgence",
    "Téléphones",
    "E-mail",
]


@dataclass(frozen=True)
class Roster:
    """What to export: a service's enrolments of a school year (accepted, or also pending)."""

    service_id: int
    school_year_id: int
    pending: bool

    @classmethod
    def of(cls, params: dict) -> Roster:
        return cls(
            int(params["service_id"]), int(params["school_year_id"]), bool(params.get("pending"))
        )

    def params(self) -> dict:
        return {
            "service_id": self.service_id,
            "school_year_id": self.school_year_id,
            "pending": self.pending,
        }

    @property
    def statuses(self) -> tuple[str, ...]:
        return ("accepted", "pending") if self.pending else ("accepted",)

    @property
    def children_title(self) -> str:
        return "Inscrits acceptés et en attente" if self.pending else "Inscrits acceptés"

    def enrolments(self):
        """A select of the enrolments' ids, households and children (runs nothing itself)."""
        return select(Enrolment.id, Enrolment.household_id, Enrolment.child_id).where(
            Enrolment.service_id == self.service_id,
            Enrolment.school_year_id == self.school_year_id,
            Enrolment.status.in_(self.statuses),
        )


def count_rows(params: dict) -> int:
    """The rows of the children's sheet. One query."""
    listed = Roster.of(params).enrolments().subquery()
    return db.session.scalar(select(func.count()).select_from(listed)) or 0


def phones(person: Person) -> str:
    """ "06 12 34 56 78 (portable) ; 02 41 00 00 00 (domicile)"."""
    numbers = [
        (person.mobile_phone, "portable"),
        (person.home_phone, "domicile"),
        (person.work_phone, "travail"),
    ]
    return " ; ".join(f"{format_phone(value)} ({kind})" for value, kind in numbers if value)


def _members(roster: Roster, role: str) -> dict[int, list[tuple[HouseholdMember, Person]]]:
    """The current members of that role of the households concerned, by household. One query."""
    households = roster.enrolments().with_only_columns(Enrolment.household_id)
    query = (
        select(HouseholdMember, Person)
        .join(Person, Person.id == HouseholdMember.person_id)
        .where(
            HouseholdMember.household_id.in_(households),
            HouseholdMember.role == role,
            HouseholdMember.left_at.is_(None),
        )
        .order_by(HouseholdMember.household_id, HouseholdMember.id)
    )
    found = defaultdict(list)
    for member, person in db.session.execute(query):
        found[member.household_id].append((member, person))
    return found


def _enrolled(roster: Roster):
    """(enrolment, child, school name) in name order. One query."""
    ids = roster.enrolments().with_only_columns(Enrolment.id)
    return db.session.execute(
        select(Enrolment, Person, School.name)
        .join(Person, Person.id == Enrolment.child_id)
        .outerjoin(School, School.id == Person.school_id)
        .where(Enrolment.id.in_(ids))
        .order_by(Person.last_name, Person.first_name, Person.id, Enrolment.id)
    ).all()


def _activities(roster: Roster) -> dict[int, list[str]]:
    ids = roster.enrolments().with_only_columns(Enrolment.id)
    found = defaultdict(list)
    rows = db.session.execute(
        select(EnrolmentActivity.enrolment_id, Activity.name)
        .join(Activity, Activity.id == EnrolmentActivity.activity_id)
        .where(EnrolmentActivity.enrolment_id.in_(ids))
        .order_by(Activity.start_time, Activity.name, Activity.id)
    )
    for enrolment_id, name in rows:
        found[enrolment_id].append(name)
    return found


def _children_rows(roster: Roster) -> Iterator[list]:
    enrolled = _enrolled(roster)
    activities = _activities(roster)
    adults = _members(roster, "adult")
    for enrolment, child, school in enrolled:
        row = [
            child.last_name,
            child.first_name,
            child.birth_date,
            child.class_level,
            school,
            child.allergies,
            bool(child.pai),
            child.diet,
            bool(child.image_rights),
            bool(child.outing_consent),
            ENROLMENT_STATUSES.get(enrolment.status, enrolment.status),
            ", ".join(activities.get(enrolment.id, [])),
        ]
        household_adults = [person for _member, person in adults.get(enrolment.household_id, [])]
        for index in range(ADULTS_IN_COLUMNS):
            if index < len(household_adults):
                adult = household_adults[index]
                row += [adult.full_name, phones(adult), adult.email]
            else:
                row += [None, None, None]
        others = household_adults[ADULTS_IN_COLUMNS:]
        row.append(
            " ; ".join(
                ", ".join(part for part in (a.full_name, phones(a), a.email or "") if part)
                for a in others
            )
        )
        yield row


def _contact_rows(roster: Roster) -> Iterator[list]:
    enrolled = _enrolled(roster)
    contacts = _members(roster, "contact")
    for enrolment, child, _school in enrolled:
        for member, person in contacts.get(enrolment.household_id, []):
            yield [
                child.last_name,
                child.first_name,
                person.last_name,
                person.first_name,
                member.relationship_label,
                bool(member.can_pick_up),
                bool(member.emergency_contact),
                phones(person),
                person.email,
            ]


def sheets(params: dict) -> list[Sheet]:
    """The children, then their contacts (rows read as the file is written)."""
    roster = Roster.of(params)
    return [
        Sheet(roster.children_title, CHILD_COLUMNS, _children_rows(roster)),
        Sheet("Contacts", CONTACT_COLUMNS, _contact_rows(roster)),
    ]


def _names(roster: Roster) -> tuple[str, str]:
    service = select(Service.name).where(Service.id == roster.service_id).scalar_subquery()
    year = select(SchoolYear.name).where(SchoolYear.id == roster.school_year_id).scalar_subquery()
    row = db.session.execute(select(service, year)).one()
    return row[0] or "?", row[1] or "?"


def title(params: dict) -> str:
    roster = Roster.of(params)
    service, year = _names(roster)
    which = "acceptées et en attente" if roster.pending else "acceptées"
    return f"Familles et enfants — {service} {year} (inscriptions {which})"


def filename(params: dict) -> str:
    roster = Roster.of(params)
    service, year = _names(roster)
    return f"familles-{slug(service, 'service')[:40]}-{year}"


export_jobs.register(NAME, sheets=sheets, count=count_rows, title=title, filename=filename)
