"""Reservations: opening days, the holiday table, day generation, the cut-off, booking,
cancelling, the waiting list and the calendar loader.

Time is frozen by passing `now=` (dates are in school year 2030-2031, see
tests/reservations_factories.py); the pure rules are tested without a database.
The concurrent cases are in tests/test_reservations_concurrency.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import delete, func, select

from citoyens.accounts.models import User
from citoyens.core.models import MailMessage
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.forms import PARIS
from citoyens.reservations import rules
from citoyens.reservations.calendar import (
    Period,
    generate_days,
    library_holidays,
    opening_days,
    seed_holidays,
)
from citoyens.reservations.models import ActivityDay, Booking, BookingChange, Closure, Holiday
from citoyens.reservations.operations import book_days, cancel_days
from citoyens.reservations.rules import (
    cutoff_at,
    is_modifiable,
    load_calendars,
    parse_month,
    starts_at,
    waiting_ranks,
)
from citoyens.services.models import Activity, SchoolYear
from citoyens.transactions import write_transaction
from tests.conftest import counted_queries
from tests.enrolments_factories import make_school_year
from tests.factories import Account, make_user
from tests.reservations_factories import (
    EARLY,
    HOLIDAYS,
    Offer,
    add_child,
    bookings_of,
    children_of,
    day_ids,
    day_row,
    enrol_accepted,
    make_bookable_offer,
    set_capacity,
)

# --- opening_days (pure) ---------------------------------------------------------------------

TOUSSAINT = Period(date(2030, 10, 19), date(2030, 11, 3), "Vacances de la Toussaint")
PUBLIC = {date(2030, 11, 1), date(2030, 11, 11)}
STRIKE = Period(date(2030, 11, 14), date(2030, 11, 14), "Grève")


def days_open(weekdays, calendar, closures=(STRIKE,)):
    # Monday 14 October to Friday 15 November 2030: a school week, the two weeks of the
    # Toussaint holidays (with 1 November), two school weeks (with 11 November).
    return opening_days(
        weekdays=weekdays,
        calendar=calendar,
        first=date(2030, 10, 14),
        last=date(2030, 11, 15),
        public=PUBLIC,
        school_holidays=[TOUSSAINT],
        closures=list(closures),
    )


def october(*days):
    return [date(2030, 10, d) for d in days]


def november(*days):
    return [date(2030, 11, d) for d in days]


def test_term_days_skip_school_holidays_public_holidays_and_closures():
    assert days_open([1, 2, 4, 5], "term") == (
        october(14, 15, 17, 18) + november(4, 5, 7, 8, 12, 15)
    )


def test_holiday_days_are_only_school_holiday_weekdays_but_public_holidays():
    # "Vacances journée": no term Wednesday (16 October, 6 and 13 November) any more.
    assert days_open([1, 2, 3, 4, 5], "holidays") == (october(21, 22, 23, 24, 25, 28, 29, 30, 31))


def test_term_and_holidays_never_share_a_date():
    # The two Goulidons activities: "Mercredi journée" (term Wednesdays) and
    # "Vacances journée" (weekdays in the holidays) no longer open on the same date.
    wednesdays = days_open([3], "term")
    holidays = days_open([1, 2, 3, 4, 5], "holidays")
    assert wednesdays == october(16) + november(6, 13)
    assert not set(wednesdays) & set(holidays)


def test_both_calendar_keeps_every_chosen_weekday_but_public_holidays_and_closures():
    expected = [
        day
        for day in (date(2030, 10, 14) + timedelta(days=n) for n in range(33))
        if day.isoweekday() <= 5 and day not in PUBLIC and day != STRIKE.starts_on
    ]
    assert days_open([1, 2, 3, 4, 5], "both") == expected
    assert date(2030, 10, 23) in expected  # school holidays do not close the crèche


def test_the_activity_weekdays_filter_every_calendar():
    assert days_open([3], "term") == october(16) + november(6, 13)
    assert days_open([3], "holidays") == october(23, 30)
    assert days_open([1, 2, 4, 5], "holidays") == october(21, 22, 24, 25, 28, 29, 31)
    assert days_open([6], "both") == october(19, 26) + november(2, 9)
    assert days_open([], "both") == []


def test_a_closure_over_a_range_closes_each_of_its_days():
    works = Period(date(2030, 11, 5), date(2030, 11, 8), "Travaux")
    assert days_open([1, 2, 4, 5], "term", closures=[works]) == (
        october(14, 15, 17, 18) + november(4, 12, 14, 15)
    )


# --- The holiday table ------------------------------------------------------------------------

YEAR_2026 = (date(2026, 9, 1), date(2027, 8, 31))


def test_library_gathers_the_zone_b_toussaint_into_one_period():
    rows = library_holidays(*YEAR_2026)
    toussaint = [row for row in rows if row[0] == "school" and "Toussaint" in row[1]]
    # Days off from Saturday 17 October to Sunday 1 November; back at school on the 2nd.
    assert toussaint == [
        ("school", "Vacances de la Toussaint", date(2026, 10, 17), date(2026, 11, 1))
    ]
    # Christmas crosses the calendar year and stays one period.
    assert ("school", "Vacances de Noël", date(2026, 12, 19), date(2027, 1, 3)) in rows
    school = sorted((row[2], row[3]) for row in rows if row[0] == "school")
    for (_, end), (start, _) in zip(school, school[1:], strict=False):
        assert end < start  # periods do not overlap
    assert all(YEAR_2026[0] <= row[2] <= row[3] <= YEAR_2026[1] for row in rows)


def test_library_public_holidays_are_named_in_french():
    public = {row[2]: row[1] for row in library_holidays(*YEAR_2026) if row[0] == "public"}
    assert public[date(2026, 11, 11)] == "Armistice"
    assert public[date(2026, 12, 25)] == "Noël"
    assert public[date(2027, 3, 29)] == "Lundi de Pâques"
    assert public[date(2027, 5, 6)] == "Ascension"
    assert public[date(2027, 7, 14)] == "Fête nationale"
    assert len(public) == 11


def test_library_has_the_pont_de_l_ascension_2027():
    bridge = [row for row in library_holidays(*YEAR_2026) if "Ascension" in row[1]]
    assert ("school", "Pont de l'Ascension", date(2027, 5, 6), date(2027, 5, 8)) in bridge
    school = [Period(row[2], row[3]) for row in bridge if row[0] == "school"]
    assert any(date(2027, 5, 7) in period for period in school)  # the Friday off


def test_library_leaves_out_years_it_has_not_published():
    rows = library_holidays(date(2060, 9, 1), date(2061, 8, 31))
    assert rows and {row[0] for row in rows} == {"public"}


def test_seed_holidays_is_idempotent_and_keeps_staff_corrections(app):
    year_id = make_school_year(app, date(2026, 9, 1))
    with app.app_context():
        year = db.session.get(SchoolYear, year_id)
        expected = len(library_holidays(year.starts_on, year.ends_on))
        assert seed_holidays(year) == expected
        db.session.commit()
        assert seed_holidays(year) == 0
        # Staff correct the Toussaint period (name and end) and a public holiday's name.
        toussaint = db.session.scalar(
            select(Holiday).where(Holiday.kind == "school", Holiday.starts_on == date(2026, 10, 17))
        )
        assert toussaint.source == "library"
        toussaint.name, toussaint.ends_on, toussaint.source = (
            "Toussaint",
            date(2026, 11, 2),
            "staff",
        )
        armistice = db.session.scalar(
            select(Holiday).where(Holiday.kind == "public", Holiday.starts_on == date(2026, 11, 11))
        )
        armistice.name, armistice.source = "Armistice 1918", "staff"
        db.session.commit()
        assert seed_holidays(year) == 0
        db.session.commit()
    with app.app_context():
        rows = db.session.scalars(
            select(Holiday).where(Holiday.starts_on.in_([date(2026, 10, 17), date(2026, 11, 11)]))
        ).all()
        assert sorted((r.kind, r.name, r.ends_on, r.source) for r in rows) == [
            ("public", "Armistice 1918", date(2026, 11, 11), "staff"),
            ("school", "Toussaint", date(2026, 11, 2), "staff"),
        ]
        total = db.session.scalar(select(func.count()).select_from(Holiday))
        assert total == expected


def test_holidays_of_reads_the_table_not_the_library(app):
    from citoyens.reservations.calendar import holidays_of

    with app.app_context():
        db.session.add_all(
            [
                Holiday(
                    kind="public",
                    name="Férié local",
                    starts_on=date(2031, 3, 3),
                    ends_on=date(2031, 3, 4),
                ),
                Holiday(
                    kind="school",
                    name="Pont",
                    starts_on=date(2031, 3, 10),
                    ends_on=date(2031, 3, 12),
                ),
            ]
        )
        db.session.flush()
        public, school = holidays_of(date(2031, 3, 1), date(2031, 3, 31))
    assert public == {date(2031, 3, 3), date(2031, 3, 4)}
    assert school == [Period(date(2031, 3, 10), date(2031, 3, 12), "Pont")]


# --- generate_days ----------------------------------------------------------------------------


def expected_school_days(weekdays=(1, 2, 4, 5)) -> list[date]:
    """Written out again from the factory's holidays, independently of opening_days."""
    closed = set()
    for _kind, _name, first, last in HOLIDAYS:
        closed.update(first + timedelta(days=n) for n in range((last - first).days + 1))
    day, days = date(2030, 9, 1), []
    while day <= date(2031, 8, 31):
        if day.isoweekday() in weekdays and day not in closed:
            days.append(day)
        day += timedelta(days=1)
    return days


def all_days(app, offer: Offer) -> dict[int, list[date]]:
    return {
        activity_id: [day for _id, day in day_ids(app, activity_id)]
        for activity_id in offer.activity_ids
    }


def regenerate(app, offer: Offer):
    with app.app_context():
        result = generate_days(
            db.session.get(SchoolYear, offer.year_id),
            list(db.session.scalars(select(Activity).where(Activity.id.in_(offer.activity_ids)))),
        )
        db.session.commit()
        return result


def test_generate_days_creates_each_opening_day_once(app):
    offer = make_bookable_offer(app, activities=2, generate=False)
    result = regenerate(app, offer)
    expected = expected_school_days()
    assert result.created == 2 * len(expected)
    days = all_days(app, offer)
    assert days == dict.fromkeys(offer.activity_ids, expected)
    first = days[offer.activity_ids[0]]
    assert date(2030, 9, 2) in first and date(2030, 9, 4) not in first  # Monday, Wednesday
    assert date(2030, 10, 21) not in first and date(2030, 11, 11) not in first
    assert date(2030, 11, 4) in first and date(2031, 4, 14) not in first
    assert first[-1] == date(2031, 7, 4)  # the last Friday before the summer
    with app.app_context():
        capacities = set(db.session.scalars(select(ActivityDay.capacity)).all())
    assert capacities == {30}
    # Again: nothing changes.
    again = regenerate(app, offer)
    assert (again.created, again.removed, again.closed, again.reopened) == (0, 0, 0, 0)
    assert all_days(app, offer) == days


def test_generate_days_holidays_calendar(app):
    offer = make_bookable_offer(
        app, activities=1, weekdays="1,2,3,4,5", calendar="holidays", generate=False
    )
    regenerate(app, offer)
    days = all_days(app, offer)[offer.activity_ids[0]]
    assert date(2030, 9, 4) not in days  # a term Wednesday
    assert date(2030, 10, 21) in days and date(2030, 11, 11) not in days
    assert date(2031, 8, 1) in days  # summer
    holidays = [(first, last) for kind, _n, first, last in HOLIDAYS if kind == "school"]
    assert all(any(first <= d <= last for first, last in holidays) for d in days)


def test_generate_days_keeps_staff_capacity_of_an_existing_day(app):
    offer = make_bookable_offer(app, activities=1)
    first_id, _day = day_ids(app, offer.activity_ids[0])[0]
    set_capacity(app, first_id, 3)
    regenerate(app, offer)
    assert day_row(app, first_id) == (3, 0, False)


@dataclass
class Family:
    account: Account
    household_id: int
    child_ids: list[int]


def family(app, offer: Offer, children: int = 1, activity_ids=None) -> Family:
    account = make_user(app, role="parent", children=children)
    kids = children_of(app, account.household_id)
    for kid in kids:
        enrol_accepted(app, account.household_id, kid, offer, activity_ids)
    return Family(account, account.household_id, kids)


def book(app, fam: Family, days, *, child=0, staff=False, waiting_list=False, now=EARLY):
    """book_days through write_transaction, as a view does."""
    actor_id = make_user(app, role="staff").id if staff else fam.account.id
    with app.test_request_context():
        actor = db.session.get(User, actor_id)
        return write_transaction(
            lambda: book_days(
                fam.household_id,
                fam.child_ids[child],
                days,
                actor=actor,
                staff=staff,
                waiting_list=waiting_list,
                now=now,
            )
        )


def cancel(app, fam: Family, days, *, child=0, staff=False, now=EARLY):
    actor_id = make_user(app, role="staff").id if staff else fam.account.id
    with app.test_request_context():
        actor = db.session.get(User, actor_id)
        return write_transaction(
            lambda: cancel_days(
                fam.household_id, fam.child_ids[child], days, actor=actor, staff=staff, now=now
            )
        )


def test_a_holiday_added_later_deletes_free_days_and_closes_booked_ones(app):
    offer = make_bookable_offer(app, activities=1)
    fam = family(app, offer)
    activity_id = offer.activity_ids[0]
    days = {d: i for i, d in day_ids(app, activity_id, date(2031, 2, 3), date(2031, 2, 4))}
    tuesday = days[date(2031, 2, 4)]
    assert book(app, fam, [tuesday]).booked == [tuesday]
    with app.app_context():
        db.session.add(
            Holiday(
                kind="school", name="Pont", starts_on=date(2031, 2, 3), ends_on=date(2031, 2, 4)
            )
        )
        db.session.commit()
    result = regenerate(app, offer)
    assert (result.created, result.removed, result.closed, result.reopened) == (0, 1, 1, 0)
    assert [i for i, _ in day_ids(app, activity_id, date(2031, 2, 3), date(2031, 2, 4))] == [
        tuesday
    ]
    assert day_row(app, tuesday) == (30, 1, True)
    assert bookings_of(app, fam.child_ids[0]) == {tuesday: "booked"}  # the booking stands
    with app.app_context():
        assert db.session.get(ActivityDay, tuesday).closed_reason == "Jour de fermeture"
    # A closed day cannot be booked.
    other = family(app, offer)
    assert book(app, other, [tuesday]).refused == {tuesday: "closed"}
    # Idempotent while the holiday is there.
    again = regenerate(app, offer)
    assert (again.created, again.removed, again.closed, again.reopened) == (0, 0, 0, 0)
    # The holiday removed: the closed day reopens, the deleted one comes back.
    with app.app_context():
        db.session.execute(delete(Holiday).where(Holiday.name == "Pont"))
        db.session.commit()
    result = regenerate(app, offer)
    assert (result.created, result.removed, result.closed, result.reopened) == (1, 0, 0, 1)
    assert day_row(app, tuesday) == (30, 1, False)
    with app.app_context():
        assert db.session.get(ActivityDay, tuesday).closed_reason is None
    assert len(day_ids(app, activity_id, date(2031, 2, 3), date(2031, 2, 4))) == 2
    assert book(app, other, [tuesday]).booked == [tuesday]


def test_a_closure_closes_booked_days_with_its_reason_and_spares_other_activities(app):
    offer = make_bookable_offer(app, activities=2)
    fam = family(app, offer)
    first, second = offer.activity_ids
    (thursday, _), (friday, _) = day_ids(app, first, date(2031, 3, 6), date(2031, 3, 7))
    book(app, fam, [thursday])
    with app.app_context():
        db.session.add(
            Closure(
                service_id=offer.service_id,
                activity_id=first,
                starts_on=date(2031, 3, 6),
                ends_on=date(2031, 3, 7),
                reason="Grève",
            )
        )
        db.session.commit()
    result = regenerate(app, offer)
    assert (result.removed, result.closed) == (1, 1)
    assert day_row(app, thursday)[2] is True
    assert [i for i, _ in day_ids(app, first, date(2031, 3, 6), date(2031, 3, 7))] == [thursday]
    assert len(day_ids(app, second, date(2031, 3, 6), date(2031, 3, 7))) == 2
    with app.app_context():
        assert db.session.get(ActivityDay, thursday).closed_reason == "Grève"
        db.session.execute(delete(Closure))
        db.session.commit()
    result = regenerate(app, offer)
    assert (result.created, result.reopened) == (1, 1)
    assert friday not in [i for i, _ in day_ids(app, first)]  # a new row for Friday


# --- Cut-off (pure) ---------------------------------------------------------------------------


def activity(start=time(7, 30), hours=72) -> Activity:
    return Activity(start_time=start, cutoff_hours=hours)


def test_cutoff_is_72_hours_before_the_start_in_paris():
    canteen = activity()
    day = date(2030, 9, 5)  # Thursday, summer time (UTC+2)
    assert starts_at(canteen, day) == datetime(2030, 9, 5, 5, 30, tzinfo=UTC)
    cutoff = cutoff_at(canteen, day)
    assert cutoff == datetime(2030, 9, 2, 5, 30, tzinfo=UTC)
    assert cutoff.utcoffset() == timedelta(hours=2)  # shown in Paris time
    assert not is_modifiable(canteen, day, cutoff)
    assert not is_modifiable(canteen, day, cutoff + timedelta(microseconds=1))
    assert is_modifiable(canteen, day, cutoff - timedelta(seconds=1))
    # The same instants given in another zone compare the same.
    assert not is_modifiable(canteen, day, cutoff.astimezone(UTC))
    assert is_modifiable(canteen, day, datetime(2030, 9, 2, 7, 29, 59, tzinfo=PARIS))


def test_cutoff_across_the_end_of_daylight_saving_is_72_real_hours():
    # Tuesday 27 October 2026 07:30 in Paris is winter time (UTC+1): 06:30 UTC. The clocks
    # went back on Sunday 25 October (03:00 -> 02:00), so 72 real hours before is
    # Saturday 24 October 06:30 UTC = 08:30 in Paris (summer time), not 07:30.
    canteen = activity()
    day = date(2026, 10, 27)
    start = starts_at(canteen, day)
    cutoff = cutoff_at(canteen, day)
    assert start.astimezone(UTC) == datetime(2026, 10, 27, 6, 30, tzinfo=UTC)
    assert cutoff.astimezone(UTC) == datetime(2026, 10, 24, 6, 30, tzinfo=UTC)
    assert (cutoff.astimezone(PARIS).hour, cutoff.astimezone(PARIS).minute) == (8, 30)
    assert start.astimezone(UTC) - cutoff.astimezone(UTC) == timedelta(hours=72)
    assert not is_modifiable(canteen, day, datetime(2026, 10, 24, 6, 30, tzinfo=UTC))
    assert is_modifiable(canteen, day, datetime(2026, 10, 24, 6, 29, 59, tzinfo=UTC))
    # At 07:30 Paris time on the Saturday (05:30 UTC) the day is still modifiable.
    assert is_modifiable(canteen, day, datetime(2026, 10, 24, 7, 30, tzinfo=PARIS))


def test_cutoff_across_the_start_of_daylight_saving_is_72_real_hours():
    # Tuesday 30 March 2027 07:30 in Paris is summer time (UTC+2): 05:30 UTC. The clocks
    # went forward on Sunday 28 March (02:00 -> 03:00): the cut-off is Saturday 27 March
    # 05:30 UTC = 06:30 in Paris (winter time).
    canteen = activity()
    day = date(2027, 3, 30)
    start, cutoff = starts_at(canteen, day), cutoff_at(canteen, day)
    assert start.astimezone(UTC) == datetime(2027, 3, 30, 5, 30, tzinfo=UTC)
    assert cutoff.astimezone(UTC) == datetime(2027, 3, 27, 5, 30, tzinfo=UTC)
    assert (cutoff.hour, cutoff.minute, cutoff.utcoffset()) == (6, 30, timedelta(hours=1))
    assert start.astimezone(UTC) - cutoff.astimezone(UTC) == timedelta(hours=72)
    assert not is_modifiable(canteen, day, datetime(2027, 3, 27, 5, 30, tzinfo=UTC))
    assert is_modifiable(canteen, day, datetime(2027, 3, 27, 6, 29, 59, tzinfo=PARIS))


def test_cutoff_follows_the_activity_hours():
    assert cutoff_at(activity(hours=0), date(2030, 9, 5)) == starts_at(activity(), date(2030, 9, 5))
    assert cutoff_at(activity(time(16, 30), hours=24), date(2030, 9, 5)) == datetime(
        2030, 9, 4, 14, 30, tzinfo=UTC
    )


# --- book_days --------------------------------------------------------------------------------


@pytest.fixture
def offer(app) -> Offer:
    return make_bookable_offer(app, activities=2, capacity=30)


def first_days(app, offer: Offer, count: int, activity: int = 0) -> list[int]:
    return [i for i, _ in day_ids(app, offer.activity_ids[activity])[:count]]


def changes_of(app, child_id: int, day_id: int) -> list[tuple]:
    with app.app_context():
        return [
            tuple(row)
            for row in db.session.execute(
                select(BookingChange.from_state, BookingChange.to_state, BookingChange.actor_kind)
                .join(Booking, Booking.id == BookingChange.booking_id)
                .where(Booking.child_id == child_id, Booking.activity_day_id == day_id)
                .order_by(BookingChange.id)
            )
        ]


def booked_count_matches(app, ids) -> None:
    """The denormalised counter equals the booked rows, on every day given."""
    with app.app_context():
        for day_id in ids:
            counter = db.session.scalar(select(ActivityDay.booked).where(ActivityDay.id == day_id))
            rows = db.session.scalar(
                select(func.count())
                .select_from(Booking)
                .where(Booking.activity_day_id == day_id, Booking.status == "booked")
            )
            assert counter == rows, (day_id, counter, rows)


def test_book_days_books_each_day_and_records_who(app, offer):
    fam = family(app, offer)
    days = first_days(app, offer, 3)
    outcome = book(app, fam, days)
    assert outcome.booked == days and not outcome.refused and outcome.changed
    assert bookings_of(app, fam.child_ids[0]) == dict.fromkeys(days, "booked")
    assert [day_row(app, d) for d in days] == [(30, 1, False)] * 3
    assert changes_of(app, fam.child_ids[0], days[0]) == [(None, "booked", "family")]
    with app.app_context():
        booking = db.session.scalar(select(Booking).where(Booking.activity_day_id == days[0]))
        assert booking.household_id == fam.household_id and booking.late is False


def test_book_days_refuses_a_closed_day(app, offer):
    fam = family(app, offer)
    day = first_days(app, offer, 1)[0]
    with app.app_context():
        db.session.get(ActivityDay, day).closed = True
        db.session.commit()
    assert book(app, fam, [day]).refused == {day: "closed"}
    assert book(app, fam, [day], staff=True).refused == {day: "closed"}
    assert day_row(app, day) == (30, 0, True)


def test_families_book_until_the_cutoff_staff_after_it(app, offer):
    fam = family(app, offer)
    day_id, day = day_ids(app, offer.activity_ids[0])[0]
    with app.app_context():
        cutoff = cutoff_at(db.session.get(Activity, offer.activity_ids[0]), day)
    assert book(app, fam, [day_id], now=cutoff).refused == {day_id: "cutoff"}
    assert bookings_of(app, fam.child_ids[0]) == {}
    just_before = cutoff - timedelta(seconds=1)
    assert book(app, fam, [day_id], now=just_before).booked == [day_id]
    cancel(app, fam, [day_id], now=just_before)
    late = cutoff + timedelta(days=5)  # even after the day itself
    outcome = book(app, fam, [day_id], staff=True, now=late)
    assert outcome.booked == [day_id]
    assert changes_of(app, fam.child_ids[0], day_id)[-1] == ("cancelled", "booked", "staff")


def test_book_days_refuses_activities_the_child_is_not_enrolled_in(app, offer):
    first, second = offer.activity_ids
    fam = family(app, offer, activity_ids=[first])
    mine, other = first_days(app, offer, 1, 0)[0], first_days(app, offer, 1, 1)[0]
    outcome = book(app, fam, [mine, other])
    assert outcome.booked == [mine] and outcome.refused == {other: "not_enrolled"}
    # The caller's list of entitled activities gives the same answer without a query each.
    with app.test_request_context():
        quick = book_days(
            fam.household_id,
            fam.child_ids[0],
            [other],
            actor=None,
            now=EARLY,
            entitled_ids={first},
        )
        assert quick.refused == {other: "not_enrolled"}
        db.session.rollback()
    assert day_row(app, other) == (30, 0, False)


def test_book_days_refuses_a_pending_enrolment_and_another_year(app, offer):
    account = make_user(app, role="parent")
    kid = add_child(app, account.household_id)
    fam = Family(account, account.household_id, [kid])
    enrolment_id = enrol_accepted(app, account.household_id, kid, offer)
    with app.app_context():
        db.session.get(Enrolment, enrolment_id).status = "pending"
        db.session.commit()
    day = first_days(app, offer, 1)[0]
    assert book(app, fam, [day]).refused == {day: "not_enrolled"}
    for status in ("refused", "waiting_list", "cancelled"):
        with app.app_context():
            db.session.get(Enrolment, enrolment_id).status = status
            db.session.commit()
        assert book(app, fam, [day]).refused == {day: "not_enrolled"}, status
    with app.app_context():
        db.session.get(Enrolment, enrolment_id).status = "accepted"
        db.session.commit()
    assert book(app, fam, [day]).booked == [day]


def test_book_days_refuses_a_day_already_booked(app, offer):
    fam = family(app, offer)
    days = first_days(app, offer, 2)
    book(app, fam, days[:1])
    outcome = book(app, fam, days)
    assert outcome.booked == days[1:] and outcome.refused == {days[0]: "already"}
    assert day_row(app, days[0]) == (30, 1, False)
    assert book(app, fam, days, staff=True).refused == dict.fromkeys(days, "already")


def test_a_full_day_is_refused_or_waiting_list(app):
    offer = make_bookable_offer(app, activities=1)
    day = first_days(app, offer, 1)[0]
    set_capacity(app, day, 1)
    first, second, third = (family(app, offer) for _ in range(3))
    assert book(app, first, [day]).booked == [day]
    assert book(app, second, [day]).refused == {day: "full"}
    assert bookings_of(app, second.child_ids[0]) == {}
    outcome = book(app, second, [day], waiting_list=True)
    assert outcome.waiting == [day] and not outcome.booked
    assert book(app, second, [day], waiting_list=True).refused == {day: "already_waiting"}
    assert book(app, second, [day]).refused == {day: "already_waiting"}
    # Staff cannot go over the capacity either.
    assert book(app, third, [day], staff=True).refused == {day: "full"}
    assert bookings_of(app, second.child_ids[0]) == {day: "waiting"}
    assert day_row(app, day) == (1, 1, False)
    assert changes_of(app, second.child_ids[0], day) == [(None, "waiting", "family")]


def test_a_waiting_child_gets_a_place_freed_when_booking_again(app):
    offer = make_bookable_offer(app, activities=1)
    day = first_days(app, offer, 1)[0]
    set_capacity(app, day, 1)
    first, second = family(app, offer), family(app, offer)
    book(app, first, [day])
    book(app, second, [day], waiting_list=True)
    # Capacity raised by staff: nobody is promoted, the waiting child books the place.
    set_capacity(app, day, 2)
    assert book(app, second, [day]).booked == [day]
    assert changes_of(app, second.child_ids[0], day)[-1] == ("waiting", "booked", "family")
    assert day_row(app, day) == (2, 2, False)
    booked_count_matches(app, [day])


def test_booked_counter_equals_booked_rows_after_many_operations(app):
    offer = make_bookable_offer(app, activities=1)
    days = first_days(app, offer, 3)
    for day in days:
        set_capacity(app, day, 2)
    families = [family(app, offer, children=2) for _ in range(3)]
    chance = random.Random(5)  # a fixed sequence
    for _ in range(60):
        fam = chance.choice(families)
        child = chance.randrange(2)
        chosen = chance.sample(days, chance.randint(1, 3))
        action = chance.random()
        if action < 0.55:
            outcome = book(app, fam, chosen, child=child, waiting_list=chance.random() < 0.5)
            assert set(outcome.booked + outcome.waiting + list(outcome.refused)) == set(chosen)
        else:
            cancel(app, fam, chosen, child=child)
        booked_count_matches(app, days)
    with app.app_context():
        counts = db.session.execute(
            select(Booking.status, func.count()).group_by(Booking.status)
        ).all()
    assert dict(counts).get("booked", 0) == sum(day_row(app, d)[1] for d in days)
    assert all(day_row(app, d)[1] <= 2 for d in days)


# --- cancel_days ------------------------------------------------------------------------------


def test_cancel_frees_the_place_and_rebooking_reuses_the_row(app, offer):
    fam = family(app, offer)
    day = first_days(app, offer, 1)[0]
    child = fam.child_ids[0]
    book(app, fam, [day])
    with app.app_context():
        booking_id = db.session.scalar(select(Booking.id).where(Booking.child_id == child))
    outcome = cancel(app, fam, [day])
    assert outcome.cancelled == [day] and not outcome.promoted
    assert day_row(app, day) == (30, 0, False)
    assert bookings_of(app, child) == {day: "cancelled"}
    assert cancel(app, fam, [day]).refused == {day: "not_booked"}
    assert day_row(app, day) == (30, 0, False)
    book(app, fam, [day])
    cancel(app, fam, [day])
    book(app, fam, [day])
    with app.app_context():
        rows = db.session.scalars(select(Booking).where(Booking.child_id == child)).all()
        assert [(b.id, b.status, b.late) for b in rows] == [(booking_id, "booked", False)]
    assert changes_of(app, child, day) == [
        (None, "booked", "family"),
        ("booked", "cancelled", "family"),
        ("cancelled", "booked", "family"),
        ("booked", "cancelled", "family"),
        ("cancelled", "booked", "family"),
    ]
    assert day_row(app, day) == (30, 1, False)


def test_families_cannot_cancel_after_the_cutoff_staff_cancel_late(app, offer):
    fam = family(app, offer)
    day_id, day = day_ids(app, offer.activity_ids[0])[0]
    book(app, fam, [day_id])
    with app.app_context():
        cutoff = cutoff_at(db.session.get(Activity, offer.activity_ids[0]), day)
    assert cancel(app, fam, [day_id], now=cutoff).refused == {day_id: "cutoff"}
    assert bookings_of(app, fam.child_ids[0]) == {day_id: "booked"}
    outcome = cancel(app, fam, [day_id], staff=True, now=cutoff)
    assert outcome.cancelled == [day_id]
    with app.app_context():
        booking = db.session.scalar(select(Booking).where(Booking.activity_day_id == day_id))
        assert (booking.status, booking.late) == ("cancelled", True)  # still billed
    assert day_row(app, day_id) == (30, 0, False)
    assert changes_of(app, fam.child_ids[0], day_id)[-1] == ("booked", "cancelled", "staff")
    # Booking again clears the late flag.
    book(app, fam, [day_id], staff=True, now=cutoff)
    with app.app_context():
        booking = db.session.scalar(select(Booking).where(Booking.activity_day_id == day_id))
        assert (booking.status, booking.late) == ("booked", False)


def test_staff_cancel_before_the_cutoff_is_not_late(app, offer):
    fam = family(app, offer)
    day = first_days(app, offer, 1)[0]
    book(app, fam, [day])
    cancel(app, fam, [day], staff=True)
    with app.app_context():
        assert (
            db.session.scalar(select(Booking.late).where(Booking.activity_day_id == day)) is False
        )


def full_day_with_waiting(app, waiting: int = 2):
    offer = make_bookable_offer(app, activities=1)
    day_id, day = day_ids(app, offer.activity_ids[0])[0]
    set_capacity(app, day_id, 1)
    holder = family(app, offer)
    book(app, holder, [day_id])
    queue = [family(app, offer) for _ in range(waiting)]
    for fam in queue:
        assert book(app, fam, [day_id], waiting_list=True).waiting == [day_id]
    return offer, day_id, day, holder, queue


def test_cancelling_promotes_the_first_waiting_child_and_tells_the_family(app, outbox):
    _offer, day_id, _day, holder, (first, second) = full_day_with_waiting(app)
    outcome = cancel(app, holder, [day_id])
    assert outcome.cancelled == [day_id] and len(outcome.promoted) == 1
    assert bookings_of(app, first.child_ids[0]) == {day_id: "booked"}
    assert bookings_of(app, second.child_ids[0]) == {day_id: "waiting"}
    assert day_row(app, day_id) == (1, 1, False)
    assert changes_of(app, first.child_ids[0], day_id) == [
        (None, "waiting", "family"),
        ("waiting", "booked", "system"),
    ]
    with app.app_context():
        promoted = db.session.get(Booking, outcome.promoted[0])
        assert promoted.child_id == first.child_ids[0] and promoted.waiting_since is None
        mails = db.session.scalars(select(MailMessage)).all()
        second_rank = waiting_ranks(
            [db.session.scalar(select(Booking.id).where(Booking.child_id == second.child_ids[0]))]
        )
    assert [(m.kind, m.recipient) for m in mails] == [("booking-promoted", first.account.email)]
    assert "Place libérée" in mails[0].subject and "02/09/2030" in mails[0].subject
    assert [m.recipients for m in outbox] == [[first.account.email]]
    assert list(second_rank.values()) == [1]
    # The next cancellation promotes the second one.
    cancel(app, first, [day_id])
    assert bookings_of(app, second.child_ids[0]) == {day_id: "booked"}
    booked_count_matches(app, [day_id])


def test_cancelling_a_waiting_place_frees_nothing(app, outbox):
    _offer, day_id, _day, holder, (first, second) = full_day_with_waiting(app)
    outcome = cancel(app, first, [day_id])
    assert outcome.cancelled == [day_id] and not outcome.promoted
    assert day_row(app, day_id) == (1, 1, False)
    assert bookings_of(app, holder.child_ids[0]) == {day_id: "booked"}
    assert not outbox
    cancel(app, holder, [day_id])
    assert bookings_of(app, second.child_ids[0]) == {day_id: "booked"}  # first left the list
    assert bookings_of(app, first.child_ids[0]) == {day_id: "cancelled"}


def test_no_promotion_after_the_cutoff(app, outbox):
    offer, day_id, day, holder, (first, _second) = full_day_with_waiting(app)
    with app.app_context():
        cutoff = cutoff_at(db.session.get(Activity, offer.activity_ids[0]), day)
    outcome = cancel(app, holder, [day_id], staff=True, now=cutoff)
    assert outcome.cancelled == [day_id] and not outcome.promoted
    assert day_row(app, day_id) == (1, 0, False)  # the place is free...
    assert bookings_of(app, first.child_ids[0]) == {day_id: "waiting"}  # ...nobody moved in
    assert not outbox


# --- Waiting ranks and calendars --------------------------------------------------------------


def test_waiting_ranks_are_positions_on_each_day(app):
    offer = make_bookable_offer(app, activities=1)
    days = first_days(app, offer, 2)
    for day in days:
        set_capacity(app, day, 1)
    book(app, family(app, offer), days)
    queue = [family(app, offer) for _ in range(3)]
    for fam in queue:
        book(app, fam, days[:1], waiting_list=True)
    book(app, queue[2], days[1:], waiting_list=True)  # first on the second day
    with app.app_context():
        ids = {
            (b.child_id, b.activity_day_id): b.id
            for b in db.session.scalars(select(Booking).where(Booking.status == "waiting"))
        }
        ranks = waiting_ranks(list(ids.values()))
        assert waiting_ranks([]) == {}
    by_child = {(key[0], key[1]): ranks[booking_id] for key, booking_id in ids.items()}
    kids = [fam.child_ids[0] for fam in queue]
    assert by_child == {
        (kids[0], days[0]): 1,
        (kids[1], days[0]): 2,
        (kids[2], days[0]): 3,
        (kids[2], days[1]): 1,
    }
    cancel(app, queue[0], days[:1])
    with app.app_context():
        assert waiting_ranks([ids[(kids[1], days[0])], ids[(kids[2], days[0])]]) == {
            ids[(kids[1], days[0])]: 1,
            ids[(kids[2], days[0])]: 2,
        }


def calendars(app, household_id: int, first: date, last: date, now: datetime, staff=False):
    with app.app_context():
        children = rules.children_of(household_id)
        return load_calendars(household_id, children, first, last, now, staff=staff)


def test_load_calendars_gives_each_day_its_state(app):
    offer = make_bookable_offer(app, activities=2)
    fam = family(app, offer, activity_ids=offer.activity_ids[:1])
    other = family(app, offer)
    september = day_ids(app, offer.activity_ids[0], date(2030, 9, 1), date(2030, 9, 30))
    (d2, _), (d3, _), (d5, _), (d6, _), (d9, _), (d10, day10) = september[:6]
    book(app, fam, [d2])
    set_capacity(app, d3, 1)
    book(app, other, [d3])
    book(app, fam, [d3], waiting_list=True)
    set_capacity(app, d5, 1)
    book(app, other, [d5])
    with app.app_context():
        db.session.get(ActivityDay, d6).closed = True
        db.session.commit()
        canteen = db.session.get(Activity, offer.activity_ids[0])
        now = cutoff_at(canteen, day10) - timedelta(hours=1)  # 9 Sept locked, 10th open
    result = calendars(app, fam.household_id, date(2030, 9, 1), date(2030, 9, 30), now)
    assert list(result) == fam.child_ids
    calendar = result[fam.child_ids[0]]
    assert [a.id for a in calendar.activities] == offer.activity_ids[:1]
    cells = {cell.day.id: cell for cell in calendar.cells}
    assert len(cells) == len(september)
    states = {day: cells[day].state for day in (d2, d3, d5, d6, d9, d10)}
    assert states == {
        d2: "booked",  # locked too, but the booking shows
        d3: "waiting",
        d5: "locked",  # full and past its cut-off
        d6: "closed",
        d9: "locked",
        d10: "available",
    }
    assert cells[d3].waiting_rank == 1 and cells[d2].waiting_rank is None
    assert cells[d10].modifiable and not cells[d9].modifiable
    assert cells[d2].cutoff == cutoff_at(canteen, date(2030, 9, 2))
    assert [week.monday for week in calendar.weeks][:2] == [date(2030, 9, 2), date(2030, 9, 9)]
    # Earlier, the full day is shown full; staff may change past days but not closed ones.
    early = calendars(app, fam.household_id, date(2030, 9, 1), date(2030, 9, 30), EARLY)
    early_cells = {cell.day.id: cell for cell in early[fam.child_ids[0]].cells}
    assert early_cells[d5].state == "full" and early_cells[d5].label == "Complet"
    staff_view = calendars(
        app, fam.household_id, date(2030, 9, 1), date(2030, 9, 30), now, staff=True
    )
    staff_cells = {cell.day.id: cell for cell in staff_view[fam.child_ids[0]].cells}
    assert staff_cells[d9].modifiable and not staff_cells[d6].modifiable


def test_load_calendars_of_a_household_without_enrolment_is_empty(app):
    account = make_user(app, role="parent", children=1)
    result = calendars(app, account.household_id, date(2030, 9, 1), date(2030, 9, 30), EARLY)
    [calendar] = result.values()
    assert calendar.weeks == [] and calendar.activities == []


def test_load_calendars_runs_a_fixed_number_of_queries(app):
    small = make_bookable_offer(app, activities=1)
    big = make_bookable_offer(app, activities=3)
    one = family(app, small)
    three = family(app, big, children=3)
    september = (date(2030, 9, 1), date(2030, 9, 30))
    for child in range(3):
        for activity in range(3):
            days = first_days(app, big, 4, activity)
            book(app, three, days[:3], child=child)
    set_capacity(app, first_days(app, big, 4)[3], 0)
    book(app, three, first_days(app, big, 4)[3:], waiting_list=True)
    book(app, one, first_days(app, small, 2)[:1])
    set_capacity(app, first_days(app, small, 2)[1], 0)
    book(app, one, first_days(app, small, 2)[1:], waiting_list=True)  # both lists rank

    def queries(household_id):
        with app.app_context():
            children = rules.children_of(household_id)
            with counted_queries(app) as statements:
                result = load_calendars(household_id, children, *september, EARLY)
                states = [cell.state for c in result.values() for cell in c.cells]
                labels = [cell.label for c in result.values() for cell in c.cells]
                ranks = [cell.waiting_rank for c in result.values() for cell in c.cells]
        return statements, states, labels, ranks

    small_statements, small_states, *_ = queries(one.household_id)
    big_statements, big_states, _labels, big_ranks = queries(three.household_id)
    assert len(big_states) == 3 * 3 * len(small_states)
    assert big_states.count("waiting") == 1 and 1 in big_ranks
    assert len(small_statements) == len(big_statements) == 4


# --- parse_month ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12", date(2026, 12, 1)),
        ("2027-1", date(2027, 1, 1)),
        (None, date(2030, 9, 1)),
        ("", date(2030, 9, 1)),
        ("2026-13", date(2030, 9, 1)),
        ("2026", date(2030, 9, 1)),
        ("2026-12-01", date(2030, 9, 1)),
        ("décembre", date(2030, 9, 1)),
        ("0-1", date(2030, 9, 1)),
        ("99999999999999999999-1", date(2030, 9, 1)),  # was an OverflowError
        ("9999-12", date(2030, 9, 1)),  # month_bounds would overflow
        ("1-1", date(2030, 9, 1)),
        ("-2026-12", date(2030, 9, 1)),
    ],
)
def test_parse_month(value, expected):
    assert parse_month(value, date(2030, 9, 17)) == expected


def test_month_bounds():
    assert rules.month_bounds(date(2031, 2, 14)) == (date(2031, 2, 1), date(2031, 2, 28))
    assert rules.month_bounds(date(2030, 12, 1)) == (date(2030, 12, 1), date(2030, 12, 31))


# --- Deactivated offers, walk-ins, attendance, absences ---------------------------------------


@pytest.mark.parametrize("what", ["activity", "service"])
def test_a_deactivated_activity_or_service_cannot_be_booked(app, offer, what):
    from citoyens.services.models import Service

    fam = family(app, offer)
    day = first_days(app, offer, 1)[0]
    with app.app_context():
        if what == "activity":
            db.session.get(Activity, offer.activity_ids[0]).active = False
        else:
            db.session.get(Service, offer.service_id).active = False
        db.session.commit()
        assert not rules.is_entitled(fam.child_ids[0], db.session.get(ActivityDay, day))
    # Was booked: the day is not shown in the calendar but a day id sent by hand was taken.
    assert book(app, fam, [day]).refused == {day: "not_enrolled"}
    assert book(app, fam, [day], staff=True).refused == {day: "not_enrolled"}
    assert day_row(app, day) == (30, 0, False)


def test_a_walk_in_after_a_late_cancellation_is_billed_once(app, offer):
    from citoyens.reservations.attendance import record_walk_in
    from citoyens.reservations.operations import BookingError

    fam = family(app, offer)
    day_id, day = day_ids(app, offer.activity_ids[0])[0]
    book(app, fam, [day_id])
    with app.app_context():
        cutoff = cutoff_at(db.session.get(Activity, offer.activity_ids[0]), day)
    cancel(app, fam, [day_id], staff=True, now=cutoff)
    staff_id = make_user(app, role="staff").id
    with app.test_request_context():
        actor = db.session.get(User, staff_id)
        row = db.session.get(ActivityDay, day_id)
        booking = write_transaction(
            lambda: record_walk_in(fam.household_id, fam.child_ids[0], row, actor=actor)
        )
        assert (booking.status, booking.attendance, booking.late) == ("walk_in", "present", False)
        with pytest.raises(BookingError):
            record_walk_in(fam.household_id, fam.child_ids[0], row, actor=actor)
    assert day_row(app, day_id) == (30, 0, False)  # a walk-in takes no place
    assert changes_of(app, fam.child_ids[0], day_id)[-1] == (
        "cancelled",
        "walk_in:present",
        "staff",
    )
    # A child never booked comes: a new row.
    other = family(app, offer)
    with app.test_request_context():
        row = db.session.get(ActivityDay, day_id)
        walk_in = write_transaction(
            lambda: record_walk_in(other.household_id, other.child_ids[0], row, actor=None)
        )
        assert (walk_in.status, walk_in.late) == ("walk_in", False)
    assert changes_of(app, other.child_ids[0], day_id) == [(None, "walk_in:present", "system")]
    # The day is on the child's list: booking it is refused.
    assert book(app, other, [day_id], staff=True).refused == {day_id: "already"}


def test_set_attendance_only_on_booked_children_and_recorded(app, offer):
    from citoyens.reservations.attendance import set_attendance
    from citoyens.reservations.operations import BookingError

    fam = family(app, offer)
    other = family(app, offer)
    day = first_days(app, offer, 1)[0]
    book(app, fam, [day])
    book(app, other, [day])
    cancel(app, other, [day])
    staff_id = make_user(app, role="staff").id
    with app.test_request_context():
        actor = db.session.get(User, staff_id)
        mine = db.session.scalar(select(Booking).where(Booking.child_id == fam.child_ids[0]))
        write_transaction(lambda: set_attendance(mine, "absent", actor=actor))
        write_transaction(lambda: set_attendance(mine, "absent", actor=actor))  # no change
        write_transaction(lambda: set_attendance(mine, "present", actor=actor))
        cancelled = db.session.scalar(select(Booking).where(Booking.child_id == other.child_ids[0]))
        with pytest.raises(BookingError):
            set_attendance(cancelled, "present", actor=actor)
    assert changes_of(app, fam.child_ids[0], day)[1:] == [
        ("booked", "booked:absent", "staff"),
        ("booked:absent", "booked:present", "staff"),
    ]


def test_declare_absence_after_the_cutoff_with_a_certificate(app, offer, tmp_path, monkeypatch):
    from citoyens.documents.uploads import check_upload
    from citoyens.reservations.attendance import declare_absence
    from citoyens.reservations.operations import BookingError
    from tests.documents_factories import png

    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path / "uploads"))
    fam = family(app, offer)
    day_id, day = day_ids(app, offer.activity_ids[0])[0]
    book(app, fam, [day_id])
    with app.app_context():
        cutoff = cutoff_at(db.session.get(Activity, offer.activity_ids[0]), day)
    with app.test_request_context():
        actor = db.session.get(User, fam.account.id)
        booking = db.session.scalar(select(Booking).where(Booking.activity_day_id == day_id))
        child = db.session.get(rules.Person, fam.child_ids[0])
        checked = check_upload(png(), "certificat.png")
        with pytest.raises(BookingError, match="encore modifiable"):
            declare_absence(
                fam.household_id,
                child,
                booking,
                checked,
                actor=actor,
                now=cutoff - timedelta(seconds=1),
            )
        document = write_transaction(
            lambda: declare_absence(
                fam.household_id, child, booking, checked, actor=actor, now=cutoff
            )
        )
        booking = db.session.get(Booking, booking.id)
        assert (booking.status, booking.attendance) == ("booked", "excused")
        assert booking.certificate_id == document.id
    assert changes_of(app, fam.child_ids[0], day_id)[-1] == (
        "booked",
        "booked:excused",
        "family",
    )
    assert day_row(app, day_id) == (30, 1, False)


# --- write_transaction ------------------------------------------------------------------------


class _DriverError(Exception):
    """Stands for the driver's exception, with its SQLSTATE as psycopg gives it."""

    def __init__(self, message: str, sqlstate: str):
        super().__init__(message)
        self.sqlstate = sqlstate


def _failing_once(app, error: Exception):
    calls = []

    def work():
        calls.append(1)
        db.session.add(
            Holiday(
                kind="public", name="Essai", starts_on=date(2031, 6, 2), ends_on=date(2031, 6, 2)
            )
        )
        db.session.flush()
        if len(calls) == 1:
            raise error
        return "done"

    return work, calls


def holidays_named(name: str) -> int:
    return db.session.scalar(select(func.count()).select_from(Holiday).where(Holiday.name == name))


@pytest.mark.parametrize("sqlstate", ["40P01", "40001"])
def test_write_transaction_retries_a_deadlock_whatever_the_server_language(app, sqlstate):
    from sqlalchemy.exc import OperationalError

    # A French server (lc_messages) names a deadlock "verrou mortel détecté".
    error = OperationalError("UPDATE bookings", {}, _DriverError("verrou mortel détecté", sqlstate))
    work, calls = _failing_once(app, error)
    with app.app_context():
        assert write_transaction(work) == "done"
        assert len(calls) == 2 and holidays_named("Essai") == 1


def test_write_transaction_raises_other_database_errors_at_once(app):
    from sqlalchemy.exc import OperationalError

    error = OperationalError("SELECT", {}, _DriverError("annulation de la requête", "57014"))
    work, calls = _failing_once(app, error)
    with app.app_context():
        with pytest.raises(OperationalError):
            write_transaction(work)
        assert len(calls) == 1 and holidays_named("Essai") == 0


def test_write_transaction_rolls_back_work_that_fails(app):
    from citoyens.reservations.operations import BookingError

    work, calls = _failing_once(app, BookingError("Cette réservation n'existe plus."))
    with app.app_context():
        with pytest.raises(BookingError):
            write_transaction(work)
        db.session.commit()  # a caller committing later must not keep half of the work
        assert len(calls) == 1 and holidays_named("Essai") == 0


def test_entitlements_follow_accepted_enrolments_of_active_offers(app, offer):
    fam = family(app, offer)
    child = fam.child_ids[0]
    with app.app_context():
        granted = rules.entitlements([child], date(2030, 9, 1), date(2030, 9, 30))
        assert sorted(g.activity.id for g in granted) == sorted(offer.activity_ids)
        assert rules.entitlements([child], date(2031, 9, 1), date(2031, 9, 30)) == []
        assert rules.entitlements([], date(2030, 9, 1), date(2030, 9, 30)) == []
        db.session.get(Activity, offer.activity_ids[1]).active = False
        db.session.flush()
        granted = rules.entitlements([child], date(2030, 9, 1), date(2030, 9, 30))
        assert [g.activity.id for g in granted] == offer.activity_ids[:1]
