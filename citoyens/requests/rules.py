"""What a family and what an agent see of requests: lists, history, the staff queue.

Plain functions over the database: no HTTP, no templates. Each list is loaded
in a fixed number of queries, whatever its length.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import joinedload, selectinload

from citoyens.extensions import db
from citoyens.forms import parse_id
from citoyens.households.directory import household_names
from citoyens.pagination import QueuePage
from citoyens.requests.models import (
    OPEN_STATUSES,
    REQUEST_STATUSES,
    Request,
    RequestEvent,
)
from citoyens.services.models import Service
from citoyens.services.rules import service_ids_for
from citoyens.services.scope import may_see_request, request_filter

QUEUE_PAGE_SIZE = 30
GENERAL_QUEUE = "general"  # the filter value for requests without a service
INTERNAL_NOTE_LABEL = "Note interne — non visible par la famille"


# --- Family ---------------------------------------------------------------------------------


def open_requests_for_household(household_id: int) -> list[Request]:
    """The household's requests still in progress, most recently updated first (dashboard)."""
    return list(
        db.session.scalars(
            select(Request)
            .where(Request.household_id == household_id, Request.status.in_(OPEN_STATUSES))
            .order_by(Request.updated_at.desc(), Request.id.desc())
        )
    )


def household_requests(household_id: int) -> list[Request]:
    """Every request of the household: open ones first, then closed ones, newest first."""
    still_open = case((Request.status.in_(OPEN_STATUSES), 0), else_=1)
    return list(
        db.session.scalars(
            select(Request)
            .options(joinedload(Request.person))
            .where(Request.household_id == household_id)
            .order_by(still_open, Request.created_at.desc(), Request.id.desc())
        )
    )


def request_of_household(request_id: int, household_id: int) -> Request | None:
    """The request if it belongs to the household (None otherwise: the caller answers 404)."""
    return db.session.scalar(
        _with_history(select(Request)).where(
            Request.id == request_id, Request.household_id == household_id
        )
    )


def visible_events(request: Request, for_staff: bool) -> list[RequestEvent]:
    """The request's history in order; a family never sees internal notes."""
    events = sorted(request.events, key=lambda e: (e.created_at, e.id))
    if for_staff:
        return events
    return [e for e in events if not e.internal and e.kind != "note"]


@dataclass
class HistoryLine:
    """One event as shown: who, what, when, and the text if any."""

    event: RequestEvent
    author: str
    summary: str
    internal: bool
    from_family: bool

    @property
    def at(self) -> datetime:
        return self.event.created_at

    @property
    def body(self) -> str | None:
        return self.event.body


def history(request: Request, viewer, for_staff: bool) -> list[HistoryLine]:
    """The dated history `viewer` may see, each line with its author and a short summary."""
    lines = []
    for event in visible_events(request, for_staff):
        actor = event.actor
        from_family = actor is not None and actor.role == "parent"
        lines.append(
            HistoryLine(
                event=event,
                author=_author(request, actor, viewer, for_staff),
                summary=_summary(event, from_family),
                internal=event.internal or event.kind == "note",
                from_family=from_family,
            )
        )
    return lines


def _author(request: Request, actor, viewer, for_staff: bool) -> str:
    if actor is None:
        return "Portail famille"
    if actor.id == getattr(viewer, "id", None):
        return "Vous"
    if actor.role == "parent":
        return f"Famille · {actor.full_name}" if for_staff else actor.full_name
    if for_staff:
        return actor.full_name
    # Families deal with a service, not with a named agent.
    return request.service.name if request.service else "Les services de la mairie"


def _summary(event: RequestEvent, from_family: bool) -> str:
    if event.kind == "created":
        return "Demande envoyée"
    if event.kind == "status":
        before = REQUEST_STATUSES.get(event.from_status or "", event.from_status or "")
        after = REQUEST_STATUSES.get(event.to_status or "", event.to_status or "")
        return f"{before} → {after}"
    if event.kind == "note":
        return INTERNAL_NOTE_LABEL
    return "Message de la famille" if from_family else "Message du service"


def _with_history(statement):
    """Load the request with its history and whatever its pages show, in a few queries."""
    return statement.options(
        joinedload(Request.service),
        joinedload(Request.person),
        selectinload(Request.events).joinedload(RequestEvent.actor),
    )


# --- Staff ----------------------------------------------------------------------------------


def staff_may_see(user, request: Request) -> bool:
    """Administrators: every request; an agent: their services' (`services.scope`)."""
    return may_see_request(user, request)


def request_for_staff(request_id: int) -> Request | None:
    """The request with its whole history (scope is checked by the caller)."""
    return db.session.scalar(_with_history(select(Request)).where(Request.id == request_id))


def queue_services(user) -> list[Service]:
    """The services an agent may filter the queue on: theirs, or every one for administrators."""
    allowed = service_ids_for(user)
    statement = select(Service).order_by(Service.name)
    if allowed is not None:
        if not allowed:
            return []
        statement = statement.where(Service.id.in_(allowed))
    return list(db.session.scalars(statement))


@dataclass
class QueueFilters:
    """The queue's filters, as chosen in the form. Empty strings mean "all"."""

    service: str = ""  # "", GENERAL_QUEUE, or a service id
    status: str = "open"  # "open", "all", or one status
    kind: str = ""
    page: int = 1


def staff_queue(user, filters: QueueFilters, per_page: int = QUEUE_PAGE_SIZE) -> QueuePage:
    """The requests an agent may handle, filtered, newest first, one page at a time.

    An agent sees the services they work for; the general queue (no service) is for
    administrators, who see everything (`services.scope.request_filter`). Three queries,
    whatever the page size.
    """
    conditions = [request_filter(user)]
    if filters.service == GENERAL_QUEUE:
        conditions.append(Request.service_id.is_(None))
    elif (service_id := parse_id(filters.service)) is not None:
        conditions.append(Request.service_id == service_id)
    if filters.status == "open":
        conditions.append(Request.status.in_(OPEN_STATUSES))
    elif filters.status in REQUEST_STATUSES:
        conditions.append(Request.status == filters.status)
    if filters.kind:
        conditions.append(Request.kind == filters.kind)

    total = db.session.scalar(select(func.count(Request.id)).where(*conditions)) or 0
    page = max(1, filters.page)
    last_page = max(1, -(-total // per_page))
    page = min(page, last_page)
    items = list(
        db.session.scalars(
            select(Request)
            .options(joinedload(Request.service), joinedload(Request.person))
            .where(*conditions)
            .order_by(Request.created_at.desc(), Request.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        )
    )
    names = household_names({r.household_id for r in items})
    return QueuePage(items, total, page, per_page, names)
