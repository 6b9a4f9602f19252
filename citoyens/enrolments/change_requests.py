"""A family asks to change its accepted enrolment (« Demander une modification »): end it
at a date, add or remove an activity, change school or class. The ask is a request of
kind "enrolment_change" in the service's queue; staff accepting it apply the change with
the rules of `changes` (dates checked again then, as staff); a refusal says why.

Flushes; the caller commits.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from citoyens.documents.rules import today_in_paris
from citoyens.enrolments import changes
from citoyens.enrolments.changes import EnrolmentChangeError
from citoyens.enrolments.models import Enrolment, EnrolmentChangeRequest
from citoyens.enrolments.rules import date_fr
from citoyens.extensions import db
from citoyens.requests.models import OPEN_STATUSES, Request
from citoyens.requests.operations import (
    RequestError,
    on_decision,
    open_request,
    service_recipients,
)
from citoyens.services.models import CLASS_LEVELS, Activity, School

ALREADY_ASKED = (
    "Une demande de modification de cette inscription est déjà en cours : "
    "suivez-la dans « Demandes »."
)


def _ids(values) -> str | None:
    return ",".join(str(int(v)) for v in sorted(set(values or ()))) or None


def _parse(ids: str | None) -> list[int]:
    return [int(v) for v in (ids or "").split(",") if v]


def open_change_request(enrolment_id: int) -> Request | None:
    """The family's change request still waiting for staff on this enrolment, if any."""
    return db.session.scalar(
        select(Request)
        .join(EnrolmentChangeRequest, EnrolmentChangeRequest.request_id == Request.id)
        .where(
            EnrolmentChangeRequest.enrolment_id == enrolment_id,
            Request.status.in_(OPEN_STATUSES),
        )
        .limit(1)
    )


def _describe(enrolment: Enrolment, ask: EnrolmentChangeRequest) -> str:
    """The ask in French: the first line of the request's history."""
    if ask.action == "end":
        return f"Terminer l'inscription : dernier jour le {date_fr(ask.ends_on)}."
    if ask.action == "school":
        school = db.session.get(School, ask.school_id) if ask.school_id else None
        return (
            f"Nouvelle scolarité : {school.name if school else 'sans école'}"
            f"{', ' + ask.class_level if ask.class_level else ''}."
        )
    wanted = _parse(ask.add_ids) + _parse(ask.remove_ids)
    names = dict(
        db.session.execute(select(Activity.id, Activity.name).where(Activity.id.in_(wanted))).all()
    )
    parts = []
    if ask.add_ids:
        parts.append("Ajouter : " + ", ".join(names[i] for i in _parse(ask.add_ids)) + ".")
    if ask.remove_ids:
        parts.append(
            "Retirer : "
            + ", ".join(names[i] for i in _parse(ask.remove_ids))
            + (f" (après le {date_fr(ask.ends_on)})." if ask.ends_on else " (dès que possible).")
        )
    return " ".join(parts)


def _check(enrolment: Enrolment, ask: EnrolmentChangeRequest, today: date) -> None:
    """The same checks as the change itself, as a family (dates not before today)."""
    if ask.action == "end" or (ask.action == "activities" and ask.remove_ids and ask.ends_on):
        changes.check_date(enrolment, ask.ends_on, by_staff=False, today=today)
    if ask.action == "activities":
        current = {link.activity_id for link in enrolment.activities}
        add, remove = set(_parse(ask.add_ids)), set(_parse(ask.remove_ids))
        if not add and not remove:
            raise EnrolmentChangeError("Choisissez une activité à ajouter ou à retirer.")
        offered = {a.id for a in changes.other_activities(enrolment)}
        if not add <= offered or not remove <= current:
            raise EnrolmentChangeError("Choisissez des activités de la liste.")
        if not (current | add) - remove and not enrolment.service.place_request:
            raise EnrolmentChangeError(
                "L'inscription doit garder au moins une activité : pour tout arrêter, "
                "demandez la fin de l'inscription."
            )
    if ask.action == "school":
        if ask.class_level is not None and ask.class_level not in CLASS_LEVELS:
            raise EnrolmentChangeError("Choisissez une classe de la liste.")
        if ask.school_id is not None:
            school = db.session.get(School, ask.school_id)
            if school is None or not school.active:
                raise EnrolmentChangeError("Choisissez une école de la liste.")


def request_change(
    enrolment: Enrolment,
    action: str,
    *,
    actor,
    ends_on: date | None = None,
    add_ids=(),
    remove_ids=(),
    school_id: int | None = None,
    class_level: str | None = None,
    message: str | None = None,
    today: date | None = None,
) -> Request:
    """Open the family's change request; EnrolmentChangeError (French) when refused."""
    today = today or today_in_paris()
    if enrolment.status != "accepted":
        raise EnrolmentChangeError("Seule une inscription acceptée et en cours peut être modifiée.")
    if open_change_request(enrolment.id) is not None:
        raise EnrolmentChangeError(ALREADY_ASKED)
    ask = EnrolmentChangeRequest(
        enrolment_id=enrolment.id,
        action=action,
        ends_on=ends_on,
        add_ids=_ids(add_ids),
        remove_ids=_ids(remove_ids),
        school_id=school_id,
        class_level=class_level or None,
    )
    _check(enrolment, ask, today)
    text = _describe(enrolment, ask)
    if message:
        text += f"\nMessage de la famille : {message.strip()}"
    try:
        # The partial unique index decides between two asks sent at the same instant.
        with db.session.begin_nested():
            request = open_request(
                "enrolment_change",
                enrolment.household_id,
                f"Modification de l'inscription de {enrolment.child.full_name} — "
                f"{enrolment.service.name} {enrolment.school_year.name}",
                actor=actor,
                service_id=enrolment.service_id,
                person_id=enrolment.child_id,
                message=text,
            )
    except IntegrityError:
        raise EnrolmentChangeError(ALREADY_ASKED) from None
    ask.request_id = request.id
    db.session.add(ask)
    db.session.flush()
    _tell_service(request)
    return request


def _tell_service(request: Request) -> None:
    """The service's mailbox hears of the ask; the details stay in the back office."""
    from citoyens.mail import absolute_url, send_mail

    link = absolute_url("admin.request", request_id=request.id)
    for email in service_recipients(request):
        send_mail(
            "enrolment-change-request",
            email,
            f"Demande de modification : {request.title}"[:200],
            "enrolment_change_request",
            request_title=request.title,
            link=link,
        )


@on_decision("enrolment_change")
def _decide(request, accepted: bool, actor) -> None:
    """Accepted: the change is applied as staff would (dates checked again); a change the
    rules refuse now (the enrolment ended meanwhile, a month invoiced) refuses the decision."""
    if not accepted:
        return
    ask = db.session.get(EnrolmentChangeRequest, request.id)
    enrolment = changes.enrolment_for_change(ask.enrolment_id) if ask else None
    if enrolment is None:
        raise RequestError("Cette inscription n'existe plus.")
    try:
        if ask.action == "end":
            changes.end_enrolment(enrolment, ask.ends_on, actor=actor)
        elif ask.action == "activities":
            changes.change_activities(
                enrolment,
                _parse(ask.add_ids),
                _parse(ask.remove_ids),
                actor=actor,
                on_date=ask.ends_on,
            )
        else:
            changes.change_school_class(enrolment, ask.school_id, ask.class_level, actor=actor)
    except EnrolmentChangeError as exc:
        raise RequestError(f"La modification ne peut pas être appliquée : {exc}") from None
