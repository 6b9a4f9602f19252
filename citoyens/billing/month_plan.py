"""Reading a month: what its run would bill (the plan, from its bookings and attendance),
and the invoices already issued for it (what the run page lists)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, exists, func, or_, select

from citoyens.billing import corrections
from citoyens.billing.models import (
    BilledDay,
    HouseholdCredit,
    Invoice,
    QfBand,
)
from citoyens.billing.months import month_bounds
from citoyens.billing.pricing import BookingRow, HouseholdBill, MissingTariff, price_bookings
from citoyens.billing.tariffs import prices_of
from citoyens.documents.models import Document
from citoyens.extensions import db
from citoyens.households.models import Household, Person
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity, SchoolYear, Service


@dataclass
class MonthPlan:
    """What a run of the month would bill now."""

    month: date
    bills: list[HouseholdBill]
    missing_tariffs: list[MissingTariff]
    already_invoiced: int  # households of the month that already have their invoice

    @property
    def total_cents(self) -> int:
        return sum(bill.total_cents for bill in self.bills)


def invoiced_households(month: date):
    return select(Invoice.household_id).where(Invoice.month == month, Invoice.kind == "invoice")


def booking_rows(
    month: date, households: tuple[int, int] | None = None
) -> tuple[list[BookingRow], dict[int, int | None]]:
    """The month's bookings that may cost something, of households not yet invoiced for it
    (those with ids in the range `households`, both ends included, when given), with the
    review status of their certificate; a booking an invoice already bills (a child who
    changed home) is left out. And the QF of each household found. One query."""
    first, last = month_bounds(month)
    # NOT EXISTS, not NOT IN: per booking, a probe of the live billed days' unique index
    # (PostgreSQL hashes a NOT IN subquery whole, every billed day of every month).
    live_billed = exists().where(
        BilledDay.booking_id == Booking.id, BilledDay.credited_by_line_id.is_(None)
    )
    query = (
        select(
            Booking.id,
            Booking.household_id,
            Booking.child_id,
            Person.first_name,
            Person.last_name,
            ActivityDay.activity_id,
            Activity.name,
            ActivityDay.school_year_id,
            ActivityDay.day,
            Booking.status,
            Booking.late,
            Booking.attendance,
            Document.status,
            Service.walk_in_surcharge_cents,
            Household.family_quotient,
        )
        .join(Household, Household.id == Booking.household_id)
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .join(Service, Service.id == Activity.service_id)
        .join(Person, Person.id == Booking.child_id)
        .outerjoin(Document, Document.id == Booking.certificate_id)
        .where(
            Booking.day >= first,  # the activity day's date, copied: ix_bookings_household_day
            Booking.day <= last,
            or_(
                Booking.status.in_(("booked", "walk_in")),
                and_(Booking.status == "cancelled", Booking.late.is_(True)),
            ),
            Booking.household_id.not_in(invoiced_households(first)),
            ~live_billed,
        )
    )
    if households is not None:
        query = query.where(Booking.household_id.between(*households))
    rows: list[BookingRow] = []
    quotients: dict[int, int | None] = {}
    for (
        booking_id,
        household_id,
        child_id,
        first_name,
        last_name,
        activity_id,
        activity_name,
        year_id,
        day,
        status,
        late,
        attendance,
        certificate,
        surcharge,
        quotient,
    ) in db.session.execute(query):
        quotients[household_id] = quotient
        rows.append(
            BookingRow(
                household_id=household_id,
                child_id=child_id,
                child_name=f"{first_name} {last_name}",
                activity_id=activity_id,
                activity_name=activity_name,
                school_year_id=year_id,
                day=day,
                status=status,
                late=bool(late),
                attendance=attendance,
                certificate=certificate,
                surcharge_cents=surcharge or 0,
                booking_id=booking_id,
            )
        )
    return rows, quotients


def _balances(households: tuple[int, int] | None) -> dict[int, int]:
    """Credit balances (non-zero) of the households in the id range, or of all: no list
    of ids bound (a month of 100,000 households would pass the drivers' limits)."""
    query = (
        select(HouseholdCredit.household_id, func.sum(HouseholdCredit.amount_cents))
        .group_by(HouseholdCredit.household_id)
        .having(func.sum(HouseholdCredit.amount_cents) != 0)
    )
    if households is not None:
        query = query.where(HouseholdCredit.household_id.between(*households))
    return {household_id: int(total) for household_id, total in db.session.execute(query)}


def plan_month(month: date, households: tuple[int, int] | None = None) -> MonthPlan:
    """Price the month for every household without its invoice yet (those with ids in the
    range `households` when given: a batch of the run), with the credit lines of days
    invoiced before and the credit balances. Seven queries, none binding a list of
    households."""
    month = month.replace(day=1)
    rows, quotients = booking_rows(month, households)
    year_ids = {row.school_year_id for row in rows}
    bands_by_year: dict[int, list[QfBand]] = defaultdict(list)
    for band in db.session.scalars(
        select(QfBand).where(QfBand.school_year_id.in_(year_ids)).order_by(QfBand.position)
    ):
        bands_by_year[band.school_year_id].append(band)
    prices = prices_of(band.id for bands in bands_by_year.values() for band in bands)
    bills, missing = price_bookings(rows, quotients, bands_by_year, prices)
    names = dict(
        db.session.execute(
            select(SchoolYear.id, SchoolYear.name).where(SchoolYear.id.in_(year_ids))
        ).all()
    )
    for gap in missing:
        gap.school_year_name = names.get(gap.school_year_id, "")
    already = invoiced_households(month)
    if households is not None:
        already = already.where(Invoice.household_id.between(*households))
    already_count = db.session.scalar(select(func.count()).select_from(already.subquery()))
    pending = corrections.pending_corrections(households=households, not_invoiced_for=month)
    for household_id, items in pending.items():
        bill = bills.setdefault(household_id, HouseholdBill(household_id, [], []))
        bill.credit_lines = corrections.credit_lines(items)
    balances = _balances(households)
    for bill in bills.values():
        bill.balance_cents = balances.get(bill.household_id, 0)
    billed = sorted(
        (bill for bill in bills.values() if bill.worth_issuing), key=lambda b: b.household_id
    )
    return MonthPlan(month, billed, missing, already_count)


@dataclass
class MonthInvoices:
    invoices: list[Invoice]
    credits: dict[int, list[Invoice]]  # invoice id → its credit notes

    @property
    def total_cents(self) -> int:
        return sum(invoice.total_cents for invoice in self.invoices)

    @property
    def paper(self) -> list[Invoice]:
        return [invoice for invoice in self.invoices if not invoice.paperless]

    @property
    def mailed(self) -> int:
        return sum(1 for invoice in self.invoices if invoice.mailed_at is not None)


def month_invoices(month: date) -> MonthInvoices:
    """The invoices issued for `month`, in number order, and their credit notes. Two queries."""
    invoices = list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.month == month.replace(day=1), Invoice.kind == "invoice")
            .order_by(Invoice.year, Invoice.sequence)
        )
    )
    credits: dict[int, list[Invoice]] = defaultdict(list)
    if invoices:
        for credit in db.session.scalars(
            select(Invoice)
            .where(
                Invoice.kind == "credit",
                Invoice.credit_for_id.in_(  # a subquery: no list of 60,000 ids bound
                    select(Invoice.id).where(
                        Invoice.month == month.replace(day=1), Invoice.kind == "invoice"
                    )
                ),
            )
            .order_by(Invoice.year, Invoice.sequence)
        ):
            credits[credit.credit_for_id].append(credit)
    return MonthInvoices(invoices, dict(credits))
