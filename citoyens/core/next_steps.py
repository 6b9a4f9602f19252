"""What the family dashboard puts first: what is next, what is due, what waits for the family.

Plain functions (no request, no template). `next_steps` gathers the cards of the
dashboard's first screen and orders them by urgency; it runs a fixed number of
queries whatever the number of children, bookings, invoices or requests (one per
card, plus one for the empty state), and reuses the documents checklist the
dashboard already loads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache

from sqlalchemy import bindparam, exists, func, select
from sqlalchemy.orm import aliased

from citoyens.accounts.models import User
from citoyens.billing.models import Invoice, Payment
from citoyens.billing.payments import MIN_CARD_CENTS
from citoyens.documents.rules import Section
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.forms import PARIS
from citoyens.households.models import Person
from citoyens.requests.models import OPEN_STATUSES, Request, RequestEvent
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.reservations.rules import cutoff_at
from citoyens.services.models import Activity, SchoolYear, Service

NEXT_BOOKINGS = 5  # across children: the first screen of a phone
SHOWN_INVOICES = 3  # payable invoices listed with their own « Payer » button

# Lower comes first. Money already late and a service waiting for an answer lead;
# the planned direct debit, which asks nothing of the family, comes last.
URGENCY = {
    "late": 10,
    "requests": 20,
    "documents_expired": 30,
    "due": 40,
    "bookings": 50,
    "documents_expiring": 60,
    "debit": 70,
}


# --- Next booked days --------------------------------------------------------------------------


@dataclass
class NextBooking:
    child_id: int
    child_name: str
    activity: str
    day: date
    cutoff: datetime  # Paris time
    modifiable: bool


@dataclass
class BookedDay:
    """One day of the list, with the children's bookings on it (the day is shown once)."""

    day: date
    bookings: list[NextBooking] = field(default_factory=list)


# The statements are built once, on first use (all models mapped by then); the household,
# the day and the row count are bound at each call.
@cache
def _next_bookings_statement():
    return (
        # Columns, not the Activity entity: cutoff_at reads start_time and cutoff_hours.
        select(
            Booking.child_id,
            Person.first_name,
            Activity.name,
            Activity.start_time,
            Activity.end_time,
            Activity.cutoff_hours,
            ActivityDay.day,
        )
        .select_from(Booking)
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .join(Person, Person.id == Booking.child_id)
        .where(
            Booking.household_id == bindparam("household_id"),
            Booking.status == "booked",
            ActivityDay.day >= bindparam("today"),
            ActivityDay.closed.is_(False),
        )
        .order_by(ActivityDay.day, Activity.start_time, Person.first_name, Booking.id)
        .limit(bindparam("rows"))
    )


def next_bookings(
    household_id: int, today: date, now: datetime, limit: int = NEXT_BOOKINGS
) -> list[BookedDay]:
    """The household's next `limit` booked activities (not yet over), grouped by day. One query.

    Only what this household booked (Booking.household_id): a child with two homes shows
    on each home's dashboard its own bookings only.
    """
    # Today's activities already over are dropped below: a few more rows cover them.
    rows = db.session.execute(
        _next_bookings_statement(),
        {"household_id": household_id, "today": today, "rows": limit + 4},
    ).all()
    days: list[BookedDay] = []
    count = 0
    for row in rows:
        day = row.day
        if datetime.combine(day, row.end_time, tzinfo=PARIS) <= now:
            continue
        if count == limit:
            break
        cutoff = cutoff_at(row, day)
        if not days or days[-1].day != day:
            days.append(BookedDay(day))
        days[-1].bookings.append(
            NextBooking(row.child_id, row.first_name, row.name, day, cutoff, now < cutoff)
        )
        count += 1
    return days


# --- Money -------------------------------------------------------------------------------------


@dataclass
class PayableInvoice:
    id: int
    month: date
    due_on: date
    left_cents: int
    late: bool

    @property
    def card_ok(self) -> bool:
        """PayFiP takes no less than MIN_CARD_CENTS (the invoice page says the same)."""
        return self.left_cents >= MIN_CARD_CENTS


@dataclass
class NextDebit:
    cents: int
    on: date | None  # None: the date is not set yet (announced before the collection)
    invoice_id: int


@dataclass
class Money:
    balance_cents: int = 0  # what « Mes factures » shows as « Reste à payer »
    late_cents: int = 0
    invoices: list[PayableInvoice] = field(default_factory=list)  # oldest first
    more_invoices: int = 0  # payable invoices not listed
    debit: NextDebit | None = None


@cache
def _money_statement():
    credit = aliased(Invoice)
    received = (
        select(func.coalesce(func.sum(Payment.amount_cents), 0))
        .where(Payment.invoice_id == Invoice.id, Payment.counts)
        .correlate(Invoice)
        .scalar_subquery()
    )
    credited = (
        select(func.coalesce(func.sum(func.abs(credit.total_cents)), 0))
        .where(credit.credit_for_id == Invoice.id, credit.kind == "credit")
        .correlate(Invoice)
        .scalar_subquery()
    )
    loose = (
        select(func.coalesce(func.sum(func.abs(credit.total_cents)), 0))
        .where(
            credit.household_id == bindparam("household_id"),
            credit.kind == "credit",
            credit.credit_for_id.is_(None),
        )
        .scalar_subquery()
    )
    return (
        select(
            Invoice.id,
            Invoice.status,
            Invoice.month,
            Invoice.due_on,
            Invoice.debit_on,
            (Invoice.total_cents - credited - received).label("left_cents"),
            loose.label("loose_cents"),
        )
        .where(
            Invoice.household_id == bindparam("household_id"),
            Invoice.kind == "invoice",
            Invoice.status.in_(("issued", "direct_debit")),
        )
        .order_by(Invoice.month, Invoice.id)
    )


def money(household_id: int, today: date) -> Money:
    """What is left to pay on issued invoices and the next planned direct debit. One query.

    Left to pay is computed as « Mes factures » computes it (billing.rules): the total
    less the credit notes against the invoice and the payments that count; credit notes
    that correct no invoice lower the balance.
    """
    rows = db.session.execute(_money_statement(), {"household_id": household_id}).all()
    result = Money()
    payable: list[PayableInvoice] = []
    debits: list[tuple[date | None, int, int]] = []
    loose_cents = 0
    for row in rows:
        loose_cents = row.loose_cents or 0
        left = max(0, row.left_cents or 0)
        if not left:
            continue
        if row.status == "direct_debit":
            debits.append((row.debit_on, left, row.id))
            continue
        late = row.due_on < today
        payable.append(PayableInvoice(row.id, row.month, row.due_on, left, late))
        if late:
            result.late_cents += left
    result.balance_cents = max(0, sum(i.left_cents for i in payable) - loose_cents)
    if result.balance_cents:
        # The most urgent first: late ones, then by due date.
        payable.sort(key=lambda i: (i.due_on, i.id))
        result.invoices = payable[:SHOWN_INVOICES]
        result.more_invoices = max(0, len(payable) - SHOWN_INVOICES)
    else:
        result.late_cents = 0
    if debits:
        # The next collection: the earliest date set (a date not set yet comes last), and
        # every invoice collected that day.
        first = min(debits, key=lambda d: (d[0] is None, d[0] or date.max, d[2]))
        same_day = [d for d in debits if d[0] == first[0]]
        result.debit = NextDebit(sum(d[1] for d in same_day), first[0], first[2])
    return result


# --- Requests waiting for the family -----------------------------------------------------------


@dataclass
class WaitingRequest:
    id: int
    title: str
    service: str | None
    asked_at: datetime  # when the service wrote


@cache
def _waiting_statement():
    event, author = aliased(RequestEvent), aliased(User)

    def last_message(roles: tuple[str, ...]):
        return (
            select(func.max(event.id))
            .join(author, author.id == event.actor_id)
            .where(
                event.request_id == Request.id,
                event.kind == "message",
                event.internal.is_(False),
                author.role.in_(roles),
            )
            .correlate(Request)
            .scalar_subquery()
        )

    from_staff, from_family = last_message(("staff", "admin")), last_message(("parent",))
    return (
        select(Request.id, Request.title, Service.name, RequestEvent.created_at)
        .select_from(Request)
        .join(RequestEvent, RequestEvent.id == from_staff)
        .outerjoin(Service, Service.id == Request.service_id)
        .where(
            Request.household_id == bindparam("household_id"),
            Request.status.in_(OPEN_STATUSES),
            RequestEvent.id > func.coalesce(from_family, 0),
        )
        .order_by(RequestEvent.created_at, Request.id)
    )


def waiting_for_family(household_id: int) -> list[WaitingRequest]:
    """Open requests on which a service wrote to the family and the family has not written
    since (an internal note is not shown to the family and asks nothing). One query."""
    rows = db.session.execute(_waiting_statement(), {"household_id": household_id}).all()
    return [WaitingRequest(*row) for row in rows]


# --- Documents ---------------------------------------------------------------------------------


@dataclass
class DocumentAlert:
    label: str
    child_name: str | None  # None: a document of the household
    status: str  # expired, refused, expiring
    valid_until: date | None


def document_alerts(sections: list[Section]) -> list[DocumentAlert]:
    """Expired or refused documents (to send again), then those expiring within 30 days,
    from the documents checklist already loaded (no query)."""
    alerts = []
    for section in sections:
        for line in section.lines:
            status = line.status if line.status in ("expired", "refused") else None
            if status is None and line.expiring:
                status = "expiring"
            if status is None:
                continue
            alerts.append(
                DocumentAlert(
                    line.type.label,
                    section.person.first_name if section.person else None,
                    status,
                    line.document.valid_until if line.document else None,
                )
            )
    alerts.sort(key=lambda a: (a.status == "expiring", a.valid_until or date.max, a.label))
    return alerts


# --- The cards, by urgency ---------------------------------------------------------------------


@dataclass
class NextSteps:
    days: list[BookedDay]
    money: Money
    requests: list[WaitingRequest]
    documents: list[DocumentAlert]
    cards: list[str]  # the cards to show, most urgent first
    # When there is nothing to show: what to do next (children, enrol, book).
    empty_action: str | None = None

    @property
    def empty(self) -> bool:
        return not self.cards


def next_steps(
    household_id: int,
    *,
    sections: list[Section],
    has_children: bool,
    today: date,
    now: datetime,
) -> NextSteps:
    """The dashboard's first cards. `sections`: documents.rules.checklist, already loaded."""
    days = next_bookings(household_id, today, now)
    due = money(household_id, today)
    waiting = waiting_for_family(household_id)
    documents = document_alerts(sections)
    urgency = {}
    if due.balance_cents:
        urgency["money"] = URGENCY["late" if due.late_cents else "due"]
    elif due.debit:
        urgency["money"] = URGENCY["debit"]
    if waiting:
        urgency["requests"] = URGENCY["requests"]
    if documents:
        expiring_only = all(a.status == "expiring" for a in documents)
        urgency["documents"] = URGENCY[
            "documents_expiring" if expiring_only else "documents_expired"
        ]
    if days:
        urgency["bookings"] = URGENCY["bookings"]
    cards = sorted(urgency, key=urgency.__getitem__)
    steps = NextSteps(days, due, waiting, documents, cards)
    if steps.empty:
        steps.empty_action = _next_action(household_id, has_children, today)
    return steps


def _next_action(household_id: int, has_children: bool, today: date) -> str:
    """ "children": add one; "enrol": enrol one; "book": book days. One query at most."""
    if not has_children:
        return "children"
    enrolled = db.session.scalar(
        select(
            exists().where(
                Enrolment.household_id == household_id,
                Enrolment.status == "accepted",
                Enrolment.school_year_id == SchoolYear.id,
                SchoolYear.ends_on >= today,
            )
        )
    )
    return "book" if enrolled else "enrol"
