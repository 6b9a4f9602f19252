"""Service rules shared by the domains: which mailboxes to tell, which queues staff see,
which school years and enrolment windows are open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import joinedload, selectinload

from citoyens.core.models import Commune
from citoyens.extensions import db
from citoyens.services import scope
from citoyens.services.models import (
    Activity,
    EnrolmentWindow,
    SchoolYear,
    Service,
    ServiceDocument,
    StaffService,
)


def services_used_by(household_id: int) -> list[Service]:
    """Services the household deals with: those its requests were filed with, and those
    its children are enrolled in (or waiting for)."""
    from citoyens.enrolments.models import Enrolment
    from citoyens.requests.models import Request

    return list(
        db.session.scalars(
            select(Service)
            .where(
                Service.active.is_(True),
                or_(
                    Service.id.in_(
                        select(Request.service_id).where(
                            Request.household_id == household_id,
                            Request.service_id.is_not(None),
                        )
                    ),
                    Service.id.in_(
                        select(Enrolment.service_id).where(
                            Enrolment.household_id == household_id,
                            Enrolment.status.in_(("pending", "accepted", "waiting_list")),
                        )
                    ),
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
    """Whether the user works for the service; a request tied to no service is for
    administrators only (DOMAIN.md "Staff and scope"; see `services.scope`)."""
    return scope.may_act_for_service(user, service_id)


def households_visible_to(user):
    """Household ids the user may see (`services.scope.household_ids_visible_to`)."""
    return scope.household_ids_visible_to(user)


def staff_can_see_household(user, household_id: int) -> bool:
    """Whether the user may see the household (`services.scope.may_see_household`)."""
    return scope.may_see_household(user, household_id)


# --- School years and enrolment windows ------------------------------------------------------


def current_school_year(today: date) -> SchoolYear | None:
    """The school year `today` falls in (first and last days included), if one is set up."""
    return db.session.scalar(
        select(SchoolYear)
        .where(SchoolYear.starts_on <= today, SchoolYear.ends_on >= today)
        .order_by(SchoolYear.starts_on.desc())
        .limit(1)
    )


def enrolable_school_years(today: date) -> list[SchoolYear]:
    """School years not over yet (the current one and those to come), earliest first.

    Whether families may enrol in one of them is the window's business (`open_window`).
    """
    return list(
        db.session.scalars(
            select(SchoolYear).where(SchoolYear.ends_on > today).order_by(SchoolYear.starts_on)
        )
    )


def open_window(service_id: int, school_year_id: int, today: date) -> EnrolmentWindow | None:
    """The service's enrolment window for that year if `today` is inside it (both ends
    included); None when there is no window or it is not open today."""
    return db.session.scalar(
        select(EnrolmentWindow).where(
            EnrolmentWindow.service_id == service_id,
            EnrolmentWindow.school_year_id == school_year_id,
            EnrolmentWindow.opens_on <= today,
            EnrolmentWindow.closes_on >= today,
        )
    )


def window_state(window: EnrolmentWindow | None, today: date) -> str:
    """ "none", "upcoming", "open" or "closed": what staff see next to a window."""
    if window is None:
        return "none"
    if today < window.opens_on:
        return "upcoming"
    return "open" if today <= window.closes_on else "closed"


# --- What the back office lists (a constant number of queries, whatever the counts) ----------


@dataclass
class ServiceRow:
    service: Service
    activities: int
    active_activities: int


def services_overview() -> list[ServiceRow]:
    """Every service, active first, with its activity counts and its required documents.

    Two statements: services joined to grouped counts, then the documents of all of them.
    """
    counts = (
        select(
            Activity.service_id,
            func.count(Activity.id).label("total"),
            func.sum(case((Activity.active.is_(True), 1), else_=0)).label("active"),
        )
        .group_by(Activity.service_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Service, func.coalesce(counts.c.total, 0), func.coalesce(counts.c.active, 0))
        .outerjoin(counts, counts.c.service_id == Service.id)
        .options(selectinload(Service.required_documents).joinedload(ServiceDocument.document_type))
        .order_by(Service.active.desc(), Service.name)
    )
    return [ServiceRow(service, total, active) for service, total, active in rows]


def service_with_documents(service_id: int) -> Service | None:
    return db.session.scalar(
        select(Service)
        .options(selectinload(Service.required_documents).joinedload(ServiceDocument.document_type))
        .where(Service.id == service_id)
    )


def activities_of(service_id: int) -> list[Activity]:
    """The service's activities, the ones still offered first."""
    return list(
        db.session.scalars(
            select(Activity)
            .where(Activity.service_id == service_id)
            .order_by(Activity.active.desc(), Activity.start_time, Activity.name)
        )
    )


def activity_with_service(activity_id: int) -> Activity | None:
    return db.session.scalar(
        select(Activity).options(joinedload(Activity.service)).where(Activity.id == activity_id)
    )


def school_years() -> list[SchoolYear]:
    return list(db.session.scalars(select(SchoolYear).order_by(SchoolYear.starts_on)))


def windows_of(service_id: int) -> dict[int, EnrolmentWindow]:
    """The service's enrolment windows, by school year id."""
    return {
        window.school_year_id: window
        for window in db.session.scalars(
            select(EnrolmentWindow).where(EnrolmentWindow.service_id == service_id)
        )
    }
