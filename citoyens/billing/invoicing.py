"""The monthly invoice run and credit notes (DOMAIN.md "Billing").

A month is billed once it is over (à terme échu), from its bookings and attendance:

- booked, and present, absent without certificate, or attendance not recorded → billed;
- booked with a medical certificate **accepted by staff** → not billed; a certificate still
  pending at the run, or refused, → billed (credited on a later invoice once accepted);
- booked and marked "absent justifié" by staff with no certificate from the family → not
  billed (a staff decision);
- present without a booking (walk-in) → billed with the service's surcharge, without the
  surcharge when an accepted medical certificate came with it (DOMAIN.md "Chalonnes");
- cancelled after the cut-off (`late`) → billed, unless an accepted certificate justifies it;
- cancelled in time, waiting list → not billed.

What each invoice billed is recorded per booking (`BilledDay`); a billed day that stops
being billable becomes a credit line on the household's next invoice, and the household's
credit balance is deducted from it (billing/corrections.py).

The price is the activity's for the household's QF band in the school year of each day
(unknown QF → top band). An activity without a price for that band is not billed: the
run reports it ("activités sans tarif") and the back office asks before issuing anyway.

Invoice numbers come from one counter row per year, incremented in the transaction that
inserts the invoice, inside a savepoint with it: a number is only ever kept together with
its invoice, so the numbering stays gapless even when two runs race. The partial unique
index (one invoice per household and month) makes a re-run, even a concurrent one, add
nothing: the loser's savepoint rolls back, its number with it.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import holidays
from flask import current_app, has_request_context
from sqlalchemy import and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.accounts.models import User
from citoyens.billing.models import (
    BilledDay,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Mandate,
    QfBand,
)
from citoyens.billing.tariffs import band_for, euros, prices_of
from citoyens.database import utcnow
from citoyens.documents.models import Document
from citoyens.extensions import db
from citoyens.formatting import month_fr, weekday_fr
from citoyens.forms import today_in_paris
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.mail import absolute_url
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity, SchoolYear, Service


class BillingError(ValueError):
    """A run or a credit note that cannot be done; the message is French."""


# --- Months -----------------------------------------------------------------------------------

_MONTH = re.compile(r"^\s*([0-9]{4})-([0-9]{1,2})\s*$")


def parse_month(value: str | None) -> date:
    """ "2026-09" → 1 September 2026. BillingError (French) for anything else."""
    match = _MONTH.match(value or "")
    if match:
        year, month = int(match.group(1)), int(match.group(2))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return date(year, month, 1)
    shown = (value or "").strip()[:20]
    raise BillingError(f"Mois invalide : « {shown} ». Indiquez-le ainsi : 2026-09.")


def month_bounds(month: date) -> tuple[date, date]:
    first = month.replace(day=1)
    following = next_month(first)
    return first, following - timedelta(days=1)


def next_month(month: date) -> date:
    return (month.replace(day=1) + timedelta(days=32)).replace(day=1)


def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def of_month(month: date) -> str:
    """ "de septembre 2026", "d'octobre 2026": the month after "de", elided before a vowel."""
    label = month_fr(month)
    return f"d'{label}" if label[:1] in "aeiou" else f"de {label}"


def check_month_is_over(month: date, today: date) -> None:
    """Invoices bill a past month: its attendance is recorded and a re-run adds nothing,
    so billing a month not over would lose its last days for good."""
    if month.replace(day=1) >= today.replace(day=1):
        raise BillingError(
            f"Le mois {of_month(month)} n'est pas terminé : ses factures s'émettent "
            "à partir du 1er du mois suivant."
        )


# --- Billing rules (pure) ---------------------------------------------------------------------

KIND_ORDER = {"booked": 0, "late_cancel": 1, "walk_in": 2}


def billing_kind(status: str, late: bool, attendance: str | None, certificate: str | None):
    """What a booking costs: "booked", "late_cancel", "walk_in", or None (not billed).

    `certificate` is the review status of the family's medical certificate ("pending",
    "accepted", "refused"), None without one: only an accepted one exempts the day. The
    family's declaration marks the day "excused" too, so "excused" alone exempts only
    when no certificate came with it (staff's own decision at the call list)."""
    accepted = certificate == "accepted"
    if status == "booked":
        if accepted or (certificate is None and attendance == "excused"):
            return None
        return "booked"  # present, absent without justification, or not recorded
    if status == "walk_in":
        return "walk_in"
    if status == "cancelled" and late and not accepted:
        return "late_cancel"
    return None  # cancelled in time, waiting list


def line_label(kind: str, activity_name: str, surcharge_cents: int = 0) -> str:
    if kind == "late_cancel":
        return f"{activity_name} — annulations tardives"
    if kind == "walk_in":
        if surcharge_cents:
            return f"{activity_name} — sans réservation (majoration {euros(surcharge_cents)})"
        return f"{activity_name} — sans réservation"
    return activity_name


@dataclass(frozen=True)
class BookingRow:
    """One booking of the month, as the run reads it."""

    household_id: int
    child_id: int
    child_name: str
    activity_id: int
    activity_name: str
    school_year_id: int
    day: date
    status: str
    late: bool = False
    attendance: str | None = None
    certificate: str | None = None  # review status of its medical certificate, if any
    surcharge_cents: int = 0
    booking_id: int | None = None

    @property
    def certificate_accepted(self) -> bool:
        return self.certificate == "accepted"


@dataclass
class LineDraft:
    kind: str
    child_id: int
    child_name: str
    activity_id: int
    activity_name: str
    label: str
    unit_price_cents: int
    days: list[date] = field(default_factory=list)
    # Charges: the booking of each day. Credit lines: the billed days they credit.
    booking_ids: list[int | None] = field(default_factory=list)
    billed_day_ids: list[int] = field(default_factory=list)
    # A line of no day (the credit balance): its quantity is 1.
    single: bool = False

    @property
    def quantity(self) -> int:
        return 1 if self.single else len(self.days)

    @property
    def amount_cents(self) -> int:
        return self.unit_price_cents * self.quantity


@dataclass
class HouseholdBill:
    """A household's invoice to be: the month's charges (`lines`), the credit lines of
    days billed before and no longer billable, and its credit balance available."""

    household_id: int
    lines: list[LineDraft]
    band_labels: list[str]
    credit_lines: list[LineDraft] = field(default_factory=list)
    balance_cents: int = 0

    @property
    def charges_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    @property
    def credits_cents(self) -> int:
        """What the credit lines give back (positive)."""
        return -sum(line.amount_cents for line in self.credit_lines)

    @property
    def surplus_cents(self) -> int:
        """Credit lines beyond the month's charges: carried to the credit balance."""
        return max(0, self.credits_cents - self.charges_cents)

    @property
    def applied_cents(self) -> int:
        """The credit balance deducted: never more than what is left to pay."""
        return min(max(0, self.balance_cents), max(0, self.charges_cents - self.credits_cents))

    @property
    def total_cents(self) -> int:
        return max(0, self.charges_cents - self.credits_cents) - self.applied_cents

    @property
    def worth_issuing(self) -> bool:
        """Something to charge, or a credit to show the family."""
        return self.charges_cents > 0 or bool(self.credit_lines)


@dataclass
class MissingTariff:
    """Days not billed because the activity has no price for the household's band."""

    school_year_id: int
    activity_id: int
    activity_name: str
    band_label: str | None  # None: the school year has no band at all
    days: int = 0
    households: set[int] = field(default_factory=set)
    school_year_name: str = ""


def price_bookings(
    rows: Iterable[BookingRow],
    family_quotients: dict[int, int | None],
    bands_by_year: dict[int, list],
    prices: dict[tuple[int, int], int],
) -> tuple[dict[int, HouseholdBill], list[MissingTariff]]:
    """The bills of the month, per household, and what could not be priced.

    One line per (child, activity, unit price, kind), its days listed in order.
    """
    lines: dict[int, dict[tuple, LineDraft]] = defaultdict(dict)
    labels: dict[int, dict[int, str]] = defaultdict(dict)
    missing: dict[tuple, MissingTariff] = {}
    for row in rows:
        kind = billing_kind(row.status, row.late, row.attendance, row.certificate)
        if kind is None:
            continue
        band = band_for(
            bands_by_year.get(row.school_year_id, ()), family_quotients.get(row.household_id)
        )
        price = None if band is None else prices.get((row.activity_id, band.id))
        if band is not None:
            labels[row.household_id][row.school_year_id] = band.label
        if price is None:
            key = (row.school_year_id, row.activity_id, None if band is None else band.id)
            gap = missing.setdefault(
                key,
                MissingTariff(
                    row.school_year_id,
                    row.activity_id,
                    row.activity_name,
                    None if band is None else band.label,
                ),
            )
            gap.days += 1
            gap.households.add(row.household_id)
            continue
        surcharge = row.surcharge_cents if kind == "walk_in" and not row.certificate_accepted else 0
        unit = price + surcharge
        key = (row.child_id, row.activity_id, unit, kind)
        line = lines[row.household_id].get(key)
        if line is None:
            line = lines[row.household_id][key] = LineDraft(
                kind,
                row.child_id,
                row.child_name,
                row.activity_id,
                row.activity_name,
                line_label(kind, row.activity_name, surcharge),
                unit,
            )
        line.days.append(row.day)
        line.booking_ids.append(row.booking_id)
    bills = {}
    for household_id, drafts in lines.items():
        ordered = sorted(
            drafts.values(),
            key=lambda d: (
                d.child_name,
                d.child_id,
                d.activity_name,
                d.activity_id,
                KIND_ORDER[d.kind],
                d.unit_price_cents,
            ),
        )
        for draft in ordered:
            pairs = sorted(zip(draft.days, draft.booking_ids, strict=True), key=lambda p: p[0])
            draft.days = [day for day, _booking in pairs]
            draft.booking_ids = [booking for _day, booking in pairs]
        years = labels[household_id]
        bills[household_id] = HouseholdBill(
            household_id, ordered, [years[year_id] for year_id in sorted(years)]
        )
    return bills, sorted(missing.values(), key=lambda m: (m.school_year_id, m.activity_name))


# --- Reading a month --------------------------------------------------------------------------


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


def _invoiced_households(month: date):
    return select(Invoice.household_id).where(Invoice.month == month, Invoice.kind == "invoice")


def booking_rows(month: date) -> list[BookingRow]:
    """The month's bookings that may cost something, of households not yet invoiced for it,
    with the review status of their certificate; a booking an invoice already bills (a
    child who changed home) is left out. One query."""
    first, last = month_bounds(month)
    live_billed = select(BilledDay.booking_id).where(
        BilledDay.credited_by_line_id.is_(None), BilledDay.booking_id.is_not(None)
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
        )
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .join(Service, Service.id == Activity.service_id)
        .join(Person, Person.id == Booking.child_id)
        .outerjoin(Document, Document.id == Booking.certificate_id)
        .where(
            ActivityDay.day >= first,
            ActivityDay.day <= last,
            or_(
                Booking.status.in_(("booked", "walk_in")),
                and_(Booking.status == "cancelled", Booking.late.is_(True)),
            ),
            Booking.household_id.not_in(_invoiced_households(first)),
            Booking.id.not_in(live_billed),
        )
    )
    return [
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
        ) in db.session.execute(query)
    ]


def plan_month(month: date) -> MonthPlan:
    """Price the month for every household without its invoice yet, with the credit lines
    of days invoiced before and the credit balances. Eight queries."""
    from citoyens.billing import corrections
    from citoyens.billing.credits import credit_balances

    month = month.replace(day=1)
    rows = booking_rows(month)
    household_ids = {row.household_id for row in rows}
    year_ids = {row.school_year_id for row in rows}
    quotients = dict(
        db.session.execute(
            select(Household.id, Household.family_quotient).where(Household.id.in_(household_ids))
        ).all()
    )
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
    already = db.session.scalar(
        select(func.count()).select_from(_invoiced_households(month).subquery())
    )
    for household_id, items in corrections.pending_corrections(not_invoiced_for=month).items():
        bill = bills.setdefault(household_id, HouseholdBill(household_id, [], []))
        bill.credit_lines = corrections.credit_lines(items)
    balances = credit_balances(bills)
    for bill in bills.values():
        bill.balance_cents = balances.get(bill.household_id, 0)
    billed = sorted(
        (bill for bill in bills.values() if bill.worth_issuing), key=lambda b: b.household_id
    )
    return MonthPlan(month, billed, missing, already)


# --- Numbers and dates ------------------------------------------------------------------------


def format_number(year: int, sequence: int) -> str:
    """F2026-000042: the year of issue and six digits (credit notes share the series)."""
    return f"F{year}-{sequence:06d}"


def take_number(year: int) -> int:
    """The next number of `year`, taken in the current transaction (the counter row stays
    locked until it ends). The year's row is created on first use, safely under races."""
    counter = InvoiceCounter.__table__
    bump = (
        update(counter)
        .where(counter.c.year == year)
        .values(last_number=counter.c.last_number + 1)
        .returning(counter.c.last_number)
    )
    number = db.session.execute(bump).scalar_one_or_none()
    if number is None:
        db.session.execute(_insert_counter_if_missing(year))
        number = db.session.execute(bump).scalar_one()
    return number


def _insert_counter_if_missing(year: int):
    dialect = db.session.get_bind().dialect.name
    values = {"year": year, "last_number": 0}
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - the project runs on SQLite and PostgreSQL
        return insert(InvoiceCounter.__table__).values(**values)
    return (
        dialect_insert(InvoiceCounter.__table__)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["year"])
    )


@lru_cache(maxsize=16)
def _bank_holidays(year: int) -> frozenset[date]:
    """TARGET2 closing days: no SEPA settlement on them."""
    return frozenset(holidays.financial_holidays("XECB", years=year))


def next_business_day(day: date) -> date:
    """`day` itself when banks settle on it, else the next day they do."""
    while day.weekday() >= 5 or day in _bank_holidays(day.year):
        day += timedelta(days=1)
    return day


def notice_days() -> int:
    """SEPA pre-notification: the family is told of a debit at least this many days before
    it (SEPA_PRENOTIFICATION_DAYS, 14 by default as in the SEPA rulebook; the mandate text
    states it). The invoice is that notice: it gives the amount and the date."""
    return max(1, int(current_app.config.get("SEPA_PRENOTIFICATION_DAYS", 14)))


def planned_debit_day(month: date, debit_day: int) -> date:
    """`debit_day` of the month after the month billed (the last day of a short month)."""
    following = next_month(month)
    last_day = (next_month(following) - timedelta(days=1)).day
    return following.replace(day=max(1, min(debit_day, last_day)))


def debit_date(month: date, issued_on: date, debit_day: int, days: int | None = None) -> date:
    """When an invoice under direct debit is collected: `debit_day` of the month after the
    month billed, or, when that leaves less than the pre-notification's `days` (the
    setting by default) after issue, the first TARGET business day from then on."""
    earliest = issued_on + timedelta(days=notice_days() if days is None else days)
    return next_business_day(max(planned_debit_day(month, debit_day), earliest))


def debit_warning(month: date, issued_on: date, debit_day: int | None = None) -> str | None:
    """What the invoice run tells staff when the configured debit day comes too soon after
    the issue for the pre-notification, and is postponed; None when it is not."""
    if debit_day is None:
        debit_day = current_app.config["DIRECT_DEBIT_DAY"]
    days = notice_days()
    planned = planned_debit_day(month, debit_day)
    if planned >= issued_on + timedelta(days=days):
        return None
    moved = debit_date(month, issued_on, debit_day, days)
    return (
        f"Le prélèvement du {weekday_fr(planned)} serait annoncé moins de {days} jours avant : "
        f"il est reporté au {weekday_fr(moved)}."
    )


# --- Issuing ----------------------------------------------------------------------------------


@dataclass
class IssuedInvoice:
    id: int
    number: str
    household_id: int
    addressee: str
    total_cents: int
    paperless: bool
    status: str
    debit_on: date | None = None
    mailed: bool = False


@dataclass
class RunResult:
    month: date
    issued: list[IssuedInvoice] = field(default_factory=list)
    missing_tariffs: list[MissingTariff] = field(default_factory=list)
    already_invoiced: int = 0  # households skipped: their invoice of the month existed
    emailed: int = 0
    not_emailed: int = 0  # paperless, but no account address to write to
    debit_warning: str | None = None  # the debit day postponed for the pre-notification

    @property
    def count(self) -> int:
        return len(self.issued)

    @property
    def total_cents(self) -> int:
        return sum(invoice.total_cents for invoice in self.issued)

    @property
    def paper(self) -> list[IssuedInvoice]:
        return [invoice for invoice in self.issued if not invoice.paperless]

    @property
    def paperless(self) -> list[IssuedInvoice]:
        return [invoice for invoice in self.issued if invoice.paperless]


@dataclass
class Addressee:
    name: str
    address: str | None
    family_quotient: int | None
    paperless: bool


def addressees(household_ids: Iterable[int]) -> dict[int, Addressee]:
    """Who each invoice is made out to: the first account holder, else the first adult;
    the household's address, QF and paperless choice as they are now. Three queries."""
    ids = set(household_ids)
    if not ids:
        return {}
    holders: dict[int, str] = {}
    for household_id, first_name, last_name in db.session.execute(
        select(User.household_id, User.first_name, User.last_name)
        .where(User.household_id.in_(ids), User.role == "parent")
        .order_by(User.id)
    ):
        holders.setdefault(household_id, f"{first_name} {last_name}")
    for household_id, first_name, last_name in db.session.execute(
        select(HouseholdMember.household_id, Person.first_name, Person.last_name)
        .join(Person, Person.id == HouseholdMember.person_id)
        .where(
            HouseholdMember.household_id.in_(ids),
            HouseholdMember.role == "adult",
            HouseholdMember.left_at.is_(None),
        )
        .order_by(HouseholdMember.id)
    ):
        holders.setdefault(household_id, f"{first_name} {last_name}")
    result = {}
    for household in db.session.scalars(select(Household).where(Household.id.in_(ids))):
        town = " ".join(part for part in (household.postcode, household.city) if part)
        parts = [household.address_line, household.address_extra, town]
        result[household.id] = Addressee(
            name=holders.get(household.id, f"Foyer n° {household.id}")[:255],
            address="\n".join(part for part in parts if part) or None,
            family_quotient=household.family_quotient,
            paperless=household.paperless_invoices,
        )
    return result


def active_mandates(household_ids: Iterable[int], month: date) -> dict[int, Mandate]:
    """The mandate that pays each household's invoice of `month`, if any."""
    ids = set(household_ids)
    if not ids:
        return {}
    return {
        mandate.household_id: mandate
        for mandate in db.session.scalars(
            select(Mandate).where(
                Mandate.household_id.in_(ids),
                Mandate.revoked_at.is_(None),
                Mandate.first_month <= month,
            )
        )
    }


def _is_month_duplicate(error: IntegrityError) -> bool:
    text = str(error.orig)
    return "uq_invoices_household_month" in text or (
        "invoices.household_id" in text and "invoices.month" in text
    )


def _insert_invoice(
    bill: HouseholdBill, month: date, today: date, who: Addressee, mandate: Mandate | None
) -> Invoice | None:
    """Insert one invoice with its number, in a savepoint: None when a concurrent run
    billed this household for the month first (its number is given back with it).
    Raises CorrectionRaced (savepoint rolled back) when a concurrent run credited some of
    its days first."""
    from citoyens.billing import corrections
    from citoyens.billing.credits import credit_balance

    config = current_app.config
    try:
        with db.session.begin_nested():
            if bill.credit_lines or bill.balance_cents > 0:
                # The balance as it is now, no other run or refund taking from it meanwhile.
                corrections.lock_household(bill.household_id)
                bill.balance_cents = credit_balance(bill.household_id)
            if bill.total_cents == 0:
                mandate = None  # nothing to pay, nothing to debit
            drafts = bill.lines + bill.credit_lines + corrections.balance_lines(bill)
            sequence = take_number(today.year)
            invoice = Invoice(
                household_id=bill.household_id,
                kind="invoice",
                year=today.year,
                sequence=sequence,
                number=format_number(today.year, sequence),
                month=month,
                issued_at=utcnow(),
                due_on=today + timedelta(days=config["INVOICE_DUE_DAYS"]),
                total_cents=bill.total_cents,
                status=(
                    "paid" if bill.total_cents == 0 else "direct_debit" if mandate else "issued"
                ),
                paperless=who.paperless,
                addressee=who.name,
                address=who.address,
                family_quotient=who.family_quotient,
                band_label=" / ".join(bill.band_labels)[:60] or None,
                mandate_id=mandate.id if mandate else None,
                debit_on=debit_date(month, today, config["DIRECT_DEBIT_DAY"]) if mandate else None,
            )
            invoice.lines = [
                InvoiceLine(
                    kind=line.kind,
                    child_id=line.child_id,
                    child_name=line.child_name[:120],
                    activity_id=line.activity_id,
                    label=line.label[:200],
                    unit_price_cents=line.unit_price_cents,
                    quantity=line.quantity,
                    amount_cents=line.amount_cents,
                    days=",".join(day.isoformat() for day in line.days) or None,
                )
                for line in drafts
            ]
            db.session.add(invoice)
            db.session.flush()
            corrections.record_invoice(invoice, bill, list(zip(drafts, invoice.lines, strict=True)))
    except IntegrityError as error:
        if not _is_month_duplicate(error):
            raise
        return None
    return invoice


def _issue_bill(
    bill: HouseholdBill, month: date, today: date, who: Addressee, mandate: Mandate | None
) -> Invoice | None | bool:
    """`_insert_invoice`, made again with fresh credit lines when a concurrent run (of
    another month) credited some of its days first. False: nothing left to issue."""
    from citoyens.billing import corrections

    for _attempt in range(5):
        try:
            return _insert_invoice(bill, month, today, who, mandate)
        except corrections.CorrectionRaced:
            fresh = corrections.pending_corrections([bill.household_id])
            bill.credit_lines = corrections.credit_lines(fresh.get(bill.household_id, []))
            if not bill.worth_issuing:
                return False
    raise BillingError("La facturation a été interrompue par une autre : relancez-la.")


def issue_month(
    month: date,
    actor=None,
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Issue the invoices of `month` (a past month) for every household with something to
    bill and no invoice of that month yet; then e-mail the paperless ones. `progress(done,
    total)` hears of each household handled (the job run's page shows it).

    Commits (through `write_transaction`): call it from a view, a command or a test, not
    inside a transaction of your own. Running a month again issues nothing new.
    """
    from citoyens.transactions import after_commit, write_transaction

    month = month.replace(day=1)
    today = today or today_in_paris()
    check_month_is_over(month, today)

    def work() -> RunResult:
        plan = plan_month(month)
        result = RunResult(month, missing_tariffs=plan.missing_tariffs)
        result.already_invoiced = plan.already_invoiced
        ids = [bill.household_id for bill in plan.bills]
        who = addressees(ids)
        mandates = active_mandates(ids, month)
        invoiced_meanwhile: set[int] = set()
        for done, bill in enumerate(plan.bills):
            if progress is not None:
                progress(done, len(plan.bills))
            if bill.household_id in invoiced_meanwhile:
                result.already_invoiced += 1
                continue
            invoice = _issue_bill(
                bill, month, today, who[bill.household_id], mandates.get(bill.household_id)
            )
            if invoice is False:
                continue  # its credits went to another run's invoice: nothing left to issue
            if invoice is None:
                # A concurrent run of the month committed first (PostgreSQL: we waited for
                # its counter lock): what it billed is visible now, skip it at once.
                invoiced_meanwhile = set(db.session.scalars(_invoiced_households(month)))
                result.already_invoiced += 1
                continue
            result.issued.append(
                IssuedInvoice(
                    invoice.id,
                    invoice.number,
                    invoice.household_id,
                    invoice.addressee,
                    invoice.total_cents,
                    invoice.paperless,
                    invoice.status,
                    invoice.debit_on,
                )
            )
        if progress is not None:
            progress(len(plan.bills), len(plan.bills))
        if any(invoice.status == "direct_debit" for invoice in result.issued):
            result.debit_warning = debit_warning(month, today)
        missing_days = sum(gap.days for gap in result.missing_tariffs)
        audit.record(
            "invoice.run",
            actor=actor,
            target=f"month:{month:%Y-%m}",
            details=f"issued:{result.count} total:{result.total_cents} "
            f"skipped:{result.already_invoiced} days_without_tariff:{missing_days}",
        )
        if result.paperless:
            after_commit(lambda: mail_invoices(result))
        return result

    return write_transaction(work)


# --- E-mail -----------------------------------------------------------------------------------


def invoice_link(invoice_id: int) -> str | None:
    """The family's page of the invoice; None outside a request without a known address."""
    try:
        return absolute_url("billing.invoice", invoice_id=invoice_id)
    except RuntimeError:
        return None


def site_address_known() -> bool:
    """Whether an absolute link can be made: a request's host, PUBLIC_URL or SERVER_NAME
    (a command without either would write "localhost" links)."""
    config = current_app.config
    return has_request_context() or bool(config.get("PUBLIC_URL") or config.get("SERVER_NAME"))


@contextmanager
def _mail_context() -> Iterator[None]:
    """A request context for the e-mail templates when run from a command."""
    if has_request_context():
        yield
        return
    from citoyens.reservations.closures import mail_context

    with mail_context():
        yield


def mail_invoices(result: RunResult) -> None:
    """Tell each paperless household its invoice is there; note when it was mailed.
    Runs after the run's commit; the caller (write_transaction) commits again."""
    from citoyens.mail import send_mail
    from citoyens.requests.operations import family_recipients

    wanted = {invoice.id: invoice for invoice in result.paperless}
    subject = f"Votre facture {of_month(result.month)} est disponible"
    links = site_address_known()
    with _mail_context():
        for invoice in db.session.scalars(
            select(Invoice).where(Invoice.id.in_(wanted)).order_by(Invoice.id)
        ):
            recipients = family_recipients(invoice.household_id)
            for email in recipients:
                send_mail(
                    "invoice-issued",
                    email,
                    subject,
                    "invoice_issued",
                    number=invoice.number,
                    of_month=of_month(invoice.month),
                    total=euros(invoice.total_cents),
                    due_on=invoice.due_on,
                    debit_on=invoice.debit_on,
                    direct_debit=invoice.status == "direct_debit",
                    link=invoice_link(invoice.id) if links else None,
                )
            if recipients:  # in the outbox: the worker sends it (and retries)
                invoice.mailed_at = utcnow()
                wanted[invoice.id].mailed = True
                result.emailed += 1
            else:
                result.not_emailed += 1
        db.session.flush()


# --- Credit notes -----------------------------------------------------------------------------


def credited_cents(invoice_id: int) -> int:
    """How much the credit notes of an invoice already gave back (a positive amount)."""
    total = db.session.scalar(
        select(func.coalesce(func.sum(Invoice.total_cents), 0)).where(
            Invoice.credit_for_id == invoice_id, Invoice.kind == "credit"
        )
    )
    return -int(total or 0)


def credits_of(invoice_id: int) -> list[Invoice]:
    return list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.credit_for_id == invoice_id, Invoice.kind == "credit")
            .order_by(Invoice.year, Invoice.sequence)
        )
    )


def creditable_cents(invoice: Invoice) -> int:
    return max(0, invoice.total_cents - credited_cents(invoice.id))


def credit_note(
    invoice: Invoice,
    lines: list[tuple[str, int]],
    reason: str,
    actor,
    today: date | None = None,
) -> Invoice:
    """A credit note ("avoir") on `invoice`: `lines` are (label, amount in cents, positive:
    what is given back). Its number comes from the same counter. When the credit notes
    cover the whole invoice, an invoice still to be paid or debited becomes "cancelled".

    Flushes; the caller commits (a view through `write_transaction`).
    """
    today = today or today_in_paris()
    # The invoice row locked (PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers):
    # two credit notes at once cannot give back more than the invoice.
    db.session.execute(select(Invoice.id).where(Invoice.id == invoice.id).with_for_update())
    db.session.refresh(invoice)
    if invoice.kind != "invoice":
        raise BillingError("Un avoir ne peut porter que sur une facture, pas sur un avoir.")
    if invoice.status == "cancelled":
        raise BillingError("Cette facture est déjà entièrement annulée par avoir.")
    reason = " ".join((reason or "").split())
    if not reason:
        raise BillingError("Indiquez le motif de l'avoir.")
    if not lines or any(amount <= 0 for _label, amount in lines):
        raise BillingError("Le montant de l'avoir doit être supérieur à zéro.")
    if any(not (label or "").strip() for label, _amount in lines):
        raise BillingError("Chaque ligne de l'avoir doit avoir un libellé.")
    amount = sum(cents for _label, cents in lines)
    remaining = creditable_cents(invoice)
    if amount > remaining:
        raise BillingError(
            f"Le montant dépasse ce qui reste à créditer sur cette facture ({euros(remaining)})."
        )
    sequence = take_number(today.year)
    credit = Invoice(
        household_id=invoice.household_id,
        kind="credit",
        credit_for_id=invoice.id,
        year=today.year,
        sequence=sequence,
        number=format_number(today.year, sequence),
        month=invoice.month,
        issued_at=utcnow(),
        due_on=today,
        total_cents=-amount,
        status="issued",
        paperless=invoice.paperless,
        addressee=invoice.addressee,
        address=invoice.address,
        family_quotient=invoice.family_quotient,
        band_label=invoice.band_label,
    )
    credit.lines = [
        InvoiceLine(
            kind="credit",
            child_name="",
            label=" ".join(label.split())[:200],
            unit_price_cents=-cents,
            quantity=1,
            amount_cents=-cents,
        )
        for label, cents in lines
    ]
    db.session.add(credit)
    if amount == remaining and invoice.status in ("issued", "direct_debit"):
        invoice.status = "cancelled"
    db.session.flush()
    audit.record(
        "invoice.credit_note",
        actor=actor,
        target=f"invoice:{invoice.id}",
        details=f"{credit.number} amount:{amount} reason:{reason}",
    )
    return credit


# --- What the run page lists ------------------------------------------------------------------


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
                Invoice.credit_for_id.in_([invoice.id for invoice in invoices]),
            )
            .order_by(Invoice.year, Invoice.sequence)
        ):
            credits[credit.credit_for_id].append(credit)
    return MonthInvoices(invoices, dict(credits))
