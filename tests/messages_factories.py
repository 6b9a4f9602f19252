"""Factories for the messages tests: two services (A with two activities, B), families
enrolled or booked in various ways, and the staff who write to them.

Each commits in its own app context and returns ids. Dates are those of school year
2030-2031 (tests/reservations_factories.py).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import func, select

from citoyens.core.models import MailMessage
from citoyens.extensions import db
from citoyens.messages.models import Message, MessageRecipient
from citoyens.reservations.models import Booking
from tests.conftest import post
from tests.enrolments_factories import make_school_year
from tests.factories import Account, make_user
from tests.households_factories import add_member
from tests.requests_factories import assign_staff
from tests.reservations_factories import (
    Offer,
    add_child,
    day_ids,
    enrol_accepted,
    make_bookable_offer,
)

_counter = itertools.count(1)


@dataclass
class Scene:
    service_a: int
    service_b: int
    activity_1: int  # of A
    activity_2: int  # of A
    activity_b: int
    day: int  # activity 1's first opening day
    day_date: date
    day_b: int  # activity B's first opening day
    enrolled: Account  # accepted in A (activity 1), booked on `day`; 3 adults, 2 e-mails
    waiting: Account  # accepted in A (activity 1), on the waiting list on `day`
    other_activity: Account  # accepted in A (activity 2), its booking on `day` cancelled
    pending: Account  # enrolment in A still pending
    past: Account  # accepted in A for a school year that is over
    family_b: Account  # accepted in B
    agent: Account  # works for A
    admin: Account


def book(app, household_id: int, child_id: int, day_id: int, status: str) -> int:
    with app.app_context():
        booking = Booking(
            activity_day_id=day_id, child_id=child_id, household_id=household_id, status=status
        )
        if status == "waiting":
            booking.waiting_since = datetime(2030, 6, 1, tzinfo=UTC)
        db.session.add(booking)
        db.session.commit()
        return booking.id


def family(app, offer, activity_ids, *, status: str = "accepted") -> tuple[Account, int]:
    """A parent account, a child enrolled (`status`) in the offer's activities: (account,
    child id)."""
    account = make_user(app, role="parent")
    child = add_child(app, account.household_id, f"Enfant{next(_counter)}")
    enrol_accepted(app, account.household_id, child, offer, activity_ids, status=status)
    return account, child


def make_scene(app) -> Scene:
    offer_a = make_bookable_offer(app, activities=2, name="Accueil Alpha")
    offer_b = make_bookable_offer(app, activities=1, name="Accueil Bêta")
    act_1, act_2 = offer_a.activity_ids
    day, day_date = day_ids(app, act_1)[0]
    day_b = day_ids(app, offer_b.activity_ids[0])[0][0]

    enrolled, child = family(app, offer_a, [act_1])
    book(app, enrolled.household_id, child, day, "booked")
    add_member(app, enrolled.household_id, "adult", email="second.adulte@example.org")
    add_member(app, enrolled.household_id, "adult")  # no e-mail: nothing to send

    waiting, child = family(app, offer_a, [act_1])
    book(app, waiting.household_id, child, day, "waiting")
    # The account holder's address typed again on another card: one e-mail, not two.
    add_member(app, waiting.household_id, "adult", email=waiting.email.upper())

    other, child = family(app, offer_a, [act_2])
    book(app, other.household_id, child, day, "cancelled")

    pending, _ = family(app, offer_a, [act_1], status="pending")

    past = make_user(app, role="parent")
    old_year = Offer(offer_a.service_id, make_school_year(app, date(2020, 9, 1)), [act_1])
    enrol_accepted(app, past.household_id, add_child(app, past.household_id), old_year)

    family_b, child = family(app, offer_b, offer_b.activity_ids)
    book(app, family_b.household_id, child, day_b, "booked")

    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, offer_a.service_id)
    return Scene(
        service_a=offer_a.service_id,
        service_b=offer_b.service_id,
        activity_1=act_1,
        activity_2=act_2,
        activity_b=offer_b.activity_ids[0],
        day=day,
        day_date=day_date,
        day_b=day_b,
        enrolled=enrolled,
        waiting=waiting,
        other_activity=other,
        pending=pending,
        past=past,
        family_b=family_b,
        agent=agent,
        admin=make_user(app, role="admin"),
    )


# --- Sending through the pages ------------------------------------------------------------------

TOKEN = re.compile(r'name="send_token" value="([^"]+)"')


def fields(audience: str = "service", **values) -> dict:
    data = {"audience": audience, "subject": "Fermeture le 12 mars", "body": "Bonjour,\nFermé."}
    data.update({key: str(value) for key, value in values.items()})
    return data


def preview(client, data: dict):
    return post(client, "/admin/messages/nouveau", {**data, "preview": "y"})


def send(client, data: dict):
    """Preview, then « Envoyer » with the preview's token, as a browser would."""
    page = preview(client, data)
    assert page.status_code == 200, page.get_data(as_text=True)
    token = TOKEN.search(page.get_data(as_text=True)).group(1)
    return post(client, "/admin/messages/nouveau", {**data, "send_token": token, "send": "y"})


# --- Reading the database -----------------------------------------------------------------------


def messages(app) -> list[Message]:
    with app.app_context():
        rows = list(db.session.scalars(select(Message).order_by(Message.id)))
        db.session.expunge_all()
        return rows


def recipients(app, message_id: int) -> set[int]:
    with app.app_context():
        return set(
            db.session.scalars(
                select(MessageRecipient.household_id).where(
                    MessageRecipient.message_id == message_id
                )
            )
        )


def mails(app, kind: str = "family-message") -> list[tuple[str, str, str | None]]:
    """(recipient, subject, reply-to) of the outbox's messages of this kind, sorted."""
    with app.app_context():
        return sorted(
            db.session.execute(
                select(MailMessage.recipient, MailMessage.subject, MailMessage.reply_to).where(
                    MailMessage.kind == kind
                )
            ).all()
        )


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def make_message(app, service_id: int, household_ids, *, subject: str = "Info") -> int:
    """A message already sent to these households (straight in the database)."""
    with app.app_context():
        message = Message(
            audience="service",
            service_id=service_id,
            audience_label="Service",
            subject=subject,
            body="Texte",
            send_token=f"test-{next(_counter)}",
            status="sent",
            recipient_count=len(household_ids),
        )
        db.session.add(message)
        db.session.flush()
        for household_id in household_ids:
            db.session.add(MessageRecipient(message_id=message.id, household_id=household_id))
        db.session.commit()
        return message.id
