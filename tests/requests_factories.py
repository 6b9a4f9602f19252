"""Factories for the requests tests: services, agents' services, requests with a history.

Like tests/factories.py, each commits in its own app context and returns plain ids.
"""

from __future__ import annotations

import itertools

from citoyens.accounts.models import User
from citoyens.extensions import db
from citoyens.requests import operations as ops
from citoyens.requests.models import Request
from citoyens.services.models import Service, StaffService

_counter = itertools.count(1)


def make_service(app, *, name: str | None = None, mailbox: str | None = None) -> int:
    n = next(_counter)
    with app.app_context():
        service = Service(
            code=f"service-{n}",
            name=name or f"Service {n}",
            category="enfance",
            mailbox=mailbox if mailbox is not None else f"service{n}@example.org",
        )
        db.session.add(service)
        db.session.commit()
        return service.id


def assign_staff(app, user_id: int, *service_ids: int) -> None:
    """The agent works for these services."""
    with app.app_context():
        for service_id in service_ids:
            db.session.add(StaffService(user_id=user_id, service_id=service_id))
        db.session.commit()


def make_request(
    app,
    household_id: int,
    *,
    kind: str = "member_removal",
    title: str | None = None,
    service_id: int | None = None,
    by: int | None = None,
    message: str | None = None,
    status: str | None = None,
    staff_id: int | None = None,
    messages: tuple[str, ...] = (),
    notes: tuple[str, ...] = (),
) -> int:
    """A request opened by `by` (a user id), then moved to `status` by `staff_id` if given,
    with staff `messages` and internal `notes`."""
    n = next(_counter)
    with app.app_context():
        actor = db.session.get(User, by) if by else None
        staff = db.session.get(User, staff_id) if staff_id else None
        request = ops.open_request(
            kind,
            household_id,
            title or f"Demande de test {n}",
            actor=actor,
            service_id=service_id,
            message=message,
        )
        for body in messages:
            ops.add_message(request, body, actor=staff)
        for body in notes:
            ops.add_message(request, body, actor=staff, internal=True)
        if status and status != "sent":
            ops.change_status(request, status, actor=staff, message=f"Passage à {status}")
        db.session.commit()
        return request.id


def request_state(app, request_id: int) -> tuple[str, list[tuple[str, str | None]]]:
    """The request's status and its events as (kind, body) pairs, read afresh."""
    with app.app_context():
        request = db.session.get(Request, request_id)
        return request.status, [(e.kind, e.body) for e in request.events]
