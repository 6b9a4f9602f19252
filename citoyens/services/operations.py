"""Verbs of the services domain: they change services, activities, school years and
enrolment windows, flush, and leave an audit event. The caller (view, CLI) commits.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from citoyens import audit
from citoyens.extensions import db
from citoyens.services.models import (
    Activity,
    EnrolmentWindow,
    SchoolYear,
    Service,
    ServiceDocument,
)

# What the forms edit; `code` is set once, at creation.
SERVICE_FIELDS = (
    "name",
    "category",
    "description",
    "mailbox",
    "min_age_months",
    "max_age_months",
    "school_levels",
    "excludes_private_school",
    "place_request",
    "active",
)
ACTIVITY_FIELDS = (
    "name",
    "weekdays",
    "start_time",
    "end_time",
    "capacity",
    "cutoff_hours",
    "calendar",
    "unit",
    "accounting_code",
)


def _changes(record, fields, values: dict) -> list[str]:
    """Set the values that differ; return the names of the fields that changed."""
    changed = [name for name in fields if getattr(record, name) != values[name]]
    for name in changed:
        setattr(record, name, values[name])
    return changed


def _require_documents(service: Service, type_ids) -> list[str]:
    """Make the service require exactly these document types; describe what changed."""
    wanted = set(type_ids)
    current = {link.document_type_id: link for link in service.required_documents}
    removed = sorted(set(current) - wanted)
    added = sorted(wanted - set(current))
    for type_id in removed:
        service.required_documents.remove(current[type_id])
    for type_id in added:
        service.required_documents.append(ServiceDocument(document_type_id=type_id))
    return [f"+document:{i}" for i in added] + [f"-document:{i}" for i in removed]


def create_service(*, actor, code: str, document_type_ids=(), **values) -> Service:
    service = Service(code=code, **{name: values[name] for name in SERVICE_FIELDS})
    db.session.add(service)
    _require_documents(service, document_type_ids)
    db.session.flush()
    audit.record("service.created", actor=actor, target=f"service:{service.id}", details=code)
    return service


def update_service(service: Service, *, actor, document_type_ids=(), **values) -> list[str]:
    """Change a service and its required documents; returns what changed (nothing logged if
    nothing did)."""
    changed = _changes(service, SERVICE_FIELDS, values)
    changed += _require_documents(service, document_type_ids)
    if changed:
        db.session.flush()
        audit.record(
            "service.updated",
            actor=actor,
            target=f"service:{service.id}",
            details=",".join(changed),
        )
    return changed


def create_activity(service: Service, *, actor, **values) -> Activity:
    activity = Activity(service=service, active=True, **{k: values[k] for k in ACTIVITY_FIELDS})
    db.session.add(activity)
    db.session.flush()
    audit.record(
        "activity.created",
        actor=actor,
        target=f"activity:{activity.id}",
        details=f"service:{service.id}",
    )
    return activity


def update_activity(activity: Activity, *, actor, **values) -> list[str]:
    """Change an activity; a new capacity applies to its days from today on (not those
    whose capacity staff set), and every booking stays (DOMAIN.md "Calendar")."""
    changed = _changes(activity, ACTIVITY_FIELDS, values)
    if changed:
        db.session.flush()
        if "capacity" in changed:
            from citoyens.reservations.capacity import apply_activity_capacity

            apply_activity_capacity(activity)
        audit.record(
            "activity.updated",
            actor=actor,
            target=f"activity:{activity.id}",
            details=",".join(changed),
        )
    return changed


def set_activity_active(activity: Activity, active: bool, *, actor) -> bool:
    """Offer an activity again, or no more; its past bookings and enrolments stay. Returns
    whether anything changed (a double click changes nothing)."""
    if activity.active == active:
        return False
    activity.active = active
    db.session.flush()
    audit.record(
        "activity.activated" if active else "activity.deactivated",
        actor=actor,
        target=f"activity:{activity.id}",
    )
    return True


def create_school_year(*, actor, name: str, starts_on: date, ends_on: date) -> SchoolYear:
    year = SchoolYear(name=name, starts_on=starts_on, ends_on=ends_on)
    db.session.add(year)
    db.session.flush()
    audit.record("school_year.created", actor=actor, target=f"school_year:{year.id}", details=name)
    return year


def update_school_year(year: SchoolYear, *, actor, **values) -> list[str]:
    changed = _changes(year, ("name", "starts_on", "ends_on"), values)
    if changed:
        db.session.flush()
        audit.record(
            "school_year.updated",
            actor=actor,
            target=f"school_year:{year.id}",
            details=",".join(changed),
        )
    return changed


def set_enrolment_window(
    service: Service, year: SchoolYear, *, actor, opens_on: date, closes_on: date
) -> tuple[EnrolmentWindow, bool]:
    """Open enrolments to a service for a school year between two dates (both included).

    Creates the window or moves its dates; returns it and whether anything changed.
    """
    window = db.session.scalar(
        select(EnrolmentWindow).where(
            EnrolmentWindow.service_id == service.id, EnrolmentWindow.school_year_id == year.id
        )
    )
    if window is None:
        window = EnrolmentWindow(service_id=service.id, school_year_id=year.id)
        db.session.add(window)
    elif (window.opens_on, window.closes_on) == (opens_on, closes_on):
        return window, False
    window.opens_on, window.closes_on = opens_on, closes_on
    db.session.flush()
    audit.record(
        "enrolment_window.set",
        actor=actor,
        target=f"service:{service.id}",
        details=f"{year.name}: {opens_on.isoformat()} → {closes_on.isoformat()}",
    )
    return window, True
