"""An activity's calendar: the periods it runs in (term time, school holidays, both) and
its weekdays, said in words to families and staff; regeneration after a calendar change
keeps every booking and lists the days that should no longer exist for staff."""

from __future__ import annotations

from datetime import date, time

import pytest
from sqlalchemy import select

from citoyens.extensions import db
from citoyens.reservations.calendar import off_calendar_bookings, regenerate_all
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.reservations.operations import book_days
from citoyens.services.models import Activity, SchoolYear, describe_calendar
from tests.enrolments_factories import make_offer
from tests.factories import make_user
from tests.requests_factories import assign_staff
from tests.reservations_factories import (
    EARLY,
    YEAR_START,
    children_of,
    day_ids,
    enrol_accepted,
    make_bookable_offer,
    text_of,
)


@pytest.mark.parametrize(
    ("weekdays", "calendar", "words"),
    [
        ([3], "term", "les mercredis en période scolaire"),
        ([1, 2, 3, 4, 5], "holidays", "du lundi au vendredi pendant les vacances scolaires"),
        ([1, 2, 4, 5], "term", "les lundis, mardis, jeudis et vendredis en période scolaire"),
        ([1, 2, 3, 4, 5], "both", "du lundi au vendredi toute l'année"),
        ([1, 3], "holidays", "les lundis et mercredis pendant les vacances scolaires"),
    ],
)
def test_the_calendar_in_words(weekdays, calendar, words):
    assert describe_calendar(weekdays, calendar) == words


def test_the_enrolment_form_and_admin_say_the_calendar_in_words(app, client, auth):
    offer = make_offer(app, activities=2, name="Goulidons")
    with app.app_context():
        first, second = (db.session.get(Activity, i) for i in offer.activity_ids)
        first.name, first.weekdays, first.calendar = "Mercredi journée", "3", "term"
        second.name, second.weekdays, second.calendar = "Vacances journée", "1,2,3,4,5", "holidays"
        db.session.commit()
    parent = make_user(app, role="parent", children=1)
    [child] = children_of(app, parent.household_id)
    auth.login(parent)
    page = text_of(
        client.get(
            f"/inscriptions/nouvelle?enfant={child}&service={offer.service_id}"
            f"&annee={offer.year_id}"
        )
    )
    assert "Mercredi journée · les mercredis en période scolaire" in page
    assert "Vacances journée · du lundi au vendredi pendant les vacances scolaires" in page
    auth.logout()
    auth.login(make_user(app, role="admin"))
    page = text_of(client.get(f"/admin/services/{offer.service_id}"))
    assert "Les mercredis en période scolaire" in page
    assert "Du lundi au vendredi pendant les vacances scolaires" in page


def test_regeneration_keeps_a_booking_on_a_day_off_the_calendar_and_lists_it(app, client, auth):
    """The migration: "Vacances journée" (once "school holidays and Wednesdays") becomes
    holidays only; a child booked on a term Wednesday keeps the booking, on a closed day
    staff see on the calendar page."""
    offer = make_bookable_offer(
        app, activities=1, weekdays="1,2,3,4,5", calendar="both", starts=(time(8, 30),)
    )
    activity_id = offer.activity_ids[0]
    wednesday = date(2030, 12, 4)  # term time
    booked_day, empty_day = (
        day_ids(app, activity_id, wednesday, wednesday)[0][0],
        day_ids(app, activity_id, date(2030, 12, 5), date(2030, 12, 5))[0][0],
    )
    parent = make_user(app, role="parent", children=1)
    [child] = children_of(app, parent.household_id)
    enrol_accepted(app, parent.household_id, child, offer)
    with app.app_context():
        assert book_days(parent.household_id, child, [booked_day], actor=None, now=EARLY).booked
        db.session.get(Activity, activity_id).calendar = "holidays"
        db.session.commit()
        done = regenerate_all(YEAR_START)
        db.session.commit()
        assert done.closed == 1 and done.removed > 0
        day = db.session.get(ActivityDay, booked_day)
        assert day.closed and day.booked == 1
        assert db.session.get(ActivityDay, empty_day) is None
        status = db.session.scalar(select(Booking.status).where(Booking.child_id == child))
        assert status == "booked"  # kept, never silently dropped
        year = db.session.get(SchoolYear, offer.year_id)
        [entry] = off_calendar_bookings(year)
        assert entry.activity.id == activity_id
        assert [item.day.id for item in entry.days] == [booked_day]
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, offer.service_id)
    auth.login(agent)
    page = text_of(client.get(f"/admin/calendrier?annee={offer.year_id}"))
    assert "Jours hors calendrier avec réservations" in page
    assert "Mercredi 4 décembre 2030" in page and "Enfant0 Test" in page
    # An agent of another service does not see these children.
    auth.logout()
    other = make_user(app, role="staff")
    assign_staff(app, other.id, make_bookable_offer(app, activities=1).service_id)
    auth.login(other)
    page = text_of(client.get(f"/admin/calendrier?annee={offer.year_id}"))
    assert "Jours hors calendrier avec réservations" not in page
