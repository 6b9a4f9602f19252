"""Changes to days already invoiced: credit lines (avoirs) on the next invoice, and the
household's credit balance used on it (DOMAIN.md "Billing").

An issued invoice is never edited. Each invoice records the bookings it billed
(`BilledDay`). At the next run, a billed day whose booking is no longer billable under the
rules (a certificate accepted since, attendance corrected by staff, a cancellation that
no longer costs anything) becomes a credit line of that invoice, naming the day; the row
is then marked credited by that line, with a conditional UPDATE whose row count is
checked, so no day is credited twice, even by two runs at once. Then the credit balance is
deducted (never more than the invoice's total); credit lines beyond the month's charges
leave a total of zero and the surplus goes to the balance.

These functions flush; the run (`invoicing.issue_month`) commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import insert, or_, select, update

from citoyens.billing.credits import add_credit
from citoyens.billing.models import BilledDay, Invoice, InvoiceLine
from citoyens.billing.pricing import LineDraft, billing_kind
from citoyens.billing.rules import days_compact
from citoyens.documents.models import Document
from citoyens.extensions import db
from citoyens.households.models import Household
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity


class CorrectionRaced(Exception):
    """Another run credited some of these days first: the bill is made again."""


@dataclass(frozen=True)
class Correction:
    """A billed day that is no longer billable: to be credited."""

    billed_day_id: int
    household_id: int
    child_id: int | None
    child_name: str
    activity_id: int | None
    activity_name: str
    day: date
    amount_cents: int
    reason: str


# Why a day is credited, as the family reads it (singular, plural).
REASONS = {
    "excused": ("absence justifiée", "absences justifiées"),
    "cancelled": ("annulation", "annulations"),
    "other": ("correction", "corrections"),
}


def correction_reason(status: str, attendance: str | None, certificate: str | None) -> str:
    """The key of REASONS for a billed booking that is no longer billable."""
    if status == "cancelled":
        return "cancelled"
    if status == "booked" and (certificate == "accepted" or attendance == "excused"):
        return "excused"
    return "other"


def pending_corrections(
    household_ids: Iterable[int] | None = None,
    *,
    not_invoiced_for: date | None = None,
    households: tuple[int, int] | None = None,
) -> dict[int, list[Correction]]:
    """Per household, the billed days not credited yet whose booking is no longer billable.

    `household_ids` limits to those households, `households` to an id range;
    `not_invoiced_for` leaves out households
    that already have their invoice of that month (their credits wait for the next one).
    One query; a booked day without certificate nor "excused" (nearly all of them) is
    billable whatever else, and is left out by the database.
    """
    query = (
        select(
            BilledDay.id,
            BilledDay.household_id,
            BilledDay.day,
            BilledDay.amount_cents,
            InvoiceLine.child_id,
            InvoiceLine.child_name,
            ActivityDay.activity_id,
            Activity.name,
            Booking.status,
            Booking.late,
            Booking.attendance,
            Document.status,
        )
        .join(InvoiceLine, InvoiceLine.id == BilledDay.invoice_line_id)
        .join(Booking, Booking.id == BilledDay.booking_id)
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .outerjoin(Document, Document.id == Booking.certificate_id)
        .where(
            BilledDay.credited_by_line_id.is_(None),
            or_(
                Booking.status != "booked",
                Booking.certificate_id.is_not(None),
                Booking.attendance == "excused",
            ),
        )
        .order_by(BilledDay.household_id, BilledDay.day, BilledDay.id)
    )
    if household_ids is not None:
        query = query.where(BilledDay.household_id.in_(list(household_ids)))
    if households is not None:  # an id range, both ends included (a batch of the run)
        query = query.where(BilledDay.household_id.between(*households))
    if not_invoiced_for is not None:
        invoiced = select(Invoice.household_id).where(
            Invoice.month == not_invoiced_for.replace(day=1), Invoice.kind == "invoice"
        )
        query = query.where(BilledDay.household_id.not_in(invoiced))
    found: dict[int, list[Correction]] = defaultdict(list)
    for (
        billed_id,
        household_id,
        day,
        amount,
        child_id,
        child_name,
        activity_id,
        activity_name,
        status,
        late,
        attendance,
        certificate,
    ) in db.session.execute(query):
        if billing_kind(status, bool(late), attendance, certificate) is not None:
            continue
        found[household_id].append(
            Correction(
                billed_id,
                household_id,
                child_id,
                child_name,
                activity_id,
                activity_name,
                day,
                amount,
                correction_reason(status, attendance, certificate),
            )
        )
    return dict(found)


def credit_label(activity_name: str, reason: str, days: list[date]) -> str:
    """ "Avoir : Accueil du soir — absence justifiée le 12 octobre" (one day); several days
    are listed beside the label."""
    one, many = REASONS.get(reason, REASONS["other"])
    if len(days) == 1:
        return f"Avoir : {activity_name} — {one} le {days_compact(days[0].isoformat())}"
    return f"Avoir : {activity_name} — {many}"


def credit_lines(corrections: Iterable[Correction]) -> list[LineDraft]:
    """One credit line per child, activity, amount and reason, its days listed in order;
    negative amounts."""
    groups: dict[tuple, list[Correction]] = defaultdict(list)
    for item in corrections:
        key = (item.child_name, item.child_id, item.activity_name, item.activity_id)
        groups[(*key, item.amount_cents, item.reason)].append(item)
    lines = []
    for (child_name, child_id, activity_name, activity_id, amount, reason), items in sorted(
        groups.items(), key=lambda pair: (pair[0][:4], pair[0][5], pair[0][4])
    ):
        items.sort(key=lambda item: (item.day, item.billed_day_id))
        days = [item.day for item in items]
        lines.append(
            LineDraft(
                "credit",
                child_id,
                child_name,
                activity_id,
                activity_name,
                credit_label(activity_name, reason, days),
                -amount,
                days=days,
                billed_day_ids=[item.billed_day_id for item in items],
            )
        )
    return lines


APPLIED_LABEL = "Solde créditeur déduit"
SURPLUS_LABEL = "Avoir supérieur au montant du mois : reporté sur votre solde créditeur"


def balance_lines(bill) -> list[LineDraft]:
    """The credit balance deducted (negative), or the credit left over carried to it
    (positive, so that the lines still add up to the total)."""
    lines = []
    if bill.applied_cents:
        lines.append(_balance_line(APPLIED_LABEL, -bill.applied_cents))
    if bill.surplus_cents:
        lines.append(_balance_line(SURPLUS_LABEL, bill.surplus_cents))
    return lines


def _balance_line(label: str, cents: int) -> LineDraft:
    return LineDraft("balance", None, "", None, "", label, cents, single=True)


# --- At issue time, in the invoice's savepoint --------------------------------------------------


def lock_household(household_id: int) -> None:
    """Serialise what takes money out of the balance (PostgreSQL row lock; SQLite's
    BEGIN IMMEDIATE already serialises writers)."""
    db.session.execute(select(Household.id).where(Household.id == household_id).with_for_update())


def record_invoice(invoice: Invoice, bill, pairs: list[tuple[LineDraft, InvoiceLine]]) -> None:
    """What the new invoice billed (one row per booking), the days its credit lines credit,
    and the balance movements. Raises CorrectionRaced when a day was credited meanwhile."""
    billed = [
        {
            "invoice_line_id": line.id,
            "booking_id": booking_id,
            "household_id": invoice.household_id,
            "day": day,
            "amount_cents": draft.unit_price_cents,
        }
        for draft, line in pairs
        if draft.kind in ("booked", "late_cancel", "walk_in")
        for day, booking_id in zip(draft.days, draft.booking_ids, strict=True)
        if booking_id is not None
    ]
    if billed:
        db.session.execute(insert(BilledDay), billed)
    for draft, line in pairs:
        if draft.kind != "credit":
            continue
        done = db.session.execute(
            update(BilledDay)
            .where(
                BilledDay.id.in_(draft.billed_day_ids),
                BilledDay.household_id == invoice.household_id,
                BilledDay.credited_by_line_id.is_(None),
            )
            .values(credited_by_line_id=line.id)
            .execution_options(synchronize_session=False)
        ).rowcount
        if done != len(draft.billed_day_ids):
            raise CorrectionRaced(invoice.household_id)
    if bill.applied_cents:
        add_credit(
            invoice.household_id,
            "applied",
            -bill.applied_cents,
            invoice_id=invoice.id,
            note=f"Déduit de la facture {invoice.number}",
        )
    if bill.surplus_cents:
        add_credit(
            invoice.household_id,
            "correction",
            bill.surplus_cents,
            invoice_id=invoice.id,
            note=f"Avoirs de la facture {invoice.number} au-delà de son montant",
        )


# --- What the family is told ------------------------------------------------------------------


def invoiced_bookings(booking_ids: Iterable[int]) -> set[int]:
    """Those of the bookings an invoice bills now (not credited). One query."""
    ids = [booking_id for booking_id in booking_ids if booking_id is not None]
    if not ids:
        return set()
    return set(
        db.session.scalars(
            select(BilledDay.booking_id).where(
                BilledDay.booking_id.in_(ids), BilledDay.credited_by_line_id.is_(None)
            )
        )
    )


def absence_outcome(booking_id: int) -> str:
    """What a family is told once it sent a certificate for a day: only an accepted one
    changes money, and a day already invoiced is credited rather than "not billed"."""
    if booking_id in invoiced_bookings([booking_id]):
        return (
            "Absence déclarée : le certificat est envoyé au service. S'il est accepté, "
            "ce jour déjà facturé sera déduit de votre prochaine facture."
        )
    return (
        "Absence déclarée : le certificat est envoyé au service. S'il est accepté, "
        "ce jour ne sera pas facturé."
    )
