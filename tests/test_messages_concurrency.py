"""Messages under concurrency: two workers on one message's e-mails write each household's
e-mails once (conditional UPDATE of `emailed_at`); « Envoyer » pressed twice at the same
instant records one message (unique send token). Real commits, on a database of its own.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from citoyens import jobs
from citoyens.core.models import MailMessage
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.messages import tasks
from citoyens.messages.audience import Audience
from citoyens.messages.models import Message, MessageRecipient
from citoyens.messages.operations import send_message
from citoyens.services.models import Service
from citoyens.transactions import write_transaction
from tests.conftest import own_database_fixtures
from tests.factories import make_user
from tests.reservations_factories import add_child, enrol_accepted, make_bookable_offer
from tests.test_outbox_concurrency import together

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("messages_race")

FAMILIES = 12


def test_this_module_runs_on_its_own_database(race_app):
    assert race_app.config["SQLALCHEMY_DATABASE_URI"].endswith(
        ("messages_race", "/messages_race.sqlite3")
    )


def enrolled_families(app, count: int) -> int:
    """A service with `count` families enrolled (one adult account each): its id."""
    offer = make_bookable_offer(app, activities=1, generate=False)
    for _ in range(count):
        account = make_user(app, role="parent")
        enrol_accepted(app, account.household_id, add_child(app, account.household_id), offer)
    return offer.service_id


def send(service_id: int, token: str):
    service = db.session.get(Service, service_id)
    return send_message(
        Audience("service", service),
        "Fermeture",
        "Bonjour",
        author=None,
        send_token=token,
        today=today_in_paris(),
    )


def test_two_workers_email_each_household_once(race_app, monkeypatch):
    service_id = enrolled_families(race_app, FAMILIES)
    monkeypatch.setattr(tasks, "BATCH", 3)  # several batches, so the workers interleave
    queue = race_app.extensions[jobs.EXTENSION]
    queue.immediate = False  # enqueued, not run: the workers below run it
    with race_app.app_context():
        message_id = write_transaction(lambda: send(service_id, "race-1"))[0].id
    written = together(race_app, 4, lambda: tasks.email_recipients(message_id))
    assert not [w for w in written if isinstance(w, Exception)], written
    assert sum(written) == FAMILIES
    with race_app.app_context():
        assert tasks.email_recipients(message_id) == 0  # and once more later: nothing
        recipients = db.session.scalars(
            select(MailMessage.recipient).where(MailMessage.kind == "family-message")
        ).all()
        assert len(recipients) == len(set(recipients)) == FAMILIES
        message = db.session.get(Message, message_id)
        assert (message.status, message.email_count) == ("sent", FAMILIES)
        assert not db.session.scalar(
            select(func.count(MessageRecipient.id)).where(MessageRecipient.emailed_at.is_(None))
        )


def test_send_pressed_twice_at_once_records_one_message(race_app):
    service_id = enrolled_families(race_app, 3)
    queue = race_app.extensions[jobs.EXTENSION]
    queue.immediate = False

    def press() -> tuple[int, bool]:
        message, created = write_transaction(lambda: send(service_id, "same-token"))
        return message.id, created

    outcomes = together(race_app, 4, press)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert len({message_id for message_id, _ in outcomes}) == 1
    assert sorted(created for _, created in outcomes) == [False, False, False, True]
    with race_app.app_context():
        assert db.session.scalar(select(func.count(Message.id))) == 1
        assert db.session.scalar(select(func.count(MessageRecipient.id))) == 3
