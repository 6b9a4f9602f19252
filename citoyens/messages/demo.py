"""Demo data of the messages, called by citoyens.demo.seed (idempotent).

The APS agent has told the APS families that the périscolaire closes during the next
school holidays (it runs in term time only: the calendar agrees). The demo family finds
the message unread in « Messages »; its e-mails leave through the job queue.
"""

from __future__ import annotations

from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.extensions import db
from citoyens.formatting import day_fr
from citoyens.forms import today_in_paris
from citoyens.messages.audience import Audience, preview
from citoyens.messages.models import Message
from citoyens.messages.operations import send_message
from citoyens.reservations.models import Holiday
from citoyens.services.models import Service

DEMO_TOKEN = "demo-aps-holiday-closure"  # noqa: S105 (the send token of the demo message)
AUTHOR = "agent@example.org"


def _text(holiday: Holiday | None) -> tuple[str, str]:
    if holiday is None:
        when, subject = "pendant les vacances scolaires", "Vacances scolaires"
    else:
        when = f"du {day_fr(holiday.starts_on)} au {day_fr(holiday.ends_on)}"
        subject = holiday.name
    return (
        f"{subject} : l'accueil périscolaire est fermé",
        "Bonjour,\n\n"
        f"L'accueil périscolaire (matin et soir) est fermé {when}. Il rouvre à la rentrée, "
        "aux horaires habituels.\n\n"
        "Pendant les vacances, les Goulidons accueillent les enfants de 3 à 12 ans : "
        "pensez à réserver depuis votre espace famille.\n\n"
        "L'équipe de l'accueil périscolaire",
    )


def seed_demo() -> int:
    """Send the demo message once; how many records were added."""
    if db.session.scalar(select(Message.id).where(Message.send_token == DEMO_TOKEN)):
        return 0
    service = db.session.scalar(select(Service).where(Service.code == "aps"))
    author = db.session.scalar(select(User).where(User.email == AUTHOR))
    if service is None or author is None:
        return 0
    today = today_in_paris()
    holiday = db.session.scalar(
        select(Holiday)
        .where(Holiday.kind == "school", Holiday.ends_on >= today)
        .order_by(Holiday.starts_on)
        .limit(1)
    )
    audience = Audience("service", service)
    if not preview(audience, today).families:  # nobody enrolled at the APS here
        return 0
    subject, body = _text(holiday)
    message, _ = send_message(
        audience, subject, body, author=author, send_token=DEMO_TOKEN, today=today
    )
    return 1 + message.recipient_count
