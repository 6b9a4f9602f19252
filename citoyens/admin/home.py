"""The staff home: what waits for the logged-in agent in their services.

Plain queries (no HTTP, no templates). `staff_home` runs a fixed number of queries,
whatever the number of services, activities, days, bookings and invoices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select, union
from sqlalchemy.orm import contains_eager

from citoyens.billing.models import Invoice
from citoyens.documents.models import Document
from citoyens.enrolments import staff as enrolment_staff
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.requests import rules as request_rules
from citoyens.requests.models import Request
from citoyens.requests.replies import FamilyReply, waiting_replies
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.reservations.staff import visible_services
from citoyens.services.models import Activity, Service
from citoyens.services.rules import households_visible_to

ALERT_DAYS = 7  # capacity alerts: today and the next six days
ALERT_RATIO = 0.9  # a day booked at 90 % of its places or more is an alert


@dataclass
class DayCounts:
    day: ActivityDay
    waiting: int = 0
    present: int = 0  # booked children pointed present, and walk-ins

    @property
    def activity(self) -> Activity:
        return self.day.activity

    @property
    def overbooked(self) -> bool:
        return self.day.booked > self.day.capacity

    @property
    def full(self) -> bool:
        return self.day.booked >= self.day.capacity

    @property
    def alert(self) -> bool:
        """At 90 % of its places or more, full, overbooked, or with children waiting."""
        day = self.day
        if day.closed:
            return False
        if day.capacity <= 0:
            return day.booked > 0 or self.waiting > 0
        return day.booked >= ALERT_RATIO * day.capacity or self.waiting > 0


@dataclass
class OverdueMonth:
    month: date
    count: int
    total_cents: int


@dataclass
class Home:
    today: date
    services: list[Service]  # what the service filter offers
    service_id: int | None  # the one chosen, if any
    requests: int = 0
    enrolments: int = 0
    documents: int = 0
    today_days: list[DayCounts] = field(default_factory=list)
    alerts: list[DayCounts] = field(default_factory=list)
    overdue: list[OverdueMonth] = field(default_factory=list)
    # Families' messages on their requests that no agent answered yet (newest first).
    replies: list[FamilyReply] = field(default_factory=list)
    replies_total: int = 0

    @property
    def overdue_count(self) -> int:
        return sum(row.count for row in self.overdue)

    @property
    def overdue_cents(self) -> int:
        return sum(row.total_cents for row in self.overdue)


def _household_conditions(user, service_id: int | None, column) -> list:
    """Keep the households the user may see; with a service chosen, those it concerns (an
    enrolment or a request in it). No query by itself."""
    conditions = []
    visible = households_visible_to(user)
    if visible is not None:
        conditions.append(column.in_(visible))
    if service_id is not None:
        conditions.append(
            column.in_(
                union(
                    select(Enrolment.household_id).where(Enrolment.service_id == service_id),
                    select(Request.household_id).where(Request.service_id == service_id),
                )
            )
        )
    return conditions


def _documents_count(user, service_id: int | None) -> int:
    """Current documents waiting for review in the households the user may see. One query."""
    return (
        db.session.scalar(
            select(func.count(Document.id)).where(
                Document.status == "pending",
                Document.replaced_at.is_(None),
                *_household_conditions(user, service_id, Document.household_id),
            )
        )
        or 0
    )


def _days(service_ids: list[int], first: date, last: date) -> list[DayCounts]:
    """The activity days of these services between two dates, with their waiting and present
    counts, by day, service and start time. Two queries."""
    if not service_ids:
        return []
    rows = list(
        db.session.scalars(
            select(ActivityDay)
            .join(ActivityDay.activity)
            .join(Service, Service.id == Activity.service_id)
            .options(contains_eager(ActivityDay.activity).contains_eager(Activity.service))
            .where(
                Activity.service_id.in_(service_ids),
                ActivityDay.day >= first,
                ActivityDay.day <= last,
            )
            .order_by(ActivityDay.day, Service.name, Activity.start_time, Activity.name)
        )
    )
    if not rows:
        return []
    found = {row.id: DayCounts(row) for row in rows}
    for day_id, status, attendance, count in db.session.execute(
        select(Booking.activity_day_id, Booking.status, Booking.attendance, func.count())
        .where(Booking.activity_day_id.in_(list(found)))
        .group_by(Booking.activity_day_id, Booking.status, Booking.attendance)
    ):
        if status == "waiting":
            found[day_id].waiting += count
        elif status in ("booked", "walk_in") and attendance == "present":
            found[day_id].present += count
    return list(found.values())


def _overdue(user, service_id: int | None, today: date) -> list[OverdueMonth]:
    """Invoices issued, not paid, not under direct debit, past their due date, of the
    households the user may see: by month billed, oldest first. One query."""
    rows = db.session.execute(
        select(Invoice.month, func.count(Invoice.id), func.sum(Invoice.total_cents))
        .where(
            Invoice.kind == "invoice",
            Invoice.status == "issued",
            Invoice.due_on < today,
            *_household_conditions(user, service_id, Invoice.household_id),
        )
        .group_by(Invoice.month)
        .order_by(Invoice.month)
    )
    return [OverdueMonth(month, count, int(total or 0)) for month, count, total in rows]


def staff_home(user, today: date, service_id: int | None = None) -> Home:
    """The home of `user`: the counts of their queues, today's activities, the capacity
    alerts of the coming week, the overdue invoices and the families' unanswered replies.
    Administrators see every service and may choose one; an agent sees theirs."""
    services = visible_services(user)
    ids = [service.id for service in services]
    chosen = service_id if service_id in ids else None
    shown = [chosen] if chosen is not None else ids
    service_filter = str(chosen) if chosen is not None else ""
    home = Home(today, services, chosen)
    home.requests = request_rules.staff_queue(
        user, request_rules.QueueFilters(service=service_filter), per_page=1
    ).total
    home.enrolments = enrolment_staff.staff_queue(
        user, enrolment_staff.QueueFilters(service=service_filter), per_page=1
    ).total
    home.documents = _documents_count(user, chosen)
    days = _days(shown, today, today + timedelta(days=ALERT_DAYS - 1))
    home.today_days = [row for row in days if row.day.day == today]
    home.alerts = [row for row in days if row.alert]
    home.overdue = _overdue(user, chosen, today)
    home.replies, home.replies_total = waiting_replies(user, chosen)
    return home
