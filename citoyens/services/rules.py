"""Service rules shared by the domains: which mailboxes to tell, which queues staff see."""

from __future__ import annotations

from sqlalchemy import select

from citoyens.core.models import Commune
from citoyens.extensions import db
from citoyens.services.models import Service, StaffService


def services_used_by(household_id: int) -> list[Service]:
    """Services the household deals with: those its requests were filed with.

    The enrolment issue adds the services its children are enrolled in.
    """
    from citoyens.requests.models import Request

    return list(
        db.session.scalars(
            select(Service)
            .where(
                Service.active.is_(True),
                Service.id.in_(
                    select(Request.service_id).where(
                        Request.household_id == household_id, Request.service_id.is_not(None)
                    )
                ),
            )
            .order_by(Service.name)
        )
    )


def mailboxes_for_household(household_id: int) -> list[str]:
    """Mailboxes of the services the household uses; the town hall's when it uses none yet."""
    boxes = [s.mailbox for s in services_used_by(household_id) if s.mailbox]
    if boxes:
        return boxes
    fallback = db.session.scalar(select(Commune.contact_email).limit(1))
    return [fallback] if fallback else []


def service_ids_for(user) -> set[int] | None:
    """The services an agent works for; None for administrators (every service)."""
    if user.is_admin:
        return None
    return set(
        db.session.scalars(select(StaffService.service_id).where(StaffService.user_id == user.id))
    )


def staff_can_see_service(user, service_id: int | None) -> bool:
    """Requests without a service sit in the general queue every agent sees."""
    allowed = service_ids_for(user)
    return allowed is None or service_id is None or service_id in allowed
