"""Which families, people, documents and requests a staff member sees (DOMAIN.md "Staff and
scope"). The one place the back office asks; plain functions, no HTTP.

- Administrators see everything.
- An agent sees a family only while it has a live enrolment (pending, accepted, waiting
  list) or an open request in one of the agent's services. An agent with no service sees
  no family at all.
- Health documents: only those of children with a live enrolment in one of the agent's
  services (a household-wide health document: administrators only).
- A request tied to no service goes to administrators, never to every agent.

List pages filter in SQL with `household_filter(column, user)` (a condition, `true()` for
administrators); detail pages ask `may_see_household` and answer 404 (`admin.blueprint.deny`).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, or_, select, true, union

from citoyens.extensions import db
from citoyens.services.models import StaffService

# An enrolment gives access while it is alive; refused or cancelled ones no longer do.
LIVE_ENROLMENT_STATUSES = ("pending", "accepted", "waiting_list")


def _agent_services(user):
    """The ids of the agent's services, as a subquery (no query by itself)."""
    return select(StaffService.service_id).where(StaffService.user_id == user.id)


def household_ids_visible_to(user):
    """A selectable of the household ids an agent may see; None for administrators.

    Usable in `column.in_(...)`; it runs no query by itself.
    """
    if user.is_admin:
        return None
    from citoyens.enrolments.models import Enrolment
    from citoyens.requests.models import OPEN_STATUSES, Request

    services = _agent_services(user)
    return union(
        select(Enrolment.household_id).where(
            Enrolment.service_id.in_(services), Enrolment.status.in_(LIVE_ENROLMENT_STATUSES)
        ),
        select(Request.household_id).where(
            Request.service_id.in_(services), Request.status.in_(OPEN_STATUSES)
        ),
    )


def household_filter(column, user) -> ColumnElement[bool]:
    """A WHERE condition keeping the rows whose `column` (a household id) the user may see."""
    visible = household_ids_visible_to(user)
    return true() if visible is None else column.in_(visible)


def may_see_household(user, household_id: int | None) -> bool:
    """Whether the user may see and act on this household (administrators: always). 1 query."""
    if user.is_admin:
        return True
    if household_id is None:
        return False
    ids = household_ids_visible_to(user).subquery()
    return bool(db.session.scalar(select(exists().where(ids.c.household_id == household_id))))


def _health_children(user):
    """Ids of the children with a live enrolment in one of the agent's services."""
    from citoyens.enrolments.models import Enrolment

    return select(Enrolment.child_id).where(
        Enrolment.service_id.in_(_agent_services(user)),
        Enrolment.status.in_(LIVE_ENROLMENT_STATUSES),
    )


def child_health_visible(user, child_id: int | None) -> bool:
    """Whether the user may open the child's health documents. 1 query for an agent."""
    if user.is_admin:
        return True
    if child_id is None:
        return False
    from citoyens.enrolments.models import Enrolment

    children = _health_children(user).where(Enrolment.child_id == child_id)
    return bool(db.session.scalar(select(exists(children))))


def document_filter(user) -> ColumnElement[bool]:
    """A WHERE condition on Document (joined to nothing) keeping what the user may see:
    documents of visible households, health ones only for children enrolled with them."""
    from citoyens.documents.models import Document, DocumentType

    if user.is_admin:
        return true()
    health = select(DocumentType.id).where(DocumentType.health.is_(True))
    return and_(
        household_filter(Document.household_id, user),
        or_(
            Document.type_id.not_in(health),
            and_(Document.person_id.is_not(None), Document.person_id.in_(_health_children(user))),
        ),
    )


def may_see_document(user, document) -> bool:
    """Whether the user may see (and download) this document."""
    if user.is_admin:
        return True
    if not may_see_household(user, document.household_id):
        return False
    return not document.type.health or child_health_visible(user, document.person_id)


def request_filter(user) -> ColumnElement[bool]:
    """A WHERE condition on Request: the agent's services' requests; no service → admins."""
    from citoyens.requests.models import ADMIN_ONLY_KINDS, Request

    if user.is_admin:
        return true()
    return and_(
        Request.service_id.is_not(None),
        Request.service_id.in_(_agent_services(user)),
        Request.kind.not_in(ADMIN_ONLY_KINDS),
    )


def may_see_request(user, request) -> bool:
    """Whether the user may see and decide this request (1 query for an agent)."""
    from citoyens.requests.models import ADMIN_ONLY_KINDS

    if user.is_admin:
        return True
    if request.service_id is None or request.kind in ADMIN_ONLY_KINDS:
        return False
    return may_act_for_service(user, request.service_id)


def may_act_for_service(user, service_id: int | None) -> bool:
    """Whether the user works for this service (administrators: every one; none → admins)."""
    if user.is_admin:
        return True
    if service_id is None:
        return False
    return bool(
        db.session.scalar(
            select(exists(_agent_services(user).where(StaffService.service_id == service_id)))
        )
    )


__all__ = [
    "LIVE_ENROLMENT_STATUSES",
    "child_health_visible",
    "document_filter",
    "household_filter",
    "household_ids_visible_to",
    "may_act_for_service",
    "may_see_document",
    "may_see_household",
    "request_filter",
]
