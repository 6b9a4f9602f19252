"""Capacity (DOMAIN.md "Calendar"): an activity's capacity applies to its days from today
on, staff set one day's, and lowering it below the children booked warns and keeps every
booking; the conditional UPDATE still refuses newcomers."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from citoyens.extensions import db
from citoyens.reservations import rules
from citoyens.reservations.capacity import set_day_capacity
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.reservations.operations import book_days, cancel_days
from tests.conftest import post
from tests.factories import make_user
from tests.requests_factories import assign_staff
from tests.reservations_factories import (
    EARLY,
    add_child,
    day_ids,
    day_row,
    enrol_accepted,
    make_bookable_offer,
    text_of,
)

WARNING = (
    "12 enfants sont déjà réservés pour 10 places : aucune réservation n'est annulée ; "
    "les nouvelles réservations attendront qu'une place se libère."
)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    clock = {"now": EARLY}
    monkeypatch.setattr(rules, "now_utc", lambda: clock["now"])
    return clock


def crowd(app, offer, count: int):
    """A household with `count` children, each enrolled in the offer: (household, ids)."""
    household_id = make_user(app, role="parent").household_id
    kids = [add_child(app, household_id, f"Enfant{n}") for n in range(count)]
    for kid in kids:
        enrol_accepted(app, household_id, kid, offer)
    return household_id, kids


def book(app, household_id, kids, day_id, **kwargs):
    with app.test_request_context():
        outcomes = [
            book_days(household_id, kid, [day_id], actor=None, now=EARLY, **kwargs) for kid in kids
        ]
        db.session.commit()
        return outcomes


@pytest.fixture
def full_day(app):
    """A day with 12 children booked (capacity 12), and 2 more children enrolled."""
    offer = make_bookable_offer(app, activities=1, capacity=12)
    day_id = day_ids(app, offer.activity_ids[0])[0][0]
    household_id, kids = crowd(app, offer, 14)
    book(app, household_id, kids[:12], day_id)
    return offer, day_id, household_id, kids


def test_lowering_below_booked_needs_confirmation_and_keeps_every_booking(app, full_day):
    _offer, day_id, household_id, kids = full_day
    with app.app_context():
        row = db.session.get(ActivityDay, day_id)
        result = set_day_capacity(row, 10)
        assert result.needs_confirmation and not result.changed
        assert (row.capacity, row.booked) == (12, 12)
        result = set_day_capacity(row, 10, confirmed=True)
        assert result.changed and result.over and row.capacity_overridden
        db.session.commit()
    assert day_row(app, day_id) == (10, 12, False)
    # The conditional UPDATE refuses the 13th child at 12 booked for 10 places.
    [outcome] = book(app, household_id, kids[12:13], day_id)
    assert outcome.refused == {day_id: "full"}
    # A cancellation (12 -> 11) still promotes nobody: 11 booked for 10 places.
    book(app, household_id, kids[12:14], day_id, waiting_list=True)
    with app.test_request_context():
        cancel_days(household_id, kids[0], [day_id], actor=None, now=EARLY)
        db.session.commit()
    assert day_row(app, day_id) == (10, 11, False)
    with app.app_context():
        waiting = db.session.scalar(
            select(Booking.id).where(Booking.activity_day_id == day_id, Booking.status == "waiting")
        )
        assert waiting is not None
    # Two more leave (11 -> 9): one place below capacity, the first waiting child gets it.
    with app.test_request_context():
        cancel_days(household_id, kids[1], [day_id], actor=None, now=EARLY)
        cancel_days(household_id, kids[2], [day_id], actor=None, now=EARLY)
        db.session.commit()
    assert day_row(app, day_id) == (10, 10, False)


def test_at_capacity_the_next_child_is_refused(app):
    offer = make_bookable_offer(app, activities=1, capacity=10)
    day_id = day_ids(app, offer.activity_ids[0])[0][0]
    household_id, kids = crowd(app, offer, 11)
    outcomes = book(app, household_id, kids, day_id)
    assert sum(len(o.booked) for o in outcomes) == 10
    assert outcomes[-1].refused == {day_id: "full"}


def test_staff_set_a_day_capacity_from_the_day_page(app, client, auth, full_day):
    offer, day_id, _household_id, _kids = full_day
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, offer.service_id)
    auth.login(agent)
    page = text_of(client.get(f"/admin/reservations/jour/{day_id}"))
    assert "Changer la capacité de ce jour" in page
    path = f"/admin/reservations/jour/{day_id}/capacite"
    response = post(client, path, {"capacite": "10"})
    assert response.status_code == 422
    assert WARNING in text_of(response) and "Je confirme" in text_of(response)
    assert day_row(app, day_id) == (12, 12, False)
    response = post(client, path, {"capacite": "10", "confirmer": "1"}, follow_redirects=True)
    assert WARNING in text_of(response) and "Capacité du jour : 10 places." in text_of(response)
    assert day_row(app, day_id) == (10, 12, False)
    response = post(client, path, {"capacite": "20"}, follow_redirects=True)
    assert day_row(app, day_id) == (20, 12, False)
    for bad in ("", "-1", "abc", "1001", "99999999999"):
        response = post(client, path, {"capacite": bad})
        assert response.status_code == 422, bad
        assert "Indiquez un nombre de places entre 0 et 1000." in text_of(response)
    assert day_row(app, day_id) == (20, 12, False)


def test_an_agent_of_another_service_cannot_set_the_capacity(app, client, auth, full_day):
    _offer, day_id, _household_id, _kids = full_day
    other = make_user(app, role="staff")
    assign_staff(app, other.id, make_bookable_offer(app, activities=1).service_id)
    auth.login(other)
    response = post(client, f"/admin/reservations/jour/{day_id}/capacite", {"capacite": "5"})
    assert response.status_code == 404
    assert day_row(app, day_id) == (12, 12, False)


def test_activity_capacity_applies_to_future_days_not_past_nor_staff_set(
    app, client, auth, frozen_clock
):
    offer = make_bookable_offer(app, activities=1, capacity=30)
    activity_id = offer.activity_ids[0]
    days = day_ids(app, activity_id)
    past, staff_set, future = days[0][0], days[-2][0], days[-1][0]
    with app.app_context():
        set_day_capacity(db.session.get(ActivityDay, staff_set), 7)
        db.session.commit()
    household_id, kids = crowd(app, offer, 2)
    book(app, household_id, kids[:1], future)
    book(app, household_id, kids[1:], future, waiting_list=True)
    with app.app_context():
        db.session.get(ActivityDay, future).capacity = 1
        db.session.commit()
    frozen_clock["now"] = datetime(2030, 12, 1, 8, 0, tzinfo=UTC)
    assert days[0][1] < date(2030, 12, 1) < days[-2][1]
    auth.login(make_user(app, role="admin"))
    data = {
        "name": "Accueil",
        "weekdays": ["1", "2", "4", "5"],
        "start_time": "07:30",
        "end_time": "08:30",
        "capacity": "40",
        "cutoff_hours": "72",
        "calendar": "term",
        "unit": "",
        "exclusion_set_id": "",
    }
    assert post(client, f"/admin/activites/{activity_id}/modifier", data).status_code == 303
    assert day_row(app, past)[0] == 30
    assert day_row(app, staff_set)[0] == 7
    # The future day got 40 places, and the child waiting there got one of them.
    assert day_row(app, future) == (40, 2, False)
    # Lowered below what is booked: every booking stays, and the page says so.
    response = post(
        client,
        f"/admin/activites/{activity_id}/modifier",
        {**data, "capacity": "1"},
        follow_redirects=True,
    )
    assert day_row(app, future) == (1, 2, False)
    assert "aucune réservation n'est annulée" in text_of(response)
