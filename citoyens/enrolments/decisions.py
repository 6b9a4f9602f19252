"""Staff decisions on enrolments, and staff enrolling a child.

Plain functions (no HTTP, no templates). A decision goes through the enrolment's request
(`requests.operations.change_status`), whose handlers mirror the status onto the
enrolment; the family is e-mailed each time. Each function flushes; the caller commits
or rolls back.
"""

from __future__ import annotations

from datetime import date

from flask import current_app
from sqlalchemy import select

from citoyens import audit
from citoyens.enrolments.models import ENROLMENT_STATUSES, Enrolment
from citoyens.enrolments.staff import enrolment_for_staff, is_place_request, school_years
from citoyens.extensions import db
from citoyens.mail import absolute_url
from citoyens.requests import operations as request_ops
from citoyens.requests.models import RequestEvent
from citoyens.requests.rules import queue_services
from citoyens.services.models import Activity

try:
    # Importing the enrolments' operations registers the handlers that mirror a request's
    # status onto its enrolment; decisions taken here need them.
    from citoyens.enrolments import operations as enrolment_ops
except ImportError:  # a build without the parent flow yet
    enrolment_ops = None

# Request status reached by each staff decision, and the enrolment status it mirrors.
DECISIONS = {"accepted": "accepted", "refused": "refused", "waiting_list": "waiting_list"}
STAFF_ENROLMENT_MESSAGE = "Inscription faite par le service"
REFUSAL_REASON_MISSING = "Indiquez le motif du refus : il sera envoyé à la famille."
WAITING_LIST_ONLY_FOR_PLACES = "La liste d'attente ne concerne que les demandes de place."


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
