"""Incompatible activities under concurrency: the same child sent to "Mercredi journée"
and "Mercredi demi-journée" of one date from several tabs at once holds one of them.

Own database (a SQLite file, or a PostgreSQL database of its own), real commits, threads
released together. On PostgreSQL the partial unique index is what refuses the second
insert; `write_transaction` then runs the work again and the check names the first.
"""

from __future__ import annotations

from datetime import date, time

import pytest
from sqlalchemy import select

from citoyens.extensions import db
from citoyens.reservations.models import Booking
from citoyens.services.models import Activity, ExclusionSet
from tests.conftest import own_database_fixtures
from tests.factories import make_user
from tests.reservations_factories import children_of, day_ids, enrol_accepted, make_bookable_offer
from tests.test_reservations_concurrency import booking, race

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("exclusions_race")
WEDNESDAY = date(2030, 12, 4)


def incompatible_pair(app):
    offer = make_bookable_offer(
        app, activities=2, weekdays="3", starts=(time(8, 30), time(8, 30)), capacity=10
    )
    with app.app_context():
        group = ExclusionSet(service_id=offer.service_id, name="Journée ou demi-journée")
        db.session.add(group)
        db.session.flush()
        for activity_id in offer.activity_ids:
            db.session.get(Activity, activity_id).exclusion_set_id = group.id
        db.session.commit()
    account = make_user(app, role="parent", children=1)
    [child] = children_of(app, account.household_id)
    enrol_accepted(app, account.household_id, child, offer)
    days = [day_ids(app, a, WEDNESDAY, WEDNESDAY)[0][0] for a in offer.activity_ids]
    return (account.id, account.household_id, child), days


@pytest.mark.parametrize("waiting_list", [False, True], ids=["book", "waiting-list"])
def test_one_child_two_incompatible_activities_at_once_holds_one(app, waiting_list):
    kid, (journee, demi) = incompatible_pair(app)
    jobs = [booking(*kid, day_id, waiting_list=waiting_list) for day_id in [journee, demi] * 3]
    outcomes = race(app, jobs)
    with app.app_context():
        live = db.session.execute(
            select(Booking.activity_day_id, Booking.status).where(
                Booking.child_id == kid[2], Booking.status != "cancelled"
            )
        ).all()
    assert len(live) == 1 and live[0][1] == "booked"
    held = live[0][0]
    other = demi if held == journee else journee
    refusals = [o.refused.get(other) for o in outcomes if other in o.refused]
    assert refusals and set(refusals) == {"incompatible"}
    assert all("a déjà" in o.reason(other) for o in outcomes if other in o.refused)
