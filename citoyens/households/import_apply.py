"""Writing a families import plan (issue 13): one transaction per family, all its lines or none.

`apply_import(plan, actor)` writes each "create" or "update" family of an `ImportPlan` in
its own `write_transaction`: a family whose reference was taken meanwhile, or whose
e-mail became another account's, is reported as failed and nothing of it is written; the
other families go in. Adults with an e-mail get a parent account without a password
(`User.imported`): no e-mail at import, they activate it through « Mot de passe oublié »
or the welcome e-mail (`households.welcome`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.accounts.models import User
from citoyens.database import utcnow
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.households.import_plan import FamilyPlan, ImportPlan
from citoyens.households.models import Household, HouseholdChange, HouseholdMember, Person
from citoyens.households.rules import active_membership
from citoyens.transactions import write_transaction


class ImportConflict(Exception):
    """The database changed since the plan: this family is not written."""


@dataclass
class ApplyResult:
    created: int = 0
    updated: int = 0
    accounts: int = 0
    enrolments: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (reference, French reason)

    def summary(self) -> str:
        text = (
            f"{self.created} famille(s) créée(s), {self.updated} mise(s) à jour, "
            f"{self.accounts} compte(s) famille créé(s) sans mot de passe, "
            f"{self.enrolments} inscription(s) acceptée(s)."
        )
        if self.failed:
            text += f" {len(self.failed)} famille(s) non importée(s)."
        return text


def apply_import(plan: ImportPlan, actor=None) -> ApplyResult:
    """Write every family the plan creates or updates, each in its own transaction."""
    result = ApplyResult()
    for family in plan.writable:
        try:
            counts = write_transaction(lambda f=family: _write_family(f, plan, actor))
        except ImportConflict as error:
            result.failed.append((family.reference, str(error)))
            continue
        except IntegrityError:
            result.failed.append(
                (family.reference, "Modifiée entre-temps (doublon) : relancez l'import.")
            )
            continue
        if family.household_id is None:
            result.created += 1
        else:
            result.updated += 1
        result.accounts += counts[0]
        result.enrolments += counts[1]
    return result


def _write_family(family: FamilyPlan, plan: ImportPlan, actor) -> tuple[int, int]:
    actor_id = getattr(actor, "id", None)
    existing = db.session.scalar(
        select(Household).where(Household.external_ref == family.reference)
    )
    if family.household_id is None:
        if existing is not None:
            raise ImportConflict("Créée entre-temps : relancez l'import pour la mettre à jour.")
        household = Household(external_ref=family.reference, **family.household_fields)
        db.session.add(household)
        db.session.flush()
    else:
        if existing is None or existing.id != family.household_id:
            raise ImportConflict("Modifiée entre-temps : relancez l'import.")
        household = existing
        for name, value in family.household_fields.items():
            setattr(household, name, value)
    accounts = enrolments = 0
    changes: list[HouseholdChange] = []
    if family.household_id is not None and family.household_changes:
        changes.append(HouseholdChange(action="updated", fields=_names(family.household_fields)))
    for line in family.lines:
        if line.action == "unchanged":
            continue
        if line.person_id is None:
            person = Person(**line.fields)
            db.session.add(person)
            db.session.add(
                HouseholdMember(
                    household=household,
                    person=person,
                    role=line.role,
                    relationship_label=line.relationship_label,
                )
            )
            db.session.flush()
            changes.append(HouseholdChange(action="created", person_id=person.id))
        else:
            member = active_membership(household.id, line.person_id)
            if member is None:
                raise ImportConflict("Un membre a quitté le foyer entre-temps : relancez l'import.")
            person = member.person
            changed = [k for k, v in line.fields.items() if getattr(person, k) != v]
            for name in changed:
                setattr(person, name, line.fields[name])
            if line.relationship_label and member.relationship_label != line.relationship_label:
                member.relationship_label = line.relationship_label
                changed.append("relationship_label")
            if changed:
                changes.append(
                    HouseholdChange(action="updated", person_id=person.id, fields=",".join(changed))
                )
        if line.account_email:
            _create_account(line.account_email, household, person)
            accounts += 1
        enrolments += _enrol(line, household, person, plan.school_year_id, actor_id)
    for change in changes:
        change.household_id = household.id
        change.actor_id = actor_id
    db.session.add_all(changes)
    db.session.flush()
    audit.record(
        "families.imported",
        actor=actor,
        target=f"household:{household.id}",
        details=f"ref:{family.reference[:40]}",
    )
    return accounts, enrolments


def _names(fields: dict) -> str:
    return ",".join(fields)


def _create_account(email: str, household: Household, person: Person) -> None:
    taken = db.session.scalar(select(User.id).where(func.lower(User.email) == email))
    if taken is not None:
        raise ImportConflict(f"L'adresse e-mail {email} est devenue celle d'un autre compte.")
    db.session.add(
        User(
            email=email,
            password_hash=None,
            role="parent",
            first_name=person.first_name,
            last_name=person.last_name,
            household=household,
            person=person,
            imported=True,
        )
    )
    db.session.flush()


def _enrol(line, household: Household, person: Person, year_id, actor_id) -> int:
    """Accepted enrolments of the current school year the child does not have yet."""
    if not line.enrolments or year_id is None:
        return 0
    live = set(
        db.session.scalars(
            select(Enrolment.service_id).where(
                Enrolment.child_id == person.id,
                Enrolment.school_year_id == year_id,
                Enrolment.status.in_(("pending", "accepted", "waiting_list")),
            )
        )
    )
    made = 0
    now = utcnow()
    for wanted in line.enrolments:
        if wanted.service_id in live:
            continue
        enrolment = Enrolment(
            household_id=household.id,
            child_id=person.id,
            service_id=wanted.service_id,
            school_year_id=year_id,
            status="accepted",
            created_by_id=actor_id,
            decided_at=now,
            decided_by_id=actor_id,
            comments="Importée avec la famille.",
        )
        enrolment.activities = [EnrolmentActivity(activity_id=i) for i in wanted.activity_ids]
        db.session.add(enrolment)
        made += 1
    db.session.flush()
    return made
