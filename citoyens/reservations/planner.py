""" "Planifier en un clic": one weekly pattern for several children over a period.

The preview and the booking read the same candidate days, so what the preview
announces is what the booking tries; places taken meanwhile come back as "complet"
in the result, day by day.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select

from citoyens.extensions import db
from citoyens.households.models import Person
from citoyens.reservations import exclusions
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.reservations.operations import REASONS, Outcome, book_days
from citoyens.reservations.rules import cutoff_at, entitlements
from citoyens.services.models import Activity

# Preview verdicts, in the order the page lists them.
VERDICTS = {
    "book": "seront réservés",
    "already": "déjà réservés",
    "full": "complets",
    "closed": "fermés",
    "cutoff": "délai dépassé",
    "incompatible": "une activité incompatible est déjà réservée",
}


@dataclass
class Line:
    """One child and one activity over the period."""

    child: Person
    activity: Activity
    days: dict[str, list[date]] = field(default_factory=dict)  # verdict -> dates
    day_ids: list[int] = field(default_factory=list)  # the ones to book
    # (first of month, school year id) -> days to book, for the cost estimate.
    to_book_by_month: Counter = field(default_factory=Counter)
    # first of month -> estimated cost in cents (None: no tariff for the family's band).
    costs: dict[date, int | None] = field(default_factory=dict)
    # date -> name of the incompatible activity the child holds (or will hold) that day.
    conflicts: dict[date, str] = field(default_factory=dict)

    @property
    def conflict_names(self) -> list[str]:
        return sorted(set(self.conflicts.values()))

    @property
    def total_cost(self) -> int | None:
        if not self.costs or None in self.costs.values():
            return None
        return sum(self.costs.values())

    def count(self, verdict: str) -> int:
        return len(self.days.get(verdict, []))

    @property
    def months(self) -> list[tuple[date, int]]:
        """Days to book per month: [(first of month, count)]."""
        counter = Counter(day.replace(day=1) for day in self.days.get("book", []))
        return sorted(counter.items())


@dataclass(frozen=True)
class Estimate:
    cents: int  # the total of the priced days
    days: int  # days to book with a known price
    unpriced_days: int  # days to book whose price is unknown (no tariff for the band)


@dataclass
class Plan:
    lines: list[Line]

    @property
    def to_book(self) -> int:
        return sum(line.count("book") for line in self.lines)

    def total(self, verdict: str) -> int:
        return sum(line.count(verdict) for line in self.lines)

    @property
    def estimate(self) -> Estimate:
        """The estimated cost of the days to book, over every line (after `estimate_costs`);
        the days of a month without a price for the family's band are counted apart."""
        cents = priced = unpriced = 0
        for line in self.lines:
            days: Counter[date] = Counter()
            for (month, _year_id), count in line.to_book_by_month.items():
                days[month] += count
            for month, count in days.items():
                cost = line.costs.get(month)
                if cost is None:
                    unpriced += count
                else:
                    cents += cost
                    priced += count
        return Estimate(cents, priced, unpriced)


def plannable(children: list[Person], first: date, last: date) -> dict[int, list[Activity]]:
    """child id -> the activities the child may book in the period (one query)."""
    result: dict[int, list[Activity]] = {child.id: [] for child in children}
    for item in entitlements([c.id for c in children], first, last):
        if item.activity not in result[item.child_id]:
            result[item.child_id].append(item.activity)
    return result


def preview(
    children: list[Person],
    activity_ids: set[int],
    weekdays: set[int],
    first: date,
    last: date,
    now: datetime,
) -> Plan:
    """What booking the pattern would do, day by day. Three queries (four when an
    activity belongs to an exclusion set)."""
    granted = [
        g
        for g in entitlements([c.id for c in children], first, last)
        if g.activity.id in activity_ids
    ]
    pairs = {(g.activity.id, g.school_year_id) for g in granted}
    days = (
        list(
            db.session.scalars(
                select(ActivityDay)
                .where(
                    ActivityDay.activity_id.in_({a for a, _ in pairs}),
                    ActivityDay.day >= first,
                    ActivityDay.day <= last,
                )
                .order_by(ActivityDay.day)
            )
        )
        if pairs
        else []
    )
    days = [d for d in days if d.day.isoweekday() in weekdays]
    booked = (
        set(
            db.session.execute(
                select(Booking.child_id, Booking.activity_day_id).where(
                    Booking.child_id.in_([c.id for c in children]),
                    Booking.activity_day_id.in_([d.id for d in days]),
                    Booking.status.in_(("booked", "walk_in")),
                )
            ).all()
        )
        if days
        else set()
    )
    # (child, date, exclusion set) -> (activity id, name) held: booked or waiting already,
    # or to be booked by this plan (the earlier activity of the day wins).
    held: dict[tuple, tuple[int, str]] = {}
    if days and any(g.activity.exclusion_set_id for g in granted):
        held = exclusions.held_by_children([c.id for c in children], first, last)
    lines: list[Line] = []
    taken_now: Counter[int] = Counter()  # places the siblings of this plan will take
    for child in children:
        for item in granted:
            if item.child_id != child.id:
                continue
            line = next(
                (x for x in lines if x.child is child and x.activity is item.activity), None
            )
            if line is None:
                line = Line(child, item.activity)
                lines.append(line)
            for row in days:
                if (row.activity_id, row.school_year_id) != (item.activity.id, item.school_year_id):
                    continue
                set_id = item.activity.exclusion_set_id
                holder = held.get((child.id, row.day, set_id)) if set_id else None
                if (child.id, row.id) in booked:
                    verdict = "already"
                elif row.closed:
                    verdict = "closed"
                elif now >= cutoff_at(item.activity, row.day):
                    verdict = "cutoff"
                elif holder is not None and holder[0] != item.activity.id:
                    verdict = "incompatible"
                    line.conflicts[row.day] = holder[1]
                elif row.booked + taken_now[row.id] >= row.capacity:
                    verdict = "full"
                else:
                    verdict = "book"
                    if set_id:
                        held[(child.id, row.day, set_id)] = (item.activity.id, item.activity.name)
                    taken_now[row.id] += 1
                    line.day_ids.append(row.id)
                    line.to_book_by_month[(row.day.replace(day=1), row.school_year_id)] += 1
                line.days.setdefault(verdict, []).append(row.day)
    return Plan(lines)


def estimate_costs(plan: Plan, family_quotient: int | None) -> None:
    """Fill each line's cost per month with the family's band prices (issue 6 tariffs):
    days to book × the unit price of the activity for the band of the QF (unknown QF:
    the top band). Two queries. Walk-in surcharges and absences are not foreseen."""
    from citoyens.billing.models import QfBand
    from citoyens.billing.tariffs import band_for, prices_of

    years = {year_id for line in plan.lines for (_month, year_id) in line.to_book_by_month}
    if not years:
        return
    bands_by_year: dict[int, list[QfBand]] = {}
    for band in db.session.scalars(select(QfBand).where(QfBand.school_year_id.in_(years))):
        bands_by_year.setdefault(band.school_year_id, []).append(band)
    chosen = {year: band_for(bands, family_quotient) for year, bands in bands_by_year.items()}
    prices = prices_of(band.id for band in chosen.values() if band is not None)
    for line in plan.lines:
        for (month, year_id), count in sorted(line.to_book_by_month.items()):
            band = chosen.get(year_id)
            price = prices.get((line.activity.id, band.id)) if band is not None else None
            if price is None or line.costs.get(month, 0) is None:
                line.costs[month] = None
            else:
                line.costs[month] = line.costs.get(month, 0) + count * price


@dataclass
class ResultLine:
    line: Line
    outcome: Outcome
    # (date, reason) of every day of the pattern not booked, in date order.
    missed: list[tuple[date, str]]

    @property
    def first_day(self) -> date | None:
        days = [d for values in self.line.days.values() for d in values]
        return min(days) if days else None


@dataclass
class Result:
    """What the booking did, per line: booked and waiting counts, what was not and why."""

    lines: list[ResultLine]

    @property
    def booked(self) -> int:
        return sum(len(item.outcome.booked) for item in self.lines)

    @property
    def waiting(self) -> int:
        return sum(len(item.outcome.waiting) for item in self.lines)


SKIPPED = ("full", "closed", "cutoff", "incompatible")


def _skipped_reason(line: Line, verdict: str, day: date) -> str:
    if verdict == "incompatible":
        return f"« {line.conflicts.get(day, '')} » est déjà réservé ce jour-là"
    return REASONS[verdict]


def apply(
    household_id: int,
    plan: Plan,
    *,
    actor,
    now: datetime,
    waiting_list: bool = False,
    full_day_ids: dict[tuple[int, int], list[int]] | None = None,
) -> Result:
    """Book every day the preview found free (and, when asked, put the full ones on the
    waiting list). A handful of statements per child and activity, not per day."""
    results = []
    for line in plan.lines:
        ids = list(line.day_ids)
        full_ids = (full_day_ids or {}).get((line.child.id, line.activity.id), [])
        if waiting_list:
            ids += full_ids
        outcome = book_days(
            household_id,
            line.child.id,
            ids,
            actor=actor,
            now=now,
            waiting_list=waiting_list,
            entitled_ids={line.activity.id},
        )
        dates = (
            dict(
                db.session.execute(
                    select(ActivityDay.id, ActivityDay.day).where(ActivityDay.id.in_(ids))
                ).all()
            )
            if ids
            else {}
        )
        waited = {dates[i] for i in outcome.waiting}
        missed = [
            (day, _skipped_reason(line, verdict, day))
            for verdict in SKIPPED
            for day in line.days.get(verdict, [])
            if not (verdict == "full" and day in waited)
        ]
        missed += [
            (dates[day_id], outcome.reason(day_id))
            for day_id, code in outcome.refused.items()
            if code not in ("already", "already_waiting")
        ]
        results.append(ResultLine(line, outcome, sorted(missed)))
    return Result(results)


def full_days(
    children: list[Person],
    activity_ids: set[int],
    weekdays: set[int],
    first: date,
    last: date,
    now: datetime,
) -> dict[tuple[int, int], list[int]]:
    """(child id, activity id) -> ids of the full days of the pattern (for the waiting list)."""
    result: dict[tuple[int, int], list[int]] = {}
    granted = [
        g
        for g in entitlements([c.id for c in children], first, last)
        if g.activity.id in activity_ids
    ]
    if not granted:
        return result
    rows = db.session.scalars(
        select(ActivityDay).where(
            ActivityDay.activity_id.in_({g.activity.id for g in granted}),
            ActivityDay.day >= first,
            ActivityDay.day <= last,
            ActivityDay.closed.is_(False),
            ActivityDay.booked >= ActivityDay.capacity,
        )
    )
    activities = {g.activity.id: g.activity for g in granted}
    for row in rows:
        if row.day.isoweekday() not in weekdays:
            continue
        if now >= cutoff_at(activities[row.activity_id], row.day):
            continue
        for g in granted:
            if (g.activity.id, g.school_year_id) == (row.activity_id, row.school_year_id):
                result.setdefault((g.child_id, g.activity.id), []).append(row.id)
    return result


def reason_label(code: str) -> str:
    return REASONS.get(code, code)
