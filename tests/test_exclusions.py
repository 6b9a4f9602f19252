"""Incompatible activities: a child holds at most one activity of an exclusion set per
date, whatever the path (toggle, week form, planner, staff, walk-in, waiting list), and
the database refuses the second one besides (DOMAIN.md "Calendar")."""

from __future__ import annotations

from datetime import date, time

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from citoyens.extensions import db
from citoyens.reservations import rules
from citoyens.reservations.attendance import record_walk_in
from citoyens.reservations.exclusions import ExclusionError, set_activity_exclusion
from citoyens.reservations.models import EXCLUSION_INDEX, ActivityDay, Booking
from citoyens.reservations.operations import BookingError, book_days
from citoyens.services.models import Activity, ExclusionSet
from tests.conftest import csrf_token, post
from tests.factories import make_user
from tests.requests_factories import assign_staff
from tests.reservations_factories import (
    EARLY,
    bookings_of,
    children_of,
    day_ids,
    enrol_accepted,
    make_bookable_offer,
    set_capacity,
    text_of,
)

WEDNESDAY = date(2030, 12, 4)
NEXT_WEDNESDAY = date(2030, 12, 11)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(rules, "now_utc", lambda: EARLY)


def make_set(app, service_id: int, activity_ids, name="Une seule formule par jour") -> int:
    with app.app_context():
        group = ExclusionSet(service_id=service_id, name=name)
        db.session.add(group)
        db.session.flush()
        for activity_id in activity_ids:
            db.session.get(Activity, activity_id).exclusion_set_id = group.id
        db.session.commit()
        return group.id


@pytest.fixture
def goulidons(app, parent):
    """Mercredi journée and Mercredi demi-journée (term Wednesdays), one exclusion set;
    the parent's two children enrolled in both."""
    offer = make_bookable_offer(
        app,
        activities=2,
        weekdays="3",
        calendar="term",
        starts=(time(8, 30), time(8, 30)),
        capacity=5,
        name="Goulidons",
    )
    with app.app_context():
        names = ["Mercredi journée", "Mercredi demi-journée"]
        for activity_id, name in zip(offer.activity_ids, names, strict=True):
            db.session.get(Activity, activity_id).name = name
        db.session.commit()
    set_id = make_set(app, offer.service_id, offer.activity_ids)
    children = children_of(app, parent.household_id)
    for child in children:
        enrol_accepted(app, parent.household_id, child, offer)
    days = [
        {d: i for i, d in day_ids(app, activity_id, WEDNESDAY, NEXT_WEDNESDAY)}
        for activity_id in offer.activity_ids
    ]
    return {"offer": offer, "set": set_id, "children": children, "days": days}


def live(app, child_id) -> list[tuple[int, str]]:
    with app.app_context():
        return [
            tuple(row)
            for row in db.session.execute(
                select(Booking.activity_day_id, Booking.status)
                .where(Booking.child_id == child_id, Booking.status != "cancelled")
                .order_by(Booking.id)
            )
        ]


def book(app, household_id, child_id, day_ids_, **kwargs):
    with app.app_context():
        outcome = book_days(household_id, child_id, day_ids_, actor=None, now=EARLY, **kwargs)
        db.session.commit()
        return outcome


HELD = "Enfant0 a déjà « Mercredi journée » le mercredi 4 décembre"


# --- The rule and the database ----------------------------------------------------------------


def test_book_days_refuses_the_second_activity_of_a_set_and_names_the_first(app, parent, goulidons):
    child = goulidons["children"][0]
    journee, demi = (days[WEDNESDAY] for days in goulidons["days"])
    assert book(app, parent.household_id, child, [journee]).booked == [journee]
    outcome = book(app, parent.household_id, child, [demi])
    assert outcome.refused == {demi: "incompatible"}
    assert outcome.reason(demi) == HELD
    assert live(app, child) == [(journee, "booked")]
    # Another date, another child: free.
    other = goulidons["days"][1][NEXT_WEDNESDAY]
    assert book(app, parent.household_id, child, [other]).booked == [other]
    sibling = goulidons["children"][1]
    assert book(app, parent.household_id, sibling, [demi]).booked == [demi]


def test_both_in_one_request_keep_only_the_first(app, parent, goulidons):
    child = goulidons["children"][0]
    journee, demi = (days[WEDNESDAY] for days in goulidons["days"])
    outcome = book(app, parent.household_id, child, [demi, journee])
    assert outcome.booked == [journee] and outcome.refused == {demi: "incompatible"}
    assert live(app, child) == [(journee, "booked")]


def test_the_database_refuses_a_second_live_booking_of_a_set(app, parent, goulidons):
    child = goulidons["children"][0]
    journee, demi = (days[WEDNESDAY] for days in goulidons["days"])
    book(app, parent.household_id, child, [journee])
    with app.app_context():
        row = {
            "activity_day_id": demi,
            "child_id": child,
            "household_id": parent.household_id,
            "status": "waiting",
        }
        with pytest.raises(IntegrityError) as error, db.session.begin_nested():
            db.session.execute(insert(Booking), [row])
        assert EXCLUSION_INDEX in str(error.value) or "UNIQUE" in str(error.value)
        # The copied columns were filled by the insert's defaults (day, set).
        db.session.execute(insert(Booking), [{**row, "status": "cancelled"}])
        cancelled = db.session.scalar(select(Booking).where(Booking.activity_day_id == demi))
        assert (cancelled.day, cancelled.exclusion_set_id) == (WEDNESDAY, goulidons["set"])
        db.session.rollback()


def test_a_waiting_place_holds_the_date_and_promotion_makes_no_double(app, parent, goulidons):
    child, sibling = goulidons["children"]
    journee, demi = (days[WEDNESDAY] for days in goulidons["days"])
    set_capacity(app, journee, 0)
    assert book(app, parent.household_id, child, [journee], waiting_list=True).waiting == [journee]
    outcome = book(app, parent.household_id, child, [demi])
    assert outcome.refused == {demi: "incompatible"} and outcome.reason(demi) == HELD
    # A place frees on the journée: the waiting child gets it, holding one activity still.
    set_capacity(app, journee, 1)
    with app.test_request_context():  # the promotion e-mail links to the calendar
        from citoyens.reservations.operations import promote_waiting

        promote_waiting(journee)
        db.session.commit()
    assert live(app, child) == [(journee, "booked")]
    assert bookings_of(app, sibling) == {}


def test_walk_in_on_the_other_activity_is_refused(app, parent, goulidons):
    child = goulidons["children"][0]
    journee, demi = (days[WEDNESDAY] for days in goulidons["days"])
    book(app, parent.household_id, child, [journee])
    with app.app_context():
        day = db.session.get(ActivityDay, demi)
        with pytest.raises(BookingError, match="a déjà « Mercredi journée »"):
            record_walk_in(parent.household_id, child, day, actor=None)
        db.session.rollback()
    assert live(app, child) == [(journee, "booked")]


# --- Every path through HTTP ------------------------------------------------------------------


def htmx_post(client, path, data):
    token = csrf_token(client)
    return client.post(path, data=data, headers={"HX-Request": "true", "X-CSRFToken": token})


def test_toggle_refuses_the_second_with_a_message_naming_the_first(
    app, client, auth, parent, goulidons
):
    child = goulidons["children"][0]
    journee, demi = (days[WEDNESDAY] for days in goulidons["days"])
    auth.login(parent)
    path = f"/reservations/enfant/{child}/jour/"
    assert htmx_post(client, path + str(journee), {f"j{journee}": "1"}).status_code == 200
    response = htmx_post(client, path + str(demi), {f"j{demi}": "1"})
    assert response.status_code == 422
    assert HELD in response.get_data(as_text=True)
    # Nor on its waiting list.
    response = htmx_post(client, path + str(demi), {"attente": "1"})
    assert response.status_code == 422
    # Without JavaScript: the same refusal, flashed.
    response = post(client, path + str(demi), {f"j{demi}": "1"}, follow_redirects=True)
    assert HELD in response.get_data(as_text=True)
    assert live(app, child) == [(journee, "booked")]


def test_the_week_form_books_one_of_two_ticked_and_says_why(app, client, auth, parent, goulidons):
    child = goulidons["children"][0]
    journee, demi = (days[WEDNESDAY] for days in goulidons["days"])
    auth.login(parent)
    data = {"jours": f"{journee},{demi}", f"j{journee}": "1", f"j{demi}": "1"}
    response = post(client, f"/reservations/enfant/{child}/semaine", data, follow_redirects=True)
    assert HELD in response.get_data(as_text=True)
    assert live(app, child) == [(journee, "booked")]
    # Switching from the journée to the demi-journée in one submit works.
    data = {"jours": f"{journee},{demi}", f"j{demi}": "1"}
    post(client, f"/reservations/enfant/{child}/semaine", data)
    assert live(app, child) == [(demi, "booked")]


def test_the_planner_shows_and_skips_the_days_already_held(app, client, auth, parent, goulidons):
    child = goulidons["children"][0]
    journee = goulidons["days"][0][WEDNESDAY]
    book(app, parent.household_id, child, [journee])
    auth.login(parent)
    data = {
        "enfants": [str(child)],
        "activites": [str(a) for a in goulidons["offer"].activity_ids],
        "jours": ["3"],
        "du": "2030-12-01",
        "au": "2030-12-13",
        "etape": "apercu",
    }
    preview = text_of(post(client, "/reservations/planifier", data))
    # Mercredi journée: the 11th to book (the 4th is already booked); the demi-journée:
    # nothing, the child holds the journée both days (booked, or to be by this plan).
    assert "1 à réserver · 1 déjà réservé" in preview
    assert "0 à réserver · 2 non réservable" in preview
    assert "à « Mercredi journée » ces jours-là" in preview, preview
    result = text_of(post(client, "/reservations/planifier", {**data, "etape": "confirmer"}))
    assert "mercredi 4 décembre 2030 : « Mercredi journée » est déjà réservé ce jour-là" in result
    assert "mercredi 11 décembre 2030 : « Mercredi journée » est déjà réservé ce jour-là" in result
    next_journee = goulidons["days"][0][NEXT_WEDNESDAY]
    assert sorted(live(app, child)) == sorted([(journee, "booked"), (next_journee, "booked")])


def test_staff_booking_on_behalf_is_refused_with_the_name(app, client, auth, parent, goulidons):
    child = goulidons["children"][0]
    journee, demi = (days[WEDNESDAY] for days in goulidons["days"])
    book(app, parent.household_id, child, [journee])
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, goulidons["offer"].service_id)
    auth.login(agent)
    path = f"/admin/familles/{parent.household_id}/reservations/{child}/{demi}"
    for action in ("book", "wait"):
        response = post(client, path, {"action": action}, follow_redirects=True)
        assert HELD in response.get_data(as_text=True)
    assert live(app, child) == [(journee, "booked")]


def test_staff_walk_in_is_refused_with_the_name(app, client, auth, parent, goulidons, monkeypatch):
    from citoyens.reservations import staff as staff_rules

    child = goulidons["children"][0]
    journee, demi = (days[WEDNESDAY] for days in goulidons["days"])
    book(app, parent.household_id, child, [journee])
    monkeypatch.setattr(staff_rules, "today", lambda: WEDNESDAY)
    with app.app_context():
        from citoyens.enrolments.models import Enrolment

        enrolment_id = db.session.scalar(select(Enrolment.id).where(Enrolment.child_id == child))
    admin = make_user(app, role="admin")
    auth.login(admin)
    response = post(
        client,
        f"/admin/reservations/jour/{demi}/sans-reservation",
        {"inscription": str(enrolment_id)},
    )
    assert response.status_code == 422
    assert HELD in response.get_data(as_text=True)
    assert live(app, child) == [(journee, "booked")]


# --- Administrators manage the sets -----------------------------------------------------------


def test_admin_creates_a_set_and_the_bookings_follow(app, client, auth, parent):
    offer = make_bookable_offer(app, activities=3, weekdays="3", capacity=5)
    child = children_of(app, parent.household_id)[0]
    enrol_accepted(app, parent.household_id, child, offer)
    a, b, c = offer.activity_ids
    day_a = day_ids(app, a, WEDNESDAY)[0][0]
    day_b = day_ids(app, b, WEDNESDAY)[0][0]
    book(app, parent.household_id, child, [day_a])
    auth.login(make_user(app, role="admin"))
    path = f"/admin/services/{offer.service_id}/incompatibles"
    response = post(client, path, {"nom": "Matin ou journée", "activites": [str(a), str(b)]})
    assert response.status_code == 303
    with app.app_context():
        set_id = db.session.scalar(select(ExclusionSet.id).where(ExclusionSet.name != ""))
        booking = db.session.scalar(select(Booking).where(Booking.activity_day_id == day_a))
        assert booking.exclusion_set_id == set_id  # copied onto the existing booking
    assert book(app, parent.household_id, child, [day_b]).refused == {day_b: "incompatible"}
    page = client.get(f"/admin/services/{offer.service_id}").get_data(as_text=True)
    assert "Matin ou journée" in page and "Incompatible : Matin ou journée" in page
    # The third activity joins through its form... refused while the child holds both.
    day_c = day_ids(app, c, WEDNESDAY)[0][0]
    book(app, parent.household_id, child, [day_c])
    with app.app_context():
        activity = db.session.get(Activity, c)
        with pytest.raises(ExclusionError, match="a déjà"):
            set_activity_exclusion(activity, set_id, actor=None)
        db.session.rollback()
    form = client.get(f"/admin/activites/{c}/modifier").get_data(as_text=True)
    assert 'name="exclusion_set_id"' in form
    with app.app_context():
        activity = db.session.get(Activity, c)
        data = {
            "name": activity.name,
            "weekdays": ["3"],
            "start_time": "07:30",
            "end_time": "08:30",
            "capacity": "5",
            "cutoff_hours": "72",
            "calendar": "term",
            "unit": "",
            "exclusion_set_id": str(set_id),
        }
    response = post(client, f"/admin/activites/{c}/modifier", data)
    assert response.status_code == 422
    assert "ne peut pas rejoindre" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Activity, c).exclusion_set_id is None
    # Deleting the set makes them compatible again.
    response = post(client, f"/admin/incompatibles/{set_id}/supprimer")
    assert response.status_code == 303
    assert book(app, parent.household_id, child, [day_b]).booked == [day_b]


def test_a_set_cannot_be_made_over_children_holding_two(app, client, auth, parent):
    offer = make_bookable_offer(app, activities=2, weekdays="3", capacity=5)
    child = children_of(app, parent.household_id)[0]
    enrol_accepted(app, parent.household_id, child, offer)
    both = [day_ids(app, a, WEDNESDAY)[0][0] for a in offer.activity_ids]
    book(app, parent.household_id, child, both)
    auth.login(make_user(app, role="admin"))
    path = f"/admin/services/{offer.service_id}/incompatibles"
    data = {"nom": "Une seule", "activites": [str(a) for a in offer.activity_ids]}
    response = post(client, path, data)
    assert response.status_code == 422
    assert "Enfant0 a déjà" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(ExclusionSet.id)) is None
    response = post(client, path, {"nom": "Seule", "activites": [str(offer.activity_ids[0])]})
    assert response.status_code == 422
    assert "au moins deux" in response.get_data(as_text=True)


def test_agents_may_not_manage_sets(app, client, auth, goulidons):
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, goulidons["offer"].service_id)
    auth.login(agent)
    path = f"/admin/services/{goulidons['offer'].service_id}/incompatibles"
    assert post(client, path, {"nom": "X"}).status_code == 403
    assert post(client, f"/admin/incompatibles/{goulidons['set']}/supprimer").status_code == 403
