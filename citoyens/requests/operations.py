"""Request verbs: open, change status, message, note. Each flushes; the caller commits.

Domains that own a kind of request register what happens when staff decide
(`on_decision`): households end a membership on an accepted removal, documents
accept or refuse the file under review.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app, url_for
from sqlalchemy import select

from citoyens import audit
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.requests.models import OPEN_STATUSES, REQUEST_STATUSES, Request, RequestEvent

# kind -> callback(request, accepted: bool, actor) run inside the same transaction.
_decision_handlers: dict[str, Callable] = {}

TRANSITIONS = {
    "sent": {"in_review", "accepted", "refused", "cancelled"},
    "in_review": {"accepted", "refused", "cancelled"},
    "accepted": set(),
    "refused": set(),
    "cancelled": set(),
}


class RequestError(ValueError):
    """A change the request's current status does not allow; the message is French."""


def on_decision(kind: str):
    """Decorator: register what accepting or refusing a request of `kind` does."""

    def register(func):
        _decision_handlers[kind] = func
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
) -> Request:
    request = Request(
        kind=kind,
        household_id=household_id,
        title=title[:200],
        service_id=service_id,
        person_id=person_id,
        document_id=document_id,
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
    """Move a request on; accepting or refusing runs its domain's decision handler."""
    if to_status not in REQUEST_STATUSES or to_status not in TRANSITIONS[request.status]:
        raise RequestError(
            f"Cette demande est « {REQUEST_STATUSES[request.status].lower()} » : "
            "elle ne peut plus changer de statut."
        )
    event = RequestEvent(
        kind="status",
        actor_id=getattr(actor, "id", None),
        from_status=request.status,
        to_status=to_status,
        body=message or None,
    )
    request.events.append(event)
    request.status = to_status
    request.updated_at = utcnow()
    if to_status not in OPEN_STATUSES:
        request.closed_at = utcnow()
    if to_status in ("accepted", "refused") and request.kind in _decision_handlers:
        _decision_handlers[request.kind](request, to_status == "accepted", actor)
    db.session.flush()
    audit.record("request.status", actor=actor, target=f"request:{request.id}", details=to_status)
    return event


def add_message(request: Request, body: str, *, actor, internal: bool = False) -> RequestEvent:
    """A message to the family, or an internal note staff alone see."""
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


def family_recipients(household_id: int) -> list[str]:
    """E-mail addresses of the household's account holders."""
    from citoyens.accounts.models import User

    return list(
        db.session.scalars(
            select(User.email).where(User.household_id == household_id, User.active.is_(True))
        )
    )


def notify_family(request: Request, event: RequestEvent) -> None:
    """Tell the family about a status change or a message (never about internal notes)."""
    from citoyens.mail import send_mail

    if event.internal:
        return
    base = current_app.config.get("PUBLIC_URL")
    path = url_for("requests.show", request_id=request.id)
    link = (
        base.rstrip("/") + path
        if base
        else url_for("requests.show", request_id=request.id, _external=True)
    )
    for email in family_recipients(request.household_id):
        send_mail(
            "request-update",
            email,
            f"Votre demande : {REQUEST_STATUSES[request.status].lower()}",
            "request_update",
            request_title=request.title,
            status_label=REQUEST_STATUSES[request.status],
            message=event.body,
            link=link,
        )
