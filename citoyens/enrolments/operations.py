"""Enrolment verbs: enrol a child, and follow the staff's decision on its request.

`enrol` flushes and audits; the caller commits (or rolls back on EnrolmentError).
The decision and status handlers registered here keep `Enrolment.status` in line
with its request, inside the deciding transaction.
"""

from __future__ import annotations

from datetime import date

from flask import current_app, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.database import utcnow
from citoyens.documents.operations import gather_for_enrolment
from citoyens.documents.rules import active_child, today_in_paris
from citoyens.enrolments import rules
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.requests.operations import (
    family_recipients,
    on_decision,
    on_status_change,
    open_request,
)
from citoyens.services.models import Activity, SchoolYear, Service
from citoyens.services.rules import open_window

COMMENTS_MAX_LENGTH = 2000
DAYS_PER_WEEK = (1, 5)
HOURS_PER_WEEK = (1, 55)
# Request status → enrolment status, for the changes that are not a decision.
MIRRORED_STATUSES = {"waiting_list": "waiting_list", "cancelled": "cancelled"}


class EnrolmentError(ValueError):
    """The enrolment cannot be made; `problems` says why, in French sentences."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


def _duplicate_message(child, service: Service, school_year: SchoolYear) -> str:
    return (
        f"{child.first_name} a déjà une inscription à {service.name} pour {school_year.name} : "
        "suivez la demande en cours dans « Inscriptions »."
    )


def place_problems(place: dict, today: date) -> list[str]:
    """The multi-accueil's place request: start date, days and hours per week, comments."""
    problems = []
    start = place.get("wished_start_on")
    if not isinstance(start, date):
        problems.append("Indiquez la date d'entrée souhaitée.")
    elif start < today:
        problems.append("La date d'entrée souhaitée ne peut pas être déjà passée.")
    days = place.get("days_per_week")
    if not isinstance(days, int) or not DAYS_PER_WEEK[0] <= days <= DAYS_PER_WEEK[1]:
        problems.append("Indiquez un nombre de jours par semaine entre 1 et 5.")
    hours = place.get("hours_per_week")
    if not isinstance(hours, int) or not HOURS_PER_WEEK[0] <= hours <= HOURS_PER_WEEK[1]:
        problems.append("Indiquez un nombre d'heures par semaine entre 1 et 55.")
    comments = place.get("comments") or ""
    if len(comments) > COMMENTS_MAX_LENGTH:
        problems.append("Les commentaires ne peuvent pas dépasser 2000 caractères.")
    return problems


def _summary(activities: list[Activity], enrolment: Enrolment) -> str:
    """What the family asked for, as the first line of the request's history."""
    lines = []
    if activities:
        lines.append("Activités : " + ", ".join(a.name for a in activities) + ".")
    if enrolment.wished_start_on:
        lines.append(
            f"Entrée souhaitée le {enrolment.wished_start_on.strftime('%d/%m/%Y')}, "
            f"{enrolment.days_per_week} jour(s) et {enrolment.hours_per_week} heure(s) "
            "par semaine."
        )
    if enrolment.comments:
        lines.append(f"Commentaires : {enrolment.comments}")
    return "\n".join(lines)


def enrol(
    household_id: int,
    child_id: int,
    service_id: int,
    school_year_id: int,
    activity_ids: list[int],
    *,
    actor,
    today: date | None = None,
    place: dict | None = None,
    by_staff: bool = False,
) -> Enrolment:
    """Enrol an active child of the household; the enrolment waits for the service's decision.

    Checks eligibility and duplicates always; the enrolment window and the required
    documents unless staff enrol the child themselves (`by_staff`). Opens the request
    the family follows, tells the service's mailbox (and the family, when it sent it).
    Raises EnrolmentError with every problem found; nothing is written then.
    """
    today = today or today_in_paris()
    child = active_child(household_id, child_id)
    service = db.session.scalar(
        select(Service).where(Service.id == service_id, Service.active.is_(True))
    )
    school_year = db.session.get(SchoolYear, school_year_id)
    unknown = []
    if child is None:
        unknown.append("Cet enfant ne fait pas partie du foyer.")
    if service is None:
        unknown.append("Ce service n'existe pas ou n'est plus proposé.")
    if school_year is None:
        unknown.append("Cette année scolaire n'existe pas.")
    if unknown:
        raise EnrolmentError(unknown)

    problems = rules.eligibility_problems(child, service, school_year)
    if rules.duplicate(child.id, service.id, school_year.id) is not None:
        problems.append(_duplicate_message(child, service, school_year))
    if not by_staff:
        if open_window(service.id, school_year.id, today) is None:
            window = rules.enrolment_window(service.id, school_year.id)
            problems.append(rules.window_problem(window, service, school_year, today))
        missing = rules.missing_documents(household_id, child.id, service, school_year, today)
        if missing:
            problems.append(
                "Documents à fournir avant d'envoyer la demande : "
                + rules.documents_sentence(missing, child.first_name)
                + "."
            )

    wanted = list(dict.fromkeys(int(i) for i in activity_ids or []))
    activities = []
    if wanted:
        activities = list(
            db.session.scalars(
                select(Activity)
                .where(
                    Activity.id.in_(wanted),
                    Activity.service_id == service.id,
                    Activity.active.is_(True),
                )
                .order_by(Activity.start_time, Activity.name, Activity.id)
            )
        )
        if len(activities) != len(wanted):
            problems.append("Une des activités choisies n'est pas proposée par ce service.")
    elif not service.place_request:
        problems.append("Choisissez au moins une activité.")

    place = dict(place or {}) if service.place_request else {}
    if service.place_request:
        problems.extend(place_problems(place, today))
    if problems:
        raise EnrolmentError(problems)

    enrolment = Enrolment(
        household_id=household_id,
        child_id=child.id,
        service_id=service.id,
        school_year_id=school_year.id,
        status="pending",
        created_by_id=getattr(actor, "id", None),
        wished_start_on=place.get("wished_start_on"),
        days_per_week=place.get("days_per_week"),
        hours_per_week=place.get("hours_per_week"),
        comments=(place.get("comments") or "").strip() or None,
        activities=[EnrolmentActivity(activity_id=a.id) for a in activities],
    )
    try:
        # The partial unique index decides between two requests sent at the same instant.
        with db.session.begin_nested():
            db.session.add(enrolment)
            db.session.flush()
    except IntegrityError:
        raise EnrolmentError([_duplicate_message(child, service, school_year)]) from None

    kind = "place_request" if service.place_request else "enrolment"
    what = "Demande de place" if service.place_request else "Inscription"
    request = open_request(
        kind,
        household_id,
        f"{what} de {child.full_name} — {service.name} {school_year.name}",
        actor=actor,
        service_id=service.id,
        person_id=child.id,
        message=_summary(activities, enrolment) or None,
    )
    enrolment.request_id = request.id
    db.session.flush()
    # The documents it requires, still to check, are checked with it: one review request.
    gather_for_enrolment(
        request,
        [t.id for t in rules.required_types(service.id)],
        child.id,
        actor=actor,
    )
    audit.record(
        "enrolment.created",
        actor=actor,
        target=f"enrolment:{enrolment.id}",
        details=f"service:{service.code} year:{school_year.name}"
        + (" by_staff" if by_staff else ""),
    )
    _notify_service(enrolment, request, activities, by_staff=by_staff)
    if not by_staff:
        _notify_family(enrolment, request, activities)
    return enrolment


# --- Decisions, from the request -------------------------------------------------------------


def enrolment_for_request(request) -> Enrolment | None:
    return db.session.scalar(select(Enrolment).where(Enrolment.request_id == request.id))


@on_decision("enrolment")
@on_decision("place_request")
def _decide(request, accepted: bool, actor) -> None:
    """Staff accepted or refused the request: the enrolment follows (reservations open on
    an accepted one)."""
    enrolment = enrolment_for_request(request)
    if enrolment is None:
        return
    enrolment.status = "accepted" if accepted else "refused"
    enrolment.decided_at = utcnow()
    enrolment.decided_by_id = getattr(actor, "id", None)
    audit.record(
        "enrolment.decided",
        actor=actor,
        target=f"enrolment:{enrolment.id}",
        details=enrolment.status,
    )


@on_status_change("enrolment")
@on_status_change("place_request")
def _mirror_status(request, from_status: str, to_status: str, actor) -> None:
    """Waiting list and cancellation (by the family or staff) show on the enrolment too;
    a cancelled one frees the place for a new enrolment."""
    if to_status not in MIRRORED_STATUSES:
        return
    enrolment = enrolment_for_request(request)
    if enrolment is None:
        return
    enrolment.status = MIRRORED_STATUSES[to_status]
    audit.record(
        "enrolment.status",
        actor=actor,
        target=f"enrolment:{enrolment.id}",
        details=enrolment.status,
    )


# --- Who is told -------------------------------------------------------------------------------


def _link(endpoint: str, **values) -> str:
    """An absolute link for an e-mail; PUBLIC_URL behind a proxy, else this host.

    Outside a request (CLI, a worker) without PUBLIC_URL, the path alone.
    """
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    try:
        return url_for(endpoint, **values, _external=True)
    except RuntimeError:
        return url_for_path(endpoint, **values)


def url_for_path(endpoint: str, **values) -> str:
    adapter = current_app.url_map.bind("localhost")
    return adapter.build(endpoint, values)


def _mail_context(enrolment: Enrolment, activities: list[Activity]) -> dict:
    return {
        "child_name": enrolment.child.full_name,
        "service_name": enrolment.service.name,
        "school_year": enrolment.school_year.name,
        "place_request": enrolment.service.place_request,
        "activities": [a.name for a in activities],
        "wished_start_on": enrolment.wished_start_on,
        "days_per_week": enrolment.days_per_week,
        "hours_per_week": enrolment.hours_per_week,
    }


def _notify_service(enrolment: Enrolment, request, activities, *, by_staff: bool) -> None:
    """The service's mailbox hears of a new enrolment; the details stay in the portal."""
    from citoyens.mail import send_mail
    from citoyens.requests.operations import service_recipients

    endpoint = "admin.request" if "admin.request" in current_app.view_functions else None
    link = _link(endpoint, request_id=request.id) if endpoint else None
    for email in service_recipients(request):
        send_mail(
            "enrolment-new",
            email,
            " ".join(f"Nouvelle demande : {request.title}".split())[:200],
            "enrolment_new",
            request_title=request.title,
            by_staff=by_staff,
            link=link,
            **_mail_context(enrolment, activities),
        )


def _notify_family(enrolment: Enrolment, request, activities) -> None:
    from citoyens.mail import send_mail

    link = _link("enrolments.show", enrolment_id=enrolment.id)
    for email in family_recipients(enrolment.household_id):
        send_mail(
            "enrolment-sent",
            email,
            "Votre demande d'inscription est envoyée",
            "enrolment_sent",
            reply_to=enrolment.service.mailbox,
            request_title=request.title,
            link=link,
            **_mail_context(enrolment, activities),
        )
