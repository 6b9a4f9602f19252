"""Reservations under concurrency: many families press "Réserver" at the same instant.

Each test has its own database (a SQLite file, or on PostgreSQL a database created
and dropped here through TEST_DATABASE_URL), real commits, and threads released
together by a Barrier, each in its own request context, each going through
`write_transaction` as a view does. The session `app` fixture is overridden so
nothing here touches the shared test database.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.core.models import MailMessage
from citoyens.extensions import db
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.reservations.operations import Outcome, book_days, cancel_days
from citoyens.reservations.rules import waiting_ranks
from citoyens.transactions import write_transaction
from tests.conftest import own_database_fixtures, scratch_database_name
from tests.factories import make_user
from tests.reservations_factories import (
    EARLY,
    children_of,
    day_ids,
    enrol_accepted,
    make_bookable_offer,
    set_capacity,
)

pytestmark = pytest.mark.own_database

RACE_DATABASE = "reservations_race"


race_app, app = own_database_fixtures(RACE_DATABASE)


def test_this_module_runs_on_its_own_database(race_app):
    assert race_app.config["SQLALCHEMY_DATABASE_URI"].endswith(
        (f"/{scratch_database_name(RACE_DATABASE)}", f"/{RACE_DATABASE}.sqlite3")
    )


# --- Helpers ----------------------------------------------------------------------------------


def children(app, offer, count: int, per_household: int = 1) -> list[tuple[int, int, int]]:
    """(user id, household id, child id) of `count` children with accepted enrolments."""
    kids = []
    while len(kids) < count:
        account = make_user(app, role="parent", children=per_household)
        for child_id in children_of(app, account.household_id):
            enrol_accepted(app, account.household_id, child_id, offer)
            kids.append((account.id, account.household_id, child_id))
    return kids[:count]


def race(app, jobs: list[Callable[[], Outcome]]) -> list[Outcome]:
    """Run each job in its own thread, all released at once, each committed by
    write_transaction; the outcomes in the jobs' order. Any exception fails the test."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[Outcome | None] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(index: int, job) -> None:
        with app.test_request_context():  # as in a view: the promotion mail needs a request
            try:
                work = job()  # loads the actor in this thread's session
                barrier.wait(timeout=60)
                outcomes[index] = write_transaction(work)
            except BaseException as error:  # reported below
                errors.append(error)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    assert not errors, errors
    return outcomes


def booking(user_id, household_id, child_id, day_id, *, waiting_list=False):
    def job():
        actor = db.session.get(User, user_id)
        return lambda: book_days(
            household_id, child_id, [day_id], actor=actor, waiting_list=waiting_list, now=EARLY
        )

    return job


def cancelling(user_id, household_id, child_id, day_id):
    def job():
        actor = db.session.get(User, user_id)
        return lambda: cancel_days(household_id, child_id, [day_id], actor=actor, now=EARLY)

    return job


def day_state(app, day_id: int) -> tuple[int, dict[str, int]]:
    """The day's counter and its bookings by status."""
    with app.app_context():
        counter = db.session.scalar(select(ActivityDay.booked).where(ActivityDay.id == day_id))
        statuses = dict(
            db.session.execute(
                select(Booking.status, func.count())
                .where(Booking.activity_day_id == day_id)
                .group_by(Booking.status)
            ).all()
        )
    return counter, statuses


def one_day(app, capacity: int) -> tuple[object, int]:
    offer = make_bookable_offer(app, activities=1)
    day_id = day_ids(app, offer.activity_ids[0])[0][0]
    set_capacity(app, day_id, capacity)
    return offer, day_id


# --- Races ------------------------------------------------------------------------------------


@pytest.mark.parametrize("per_household", [1, 2], ids=["households", "siblings"])
def test_twelve_children_for_five_places_make_five_bookings(app, per_household):
    offer, day_id = one_day(app, 5)
    kids = children(app, offer, 12, per_household)
    outcomes = race(app, [booking(*kid, day_id) for kid in kids])
    assert sum(len(o.booked) for o in outcomes) == 5
    assert [o.refused for o in outcomes].count({day_id: "full"}) == 7
    assert not any(o.waiting for o in outcomes)
    assert day_state(app, day_id) == (5, {"booked": 5})


def test_twelve_children_for_five_places_with_the_waiting_list(app):
    offer, day_id = one_day(app, 5)
    kids = children(app, offer, 12)
    outcomes = race(app, [booking(*kid, day_id, waiting_list=True) for kid in kids])
    assert sum(len(o.booked) for o in outcomes) == 5
    assert sum(len(o.waiting) for o in outcomes) == 7
    assert not any(o.refused for o in outcomes)
    assert day_state(app, day_id) == (5, {"booked": 5, "waiting": 7})
    with app.app_context():
        waiting = db.session.scalars(select(Booking.id).where(Booking.status == "waiting")).all()
        assert sorted(waiting_ranks(list(waiting)).values()) == list(range(1, 8))


def test_cancellations_and_bookings_at_once_keep_the_count_and_the_queue(app):
    """Four holders cancel while eight children ask for the day (waiting list allowed),
    with three children already waiting: the three go in first, every place is taken,
    the counter matches the rows, and each promoted family got an e-mail."""
    offer, day_id = one_day(app, 5)
    kids = children(app, offer, 5 + 3 + 8)
    holders, queued, newcomers = kids[:5], kids[5:8], kids[8:]
    race(app, [booking(*kid, day_id) for kid in holders])
    for kid in queued:
        race(app, [booking(*kid, day_id, waiting_list=True)])
    assert day_state(app, day_id) == (5, {"booked": 5, "waiting": 3})
    jobs = [cancelling(*kid, day_id) for kid in holders[:4]]
    jobs += [booking(*kid, day_id, waiting_list=True) for kid in newcomers]
    outcomes = race(app, jobs)
    assert [o.cancelled for o in outcomes[:4]] == [[day_id]] * 4
    assert day_state(app, day_id) == (5, {"booked": 5, "waiting": 7, "cancelled": 4})
    with app.app_context():
        status = dict(
            db.session.execute(
                select(Booking.child_id, Booking.status).where(Booking.activity_day_id == day_id)
            ).all()
        )
        promoted = [b for o in outcomes for b in o.promoted]
        mails = db.session.scalar(
            select(func.count())
            .select_from(MailMessage)
            .where(MailMessage.kind == "booking-promoted")
        )
    assert all(status[kid[2]] == "booked" for kid in queued)  # first come, first served
    assert status[holders[4][2]] == "booked"
    assert Counter(status[kid[2]] for kid in newcomers) == Counter(booked=1, waiting=7)
    assert len(promoted) >= 3 and mails == len(promoted)


def test_the_same_child_booked_twice_at_once_makes_one_booking(app):
    offer, day_id = one_day(app, 5)
    [kid] = children(app, offer, 1)
    outcomes = race(app, [booking(*kid, day_id) for _ in range(4)])
    assert sum(len(o.booked) for o in outcomes) == 1
    assert [o.refused for o in outcomes].count({day_id: "already"}) == 3
    assert day_state(app, day_id) == (1, {"booked": 1})


def test_the_same_booking_cancelled_twice_at_once_frees_one_place(app):
    offer, day_id = one_day(app, 2)
    kids = children(app, offer, 3)
    race(app, [booking(*kid, day_id) for kid in kids[:2]])
    outcomes = race(app, [cancelling(*kids[0], day_id) for _ in range(3)])
    assert sum(len(o.cancelled) for o in outcomes) == 1
    assert day_state(app, day_id) == (1, {"booked": 1, "cancelled": 1})


def test_several_days_booked_at_once_by_many_children(app):
    """Eight children each book the same four days (three places a day)."""
    offer = make_bookable_offer(app, activities=1)
    days = [i for i, _ in day_ids(app, offer.activity_ids[0])[:4]]
    for day_id in days:
        set_capacity(app, day_id, 3)
    kids = children(app, offer, 8, per_household=2)

    def several(user_id, household_id, child_id):
        def job():
            actor = db.session.get(User, user_id)
            return lambda: book_days(household_id, child_id, days, actor=actor, now=EARLY)

        return job

    outcomes = race(app, [several(*kid) for kid in kids])
    assert sum(len(o.booked) for o in outcomes) == 4 * 3
    for day_id in days:
        assert day_state(app, day_id) == (3, {"booked": 3})


def test_crossing_cancellations_that_promote_both_go_through(app, monkeypatch):
    """A cancels days 1 and 2 while C leaves day 1's waiting list and cancels day 2. On
    PostgreSQL they lock bookings and days in opposite orders (A's promotion on day 1
    waits for C's booking row, C's freed place on day 2 waits for A's day): a deadlock,
    which the database breaks by failing one of them; write_transaction runs it again.
    A pause before the places are freed makes the crossing happen every time."""
    import time

    from citoyens.reservations import operations

    offer = make_bookable_offer(app, activities=1)
    d1, d2 = [i for i, _ in day_ids(app, offer.activity_ids[0])[:2]]
    set_capacity(app, d1, 2)
    set_capacity(app, d2, 2)
    a, b, c, e = children(app, offer, 4)
    for kid, day_id, waiting in (
        (a, d1, 0),
        (b, d1, 0),
        (c, d1, 1),
        (a, d2, 0),
        (c, d2, 0),
        (e, d2, 1),
    ):
        race(app, [booking(*kid, day_id, waiting_list=bool(waiting))])
    original = operations.free_places

    def slow_free_places(day_ids_):
        time.sleep(0.05)
        return original(day_ids_)

    monkeypatch.setattr(operations, "free_places", slow_free_places)

    def cancel_both(user_id, household_id, child_id):
        def job():
            actor = db.session.get(User, user_id)
            return lambda: cancel_days(household_id, child_id, [d1, d2], actor=actor, now=EARLY)

        return job

    outcomes = race(app, [cancel_both(*a), cancel_both(*c)])
    assert sorted(outcomes[0].cancelled) == sorted(outcomes[1].cancelled) == sorted([d1, d2])
    # Whichever went first, the end is the same: B keeps day 1, E got day 2.
    assert day_state(app, d1) == (1, {"booked": 1, "cancelled": 2})
    assert day_state(app, d2) == (1, {"booked": 1, "cancelled": 2})
    with app.app_context():
        status = dict(
            db.session.execute(
                select(Booking.child_id, Booking.status).where(Booking.activity_day_id == d2)
            ).all()
        )
    assert status == {a[2]: "cancelled", c[2]: "cancelled", e[2]: "booked"}


@pytest.mark.parametrize("before", ["cancelled", "waiting"])
def test_the_same_child_booked_again_twice_at_once_takes_one_place(app, before):
    """The child's row exists (cancelled, or on the waiting list while a place is free):
    booking it again from two tabs at once must take one place, not two."""
    offer, day_id = one_day(app, 5)
    kids = children(app, offer, 2)
    kid = kids[0]
    if before == "cancelled":
        race(app, [booking(*kid, day_id)])
        race(app, [cancelling(*kid, day_id)])
    else:
        set_capacity(app, day_id, 1)
        race(app, [booking(*kids[1], day_id)])
        race(app, [booking(*kid, day_id, waiting_list=True)])
        set_capacity(app, day_id, 5)  # raised: a place is free, the child still waits
    base = 0 if before == "cancelled" else 1
    outcomes = race(app, [booking(*kid, day_id) for _ in range(4)])
    assert sum(len(o.booked) for o in outcomes) == 1
    assert [o.refused for o in outcomes].count({day_id: "already"}) == 3
    counter, statuses = day_state(app, day_id)
    assert counter == statuses["booked"] == base + 1


def test_a_walk_in_and_a_booking_of_the_same_child_at_once_keep_the_count(app, monkeypatch):
    """Two staff tablets: one books the child (cancelled earlier), one records them
    present without a booking. One wins; the place is counted only if booked. The
    walk-in pauses between reading the row and writing it, so the booking commits in
    between (on PostgreSQL the walk-in overwrote it, keeping a place for nobody)."""
    import time

    from citoyens.reservations import attendance
    from citoyens.reservations.attendance import record_walk_in
    from citoyens.reservations.operations import BookingError

    pausing = threading.local()
    original_utcnow = attendance.utcnow

    def utcnow():  # called by record_walk_in after its read
        if getattr(pausing, "on", False):
            time.sleep(0.2)
        return original_utcnow()

    monkeypatch.setattr(attendance, "utcnow", utcnow)

    offer, day_id = one_day(app, 5)
    [kid] = children(app, offer, 1)
    user_id, household_id, child_id = kid
    race(app, [booking(*kid, day_id)])
    race(app, [cancelling(*kid, day_id)])
    staff_id = make_user(app, role="staff").id

    def staff_booking():
        actor = db.session.get(User, staff_id)
        return lambda: book_days(
            household_id, child_id, [day_id], actor=actor, staff=True, now=EARLY
        )

    def walk_in():
        actor = db.session.get(User, staff_id)

        def work():
            row = db.session.get(ActivityDay, day_id)
            pausing.on = True
            try:
                record_walk_in(household_id, child_id, row, actor=actor)
            except BookingError:
                return Outcome(refused={day_id: "already"})
            finally:
                pausing.on = False
            return Outcome(booked=[-1])  # marks the walk-in

        return work

    for _round in range(3):
        outcomes = race(app, [staff_booking, walk_in])
        assert sum(len(o.booked) for o in outcomes) == 1, outcomes
        counter, statuses = day_state(app, day_id)
        assert counter == statuses.get("booked", 0) <= 1
        assert sum(statuses.values()) == 1
        with app.app_context():  # back to cancelled for the next round
            row = db.session.scalar(select(Booking).where(Booking.child_id == child_id))
            if row.status == "booked":
                db.session.get(ActivityDay, day_id).booked -= 1
            row.status, row.attendance = "cancelled", None
            db.session.commit()
