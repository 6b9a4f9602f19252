"""Request verbs: open, change status, message, note. Each flushes; the caller commits.

Domains that own a kind of request register what happens when staff decide
(`on_decision`): households end a membership on an accepted removal, documents
accept or refuse the file under review.

The staff and family verbs at the bottom wrap the core ones with who may do
what (a refusal needs its reason, a family writes only on an open request) and
with whom to tell by e-mail.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from citoyens import audit
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.mail import absolute_url
from citoyens.requests.models import (
    OPEN_STATUSES,
    REQUEST_KINDS,
    REQUEST_STATUSES,
    Request,
    RequestEvent,
)

# kind -> callback(request, accepted: bool, actor) run inside the same transaction.
_decision_handlers: dict[str, Callable] = {}

TRANSITIONS = {
    "sent": {"in_review", "waiting_list", "accepted", "refused", "cancelled"},
    "in_review": {"waiting_list", "accepted", "refused", "cancelled"},
    # Place requests (multi-accueil) wait for a free place after the commission.
    "waiting_list": {"accepted", "refused", "cancelled"},
    "accepted": set(),
    "refused": set(),
    "cancelled": set(),
}

# Only a place request (multi-accueil) waits for a free place after the commission.
WAITING_LIST_KINDS = frozenset({"place_request"})

# What staff may do from the back office (a family only cancels).
STAFF_STATUSES = ("in_review", "accepted", "refused")

MESSAGE_MAX_LENGTH = 2000


class RequestError(ValueError):
    """A change the request's current status does not allow; the message is French."""


def on_decision(kind: str):
    """Decorator: register what accepting or refusing a request of `kind` does.

    The handler runs in the deciding transaction; to refuse the decision it raises
    RequestError with a French message, and the caller rolls everything back.
    """

    def register(func):
        _decision_handlers[kind] = func
        return func

    return register


_status_handlers: dict[str, Callable] = {}


def on_status_change(kind: str):
    """Decorator: register a callback(request, from_status, to_status, actor) run on every
    status change of a request of `kind` (waiting list, cancellation...), after the
    decision handler and in the same transaction."""

    def register(func):
        _status_handlers[kind] = func
        return func

    return register


def open_request(
    kind: str,
    household_id: int,
    title: str,
    *,
    actor,
    service_id: int | None = None,
    person_id: int | None = None,
    document_id: int | None = None,
    message: str | None = None,
    for_request_id: int | None = None,
) -> Request:
    request = Request(
        kind=kind,
        household_id=household_id,
        title=title[:200],
        service_id=service_id,
        person_id=person_id,
        document_id=document_id,
        for_request_id=for_request_id,
        created_by_id=getattr(actor, "id", None),
        status="sent",
    )
    request.events.append(
        RequestEvent(
            kind="created",
            actor_id=getattr(actor, "id", None),
            to_status="sent",
            body=message or None,
        )
    )
    db.session.add(request)
    db.session.flush()
    audit.record("request.opened", actor=actor, target=f"request:{request.id}", details=kind)
    return request


def change_status(request: Request, to_status: str, *, actor, message: str | None = None):
    """Move a request on; accepting or refusing runs its domain's decision handler.

    The status is changed by an UPDATE guarded by the status this object was
    read with: of two agents deciding at the same time, the second gets a
    RequestError instead of running the decision handler a second time.
    After a RequestError (here or from a handler) the caller rolls back.
    """
    from_status = request.status
    if to_status == "waiting_list" and request.kind not in WAITING_LIST_KINDS:
        raise RequestError("Seules les demandes de place peuvent être mises en liste d'attente.")
    if to_status not in REQUEST_STATUSES or to_status not in TRANSITIONS[from_status]:
        if from_status not in OPEN_STATUSES:
            raise RequestError(
                f"Cette demande est « {REQUEST_STATUSES[from_status].lower()} » : "
                "elle ne peut plus changer de statut."
            )
        raise RequestError(
            f"Une demande « {REQUEST_STATUSES[from_status].lower()} » ne peut pas passer "
            f"à « {REQUEST_STATUSES.get(to_status, to_status).lower()} »."
        )
    now = utcnow()
    values = {"status": to_status, "updated_at": now}
    if to_status not in OPEN_STATUSES:
        values["closed_at"] = now
    result = db.session.execute(
        update(Request)
        .where(Request.id == request.id, Request.status == from_status)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        raise RequestError(
            "Cette demande vient d'être modifiée par quelqu'un d'autre. "
            "Rechargez la page pour voir son statut actuel."
        )
    # The row is written; bring this object in line without a second UPDATE.
    for key, value in values.items():
        set_committed_value(request, key, value)
    event = RequestEvent(
        kind="status",
        actor_id=getattr(actor, "id", None),
        from_status=from_status,
        to_status=to_status,
        body=message or None,
    )
    request.events.append(event)
    if to_status in ("accepted", "refused") and request.kind in _decision_handlers:
        _decision_handlers[request.kind](request, to_status == "accepted", actor)
    if request.kind in _status_handlers:
        _status_handlers[request.kind](request, from_status, to_status, actor)
    db.session.flush()
    audit.record("request.status", actor=actor, target=f"request:{request.id}", details=to_status)
    return event


def add_message(request: Request, body: str, *, actor, internal: bool = False) -> RequestEvent:
    """A message to the family, or an internal note staff alone see."""
    body = (body or "").strip()
    if not body:
        raise RequestError("Le message est vide.")
    event = RequestEvent(
        kind="note" if internal else "message",
        actor_id=getattr(actor, "id", None),
        body=body,
        internal=internal,
    )
    request.events.append(event)
    request.updated_at = utcnow()
    db.session.flush()
    audit.record(
        "request.note" if internal else "request.message",
        actor=actor,
        target=f"request:{request.id}",
    )
    return event


# --- Who may do what, and who is told -------------------------------------------------------


def staff_change_status(
    request: Request, to_status: str, *, actor, message: str | None = None
) -> RequestEvent:
    """An agent takes a request in hand, accepts or refuses it; the family is told.

    A refusal must say why: the reason goes to the family.
    """
    message = (message or "").strip() or None
    if to_status not in STAFF_STATUSES:
        raise RequestError("Cette action n'est pas possible depuis le back-office.")
    if to_status == "refused" and not message:
        raise RequestError("Indiquez le motif du refus : il sera envoyé à la famille.")
    event = change_status(request, to_status, actor=actor, message=message)
    notify_family(request, event)
    return event


def staff_message(request: Request, body: str, *, actor, internal: bool = False) -> RequestEvent:
    """An agent writes to the family (e-mailed) or adds an internal note (never shown to it)."""
    event = add_message(request, body, actor=actor, internal=internal)
    if not internal:
        notify_family(request, event)
    return event


def family_reply(request: Request, body: str, *, actor) -> RequestEvent:
    """The family answers on its request while it is open; the service is told."""
    if not request.is_open:
        raise RequestError(
            "Cette demande est close : vous ne pouvez plus y répondre. "
            "Faites une nouvelle demande si besoin."
        )
    event = add_message(request, body, actor=actor)
    notify_service(request, event)
    return event


def family_cancel(request: Request, *, actor) -> RequestEvent:
    """The family withdraws its open request; the service is told."""
    if request.is_open and not request.family_can_cancel:
        raise RequestError(
            "Un document en cours de vérification ne s'annule pas : "
            "envoyez simplement le bon document à sa place dans « Documents »."
        )
    if not request.is_open:
        raise RequestError(
            f"Cette demande est déjà « {REQUEST_STATUSES[request.status].lower()} » : "
            "elle ne peut plus être annulée."
        )
    event = change_status(request, "cancelled", actor=actor)
    notify_service(request, event)
    return event


def family_recipients(household_id: int) -> list[str]:
    """E-mail addresses of the household's account holders."""
    from citoyens.accounts.models import User

    return list(
        db.session.scalars(
            select(User.email).where(User.household_id == household_id, User.active.is_(True))
        )
    )


def _one_line(subject: str) -> str:
    """A mail subject on one line, whatever the title holds."""
    return " ".join(subject.split())[:200]


def notify_family(request: Request, event: RequestEvent) -> None:
    """Tell the family about a status change or a message (never about internal notes)."""
    from citoyens.mail import send_mail

    if event.internal or event.kind == "note":
        return
    if request.kind == "document_review" and event.kind == "status":
        # Each document's decision is told in the household's grouped e-mail
        # (citoyens.documents.notices): the request's own status adds nothing to it.
        return
    status_label = REQUEST_STATUSES[request.status]
    if event.kind == "message":
        subject = f"Nouveau message sur votre demande « {request.title} »"
    else:
        subject = f"Votre demande « {request.title} » : {status_label.lower()}"
    link = absolute_url("requests.show", request_id=request.id)
    # Families answer the service handling the request (document reviews included).
    reply_to = next(iter(service_recipients(request)), None)
    for email in family_recipients(request.household_id):
        send_mail(
            "request-update",
            email,
            _one_line(subject),
            "request_update",
            reply_to=reply_to,
            request_title=request.title,
            kind_label=REQUEST_KINDS.get(request.kind, request.kind),
            status_label=status_label,
            event_kind=event.kind,
            is_open=request.is_open,
            message=event.body,
            link=link,
        )


def service_recipients(request: Request) -> list[str]:
    """The mailbox of the request's service; the town hall's for the general queue."""
    from citoyens.core.models import Commune
    from citoyens.services.models import Service

    if request.service_id is not None:
        mailbox = db.session.scalar(select(Service.mailbox).where(Service.id == request.service_id))
        if mailbox:
            return [mailbox]
    fallback = db.session.scalar(select(Commune.contact_email).limit(1))
    return [fallback] if fallback else []


def notify_service(request: Request, event: RequestEvent) -> None:
    """Tell the service that a family answered or cancelled. The mail carries a link only:
    what the family wrote stays in the portal."""
    from citoyens.mail import send_mail

    if event.kind == "message":
        subject = f"Réponse d'une famille : « {request.title} »"
    else:
        subject = f"Demande annulée par la famille : « {request.title} »"
    link = absolute_url("admin.request", request_id=request.id)
    for email in service_recipients(request):
        send_mail(
            "request-family",
            email,
            _one_line(subject),
            "request_family_update",
            request_title=request.title,
            request_id=request.id,
            kind_label=REQUEST_KINDS.get(request.kind, request.kind),
            event_kind=event.kind,
            link=link,
        )
