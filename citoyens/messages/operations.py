"""Message verbs: send one to families, mark one (or all) read. Each flushes; the caller
commits (sending goes through `write_transaction`)."""

from __future__ import annotations

import secrets
from datetime import date

from sqlalchemy import func, insert, literal, select, update

from citoyens import audit, jobs
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.messages.audience import Audience, household_ids
from citoyens.messages.models import Message, MessageRecipient

NOBODY = (
    "Aucune famille ne recevrait ce message : personne n'est inscrit (inscription acceptée) "
    "ou attendu ce jour-là. Choisissez d'autres destinataires."
)


class MessageError(ValueError):
    """A message that cannot be sent; the text is French."""


def new_send_token() -> str:
    """The random token of one preview: « Envoyer » pressed twice sends one message."""
    return secrets.token_urlsafe(24)


def send_message(
    audience: Audience, subject: str, body: str, *, author, send_token: str, today: date
) -> tuple[Message, bool]:
    """Record the message and its recipient households (one INSERT … SELECT), audited; the
    job that e-mails them is queued for after the commit. (message, True) when sent now;
    (the message already sent with this token, False) for a second press of the button."""
    already = db.session.scalar(select(Message).where(Message.send_token == send_token))
    if already is not None:
        return already, False
    message = Message(
        author_id=getattr(author, "id", None),
        audience=audience.kind,
        audience_label=audience.label[:300],
        subject=subject,
        body=body,
        send_token=send_token,
        status="queued",
        **audience.ids,
    )
    db.session.add(message)
    db.session.flush()  # a concurrent press with the same token fails here (unique)
    households = household_ids(audience, today).subquery()
    db.session.execute(
        insert(MessageRecipient).from_select(
            ["message_id", "household_id"],
            select(literal(message.id), households.c.household_id),
        )
    )
    # Counted, not read from the row count: drivers may not report one for INSERT … SELECT.
    added = db.session.scalar(
        select(func.count(MessageRecipient.id)).where(MessageRecipient.message_id == message.id)
    )
    if not added:
        raise MessageError(NOBODY)
    message.recipient_count = added
    db.session.flush()
    audit.record(
        "message.sent",
        actor=author,
        target=f"message:{message.id}",
        details=f"{audience.kind} service:{audience.service.id} "
        f"activity:{message.activity_id or '-'} day:{message.activity_day_id or '-'} "
        f"households:{added}",
    )
    from citoyens.messages.tasks import email_message

    jobs.enqueue_after_commit(email_message, message.id)
    return message, True


def mark_read(message_id: int, household_id: int) -> bool:
    """The family opened the message: its read time, once. True when this call marked it."""
    return bool(
        db.session.execute(
            update(MessageRecipient)
            .where(
                MessageRecipient.message_id == message_id,
                MessageRecipient.household_id == household_id,
                MessageRecipient.read_at.is_(None),
            )
            .values(read_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
    )


def mark_all_read(household_id: int) -> int:
    """Every unread message of the household marked read: how many."""
    return db.session.execute(
        update(MessageRecipient)
        .where(MessageRecipient.household_id == household_id, MessageRecipient.read_at.is_(None))
        .values(read_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
