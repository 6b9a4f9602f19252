"""Enrolment changes under concurrency, on a database of their own with real commits:
two agents ending one enrolment at once end it once (one cancellation per booking, one
e-mail); two asks of a family at once leave one open change request."""

from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.enrolments import change_requests, changes
from citoyens.extensions import db
from citoyens.mail import MailMessage
from citoyens.requests.models import Request
from citoyens.reservations.models import BookingChange
from citoyens.transactions import write_transaction
from tests.conftest import own_database_fixtures
from tests.factories import make_user
from tests.households_factories import person_ids
from tests.reservations_factories import day_ids, make_bookable_offer
from tests.test_enrolment_changes import accepted_enrolment, book

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("enrolment_changes_race")
THREADS = 4


def _race(app, work) -> list[str]:
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def run(n: int):
        with app.test_request_context():
            barrier.wait()
            try:
                write_transaction(lambda: work(n))
                outcomes.append("done")
            except changes.EnrolmentChangeError:
                outcomes.append("refused")
            except Exception as exc:  # reported by the assertion, never swallowed
                outcomes.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_ends_end_once(race_app):
    parent = make_user(race_app, role="parent", children=1)
    agent = make_user(race_app, role="admin")
    offer = make_bookable_offer(race_app)
    child = person_ids(race_app, parent.household_id, "child")[0]
    enrolment_id = accepted_enrolment(race_app, parent.household_id, child, offer)
    later = [i for i, _ in day_ids(race_app, offer.activity_ids[0], first=date(2031, 1, 6))][:3]
    book(race_app, parent.household_id, child, later)

    def end(n):
        actor = db.session.get(User, agent.id)
        enrolment = changes.enrolment_for_change(enrolment_id)
        changes.end_enrolment(enrolment, date(2030, 12, 1 + n), actor=actor)

    assert sorted(_race(race_app, end)) == ["done"] + ["refused"] * (THREADS - 1)
    with race_app.app_context():
        cancellations = db.session.scalar(
            select(func.count())
            .select_from(BookingChange)
            .where(BookingChange.to_state == "cancelled")
        )
        mails = db.session.scalar(
            select(func.count())
            .select_from(MailMessage)
            .where(MailMessage.kind == "enrolment-changed")
        )
    assert (cancellations, mails) == (3, 1)


def test_concurrent_asks_leave_one_request(race_app):
    parent = make_user(race_app, role="parent", children=1)
    offer = make_bookable_offer(race_app)
    child = person_ids(race_app, parent.household_id, "child")[0]
    enrolment_id = accepted_enrolment(race_app, parent.household_id, child, offer)

    def ask(n):
        actor = db.session.get(User, parent.id)
        enrolment = changes.enrolment_for_change(enrolment_id)
        change_requests.request_change(enrolment, "end", actor=actor, ends_on=date(2030, 12, 1 + n))

    assert sorted(_race(race_app, ask)) == ["done"] + ["refused"] * (THREADS - 1)
    with race_app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(Request).where(Request.kind == "enrolment_change")
        )
    assert count == 1
