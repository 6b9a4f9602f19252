"""What a booking costs (DOMAIN.md "Billing"): the pure billing rules of a month.

- booked, and present, absent without certificate, or attendance not recorded → billed;
- booked with a medical certificate **accepted by staff** → not billed; a certificate still
  pending at the run, or refused, → billed (credited on a later invoice once accepted);
- booked and marked "absent justifié" by staff with no certificate from the family → not
  billed (a staff decision);
- present without a booking (walk-in) → billed with the service's surcharge, without the
  surcharge when an accepted medical certificate came with it (DOMAIN.md "Chalonnes");
- cancelled after the cut-off (`late`) → billed, unless an accepted certificate justifies it;
- cancelled in time, waiting list → not billed.

The price is the activity's for the household's QF band in the school year of each day
(unknown QF → top band). An activity without a price for that band is not billed: the
run reports it ("activités sans tarif") and the back office asks before issuing anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from citoyens.billing.tariffs import band_for, euros

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
    # (school year, QF) → band: looked up once, not once per booking.
    bands: dict[tuple[int, int | None], object] = {}
    for row in rows:
        kind = billing_kind(row.status, row.late, row.attendance, row.certificate)
        if kind is None:
            continue
        quotient = family_quotients.get(row.household_id)
        try:
            band = bands[row.school_year_id, quotient]
        except KeyError:
            band = bands[row.school_year_id, quotient] = band_for(
                bands_by_year.get(row.school_year_id, ()), quotient
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
