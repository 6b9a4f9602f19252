"""Factories for the staff exports (tests/test_exports.py, and the scope walk of
tests/test_staff_scope.py): bookings written directly, a file already built by the
worker, and the body of each export form."""

from __future__ import annotations

from datetime import date, timedelta

from citoyens.core.models import ExportFile
from citoyens.database import utcnow
from citoyens.documents.storage import get_storage, new_key
from citoyens.extensions import db
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.tabular import Sheet, xlsx_bytes

SEPTEMBER = (date(2030, 9, 1), date(2030, 9, 30))


def add_booking(
    app,
    household_id: int,
    child_id: int,
    activity_day_id: int,
    *,
    status: str = "booked",
    attendance: str | None = None,
    late: bool = False,
    certificate_id: int | None = None,
) -> int:
    """A booking row as the reservation rules leave it (no capacity bookkeeping)."""
    with app.app_context():
        day = db.session.get(ActivityDay, activity_day_id)
        booking = Booking(
            activity_day_id=activity_day_id,
            child_id=child_id,
            household_id=household_id,
            day=day.day,
            status=status,
            attendance=attendance,
            late=late,
            certificate_id=certificate_id,
        )
        db.session.add(booking)
        db.session.commit()
        return booking.id


def ready_file(app, owner_id: int | None, *, created_days_ago: int = 0, title="Présences") -> int:
    """A file the worker built for `owner_id`, stored in the upload storage."""
    content = xlsx_bytes([Sheet("Présences", ["Nom"], [["Dupont"]])])
    with app.app_context():
        key = new_key("xlsx")
        get_storage().save(key, content)
        export = ExportFile(
            kind="presences",
            params="{}",
            format="xlsx",
            title=title,
            filename="presences-test",
            requested_by_id=owner_id,
            status="ready",
            rows=1,
            storage_key=key,
            size=len(content),
            created_at=utcnow() - timedelta(days=created_days_ago),
            ready_at=utcnow() - timedelta(days=created_days_ago),
        )
        db.session.add(export)
        db.session.commit()
        return export.id


def attendance_form(target: str, first=SEPTEMBER[0], last=SEPTEMBER[1], fmt="xlsx") -> dict:
    return {
        "presences-target": target,
        "presences-starts_on": first.isoformat() if isinstance(first, date) else first,
        "presences-ends_on": last.isoformat() if isinstance(last, date) else last,
        "presences-fmt": fmt,
    }


def families_form(service_id, year_id, *, pending=False, fmt="xlsx") -> dict:
    data = {
        "familles-service_id": str(service_id),
        "familles-school_year_id": str(year_id),
        "familles-fmt": fmt,
    }
    if pending:
        data["familles-pending"] = "y"
    return data


def export_form(endpoint: str, service_id: int, year_id: int) -> dict:
    """The body of an export form naming a service (tests/test_staff_scope.py)."""
    if endpoint == "admin.exports_attendance":
        return attendance_form(f"service:{service_id}")
    return families_form(service_id, year_id)
