"""Household verbs, callable from views, CLI and tests alike (no request parsing here).

Each verb flushes, records a HouseholdChange (field names only, never values: some
are health data) and an audit event; the caller commits.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.households import rules
from citoyens.households.models import (
    Household,
    HouseholdChange,
    HouseholdMember,
    Person,
)
from citoyens.mail import send_mail
from citoyens.requests.operations import on_decision, open_request


class HouseholdError(ValueError):
    """An action the rules refuse; the message is French, shown to the family as is."""


def _external_url(endpoint: str, **values) -> str:
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def _same(old, new) -> bool:
    return (None if old == "" else old) == (None if new == "" else new)


def _apply(target, data: dict, names: Iterable[str]) -> list[str]:
    """Set the given fields on `target`; return the names of those whose value changed."""
    changed = []
    for name in names:
        if name in data and not _same(getattr(target, name), data[name]):
            setattr(target, name, data[name])
            changed.append(name)
    return changed


def record_change(
    household_id: int,
    action: str,
    *,
    actor,
    person_id: int | None = None,
    fields: Iterable[str] = (),
) -> HouseholdChange:
    """One line of the household's history: who, when, what kind, which fields (names)."""
    change = HouseholdChange(
        household_id=household_id,
        person_id=person_id,
        actor_id=getattr(actor, "id", None),
        action=action,
        fields=",".join(fields)[:500] or None,
    )
    db.session.add(change)
    return change


# --- The household itself -------------------------------------------------------------------


def update_household(
    household: Household, data: dict, *, actor, fields: Iterable[str] = rules.HOUSEHOLD_FIELDS
) -> list[str]:
    """Change address or paperless flag (what a family may); return the names of the fields
    that changed. The quotient familial only through `set_family_quotient` (staff)."""
    changed = _apply(household, data, fields)
    if changed:
        record_change(household.id, "updated", actor=actor, fields=changed)
        audit.record(
            "household.updated",
            actor=actor,
            target=f"household:{household.id}",
            details=",".join(changed),
        )
    db.session.flush()
    return changed


def set_family_quotient(household: Household, value: int | None, *, actor) -> list[str]:
    """Staff correct the QF (e.g. from the CAF attestation); the history says who."""
    return update_household(
        household, {"family_quotient": value}, actor=actor, fields=("family_quotient",)
    )


def confirm_civil_status(household: Household, *, actor) -> None:
    """The family says the civil status of its members is right ("J'ai vérifié")."""
    household.civil_status_checked_at = utcnow()
    record_change(household.id, "civil_status_checked", actor=actor)
    audit.record("household.civil-status-checked", actor=actor, target=f"household:{household.id}")
    db.session.flush()


# --- Members -------------------------------------------------------------------------------


def _split(role: str) -> tuple[list[str], list[str]]:
    allowed = rules.EDITABLE_FIELDS[role]
    person_fields = [n for n in allowed if n not in rules.MEMBERSHIP_FIELDS]
    membership_fields = [n for n in allowed if n in rules.MEMBERSHIP_FIELDS]
    return person_fields, membership_fields


def _sync_account_names(person: Person) -> None:
    """An adult's account shows the same name as their card in the household."""
    from citoyens.accounts.models import User

    for user in db.session.scalars(select(User).where(User.person_id == person.id)):
        user.first_name, user.last_name = person.first_name, person.last_name


def add_member(household_id: int, role: str, data: dict, *, actor) -> HouseholdMember:
    """Add a new adult, child or contact; only the fields of that role are read from `data`."""
    if role not in rules.EDITABLE_FIELDS:
        raise ValueError(f"unknown role {role!r}")
    person_fields, membership_fields = _split(role)
    person = Person()
    membership = HouseholdMember(household_id=household_id, person=person, role=role)
    given = []
    for target, names in ((person, person_fields), (membership, membership_fields)):
        for name in names:
            if name in data:
                setattr(target, name, None if data[name] == "" else data[name])
                if data[name] not in (None, "", False):
                    given.append(name)
    db.session.add_all([person, membership])
    db.session.flush()
    record_change(household_id, "created", actor=actor, person_id=person.id, fields=given)
    audit.record(
        "household.member-added",
        actor=actor,
        target=f"household:{household_id}",
        details=f"person:{person.id} role:{role}",
    )
    return membership


def update_member(membership: HouseholdMember, data: dict, *, actor) -> list[str]:
    """Edit a member; return the names of the fields that changed.

    A person shared by two households (separated parents) is one row: the change is
    recorded in the history of every household they belong to.
    """
    person_fields, membership_fields = _split(membership.role)
    person = membership.person
    person_changed = _apply(person, data, person_fields)
    membership_changed = _apply(membership, data, membership_fields)
    if not (person_changed or membership_changed):
        return []
    if {"first_name", "last_name"} & set(person_changed):
        _sync_account_names(person)
    record_change(
        membership.household_id,
        "updated",
        actor=actor,
        person_id=person.id,
        fields=person_changed + membership_changed,
    )
    if person_changed:
        others = db.session.scalars(
            select(HouseholdMember.household_id).where(
                HouseholdMember.person_id == person.id,
                HouseholdMember.left_at.is_(None),
                HouseholdMember.household_id != membership.household_id,
            )
        )
        for household_id in others:
            record_change(
                household_id, "updated", actor=actor, person_id=person.id, fields=person_changed
            )
    audit.record(
        "household.member-updated",
        actor=actor,
        target=f"person:{person.id}",
        details=",".join(person_changed + membership_changed),
    )
    db.session.flush()
    return person_changed + membership_changed


# --- Removal: parents ask, staff decide --------------------------------------------------------


def request_removal(membership: HouseholdMember, *, actor, reason: str | None = None):
    """Open a removal request for the member and tell the services' mailboxes.

    Parents never delete anyone: staff accept or refuse (see `_decide_removal`).
    """
    from citoyens.services.rules import mailboxes_for_household

    person = membership.person
    household_id = membership.household_id
    if getattr(actor, "person_id", None) == person.id:
        raise HouseholdError(
            "Vous ne pouvez pas demander votre propre retrait : vous êtes titulaire de cet "
            "espace, et le foyer a besoin de son responsable pour rester joignable. "
            "Pour quitter le foyer, contactez la mairie."
        )
    if rules.open_removal_request(household_id, person.id) is not None:
        raise HouseholdError(
            f"Une demande de retrait de {person.full_name} est déjà en cours : "
            "vous pouvez la suivre dans « Demandes »."
        )
    try:
        with db.session.begin_nested():
            request = open_request(
                "member_removal",
                household_id,
                f"Retirer {person.full_name} du foyer",
                actor=actor,
                person_id=person.id,
                message=reason or None,
            )
    except IntegrityError:  # the same request, sent at the same instant by the other parent
        raise HouseholdError(
            f"Une demande de retrait de {person.full_name} est déjà en cours : "
            "vous pouvez la suivre dans « Demandes »."
        ) from None
    record_change(household_id, "removal_requested", actor=actor, person_id=person.id)
    household = db.session.get(Household, household_id)
    # The decision is taken on the request's page when the back office has one. What the
    # family wrote stays in the portal: the mail names the person and links, nothing more.
    if "admin.request" in current_app.view_functions:
        link = _external_url("admin.request", request_id=request.id)
    else:
        link = _external_url("admin.household", household_id=household_id)
    for mailbox in mailboxes_for_household(household_id):
        send_mail(
            "household-removal-request",
            mailbox,
            f"Demande de retrait : {person.full_name}",
            "household_removal_request",
            person_name=person.full_name,
            role_label=rules.ROLE_LABELS[membership.role].lower(),
            household_ref=household.external_ref or f"n° {household_id}",
            requester=getattr(actor, "full_name", ""),
            with_reason=bool(reason),
            link=link,
        )
    db.session.flush()
    return request


@on_decision("member_removal")
def _decide_removal(request, accepted: bool, actor) -> None:
    """Accepted: the membership ends (its row stays, with left_at) and the person's
    accounts lose access to this household. Refused: nothing changes."""
    from citoyens.accounts.models import User

    if not accepted or request.person_id is None:
        return
    membership = db.session.scalar(
        select(HouseholdMember).where(
            HouseholdMember.household_id == request.household_id,
            HouseholdMember.person_id == request.person_id,
            HouseholdMember.left_at.is_(None),
        )
    )
    if membership is None:
        return
    membership.left_at = utcnow()
    record_change(request.household_id, "removed", actor=actor, person_id=request.person_id)
    for user in db.session.scalars(
        select(User).where(
            User.household_id == request.household_id, User.person_id == request.person_id
        )
    ):
        user.household_id = None
        user.end_all_sessions()
    audit.record(
        "household.member-removed",
        actor=actor,
        target=f"household:{request.household_id}",
        details=f"person:{request.person_id} request:{request.id}",
    )
