"""The e-mails of a message, written to the outbox by the job queue.

`email_message` takes the households not e-mailed yet by batches: a conditional UPDATE
sets their `emailed_at` (RETURNING the households it took) in the transaction that writes
their adults' e-mails to the outbox. A job run twice, or two workers at once, therefore
e-mail each household once; a crash rolls its batch back and the next run takes it again.
The last batch marks the message "sent". A periodic sweeper queues again the messages a
lost job left "queued" (the queue down when it was sent, a worker killed).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import exists, select, update

from citoyens import audit, jobs
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.messages.audience import addresses_of
from citoyens.messages.models import Message, MessageRecipient
from citoyens.transactions import write_transaction

log = logging.getLogger("citoyens.messages")

BATCH = 200  # households per transaction
LOST_AFTER = timedelta(minutes=10)
SWEEP_BATCH = 50


@jobs.task(retries=3, retry_delay=60)
def email_message(message_id: int) -> None:
    """The task: e-mail the message to the households that have not had it yet."""
    email_recipients(message_id)


def email_recipients(message_id: int) -> int:
    """Write the e-mails of every household of the message not e-mailed yet, batch by batch,
    then mark the message sent: the number of e-mails this run wrote."""
    from citoyens.mail import absolute_url
    from citoyens.reservations.closures import mail_context

    message = db.session.get(Message, message_id)
    if message is None:
        return 0
    mail = {
        "subject": message.subject,
        "body": message.body,
        "service_name": message.service.name,
        "reply_to": message.service.mailbox,
    }
    db.session.commit()  # end the read: each batch is a write transaction of its own
    written = 0
    with mail_context() as site:
        # No link when the site's address is unknown (PUBLIC_URL), rather than "localhost".
        link = absolute_url("messages.show", message_id=message_id) if site else None
        while True:
            count = write_transaction(lambda: _email_batch(message_id, mail, link))
            if count is None:
                break
            written += count
    write_transaction(lambda: _finish(message_id))
    return written


def _email_batch(message_id: int, mail: dict, link: str | None) -> int | None:
    """Take the next households and write their e-mails: how many; None when none is left."""
    from citoyens.mail import send_mail

    waiting = (
        select(MessageRecipient.id)
        .where(MessageRecipient.message_id == message_id, MessageRecipient.emailed_at.is_(None))
        .order_by(MessageRecipient.id)
        .limit(BATCH)
    )
    taken = list(
        db.session.scalars(
            update(MessageRecipient)
            .where(MessageRecipient.id.in_(waiting), MessageRecipient.emailed_at.is_(None))
            .values(emailed_at=utcnow())
            .returning(MessageRecipient.household_id)
            .execution_options(synchronize_session=False)
        )
    )
    if not taken:
        return None
    found = addresses_of(taken)
    count = 0
    for household_id in taken:
        for email in found.emails.get(household_id, []):
            send_mail(
                "family-message",
                email,
                " ".join(mail["subject"].split())[:200],
                "family_message",
                reply_to=mail["reply_to"],
                title=mail["subject"],
                body=mail["body"],
                service_name=mail["service_name"],
                link=link,
            )
            count += 1
    if count:
        db.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(email_count=Message.email_count + count)
            .execution_options(synchronize_session=False)
        )
    return count


def _finish(message_id: int) -> None:
    """Mark the message sent once no household waits (whoever gets there first)."""
    waiting = exists().where(
        MessageRecipient.message_id == message_id, MessageRecipient.emailed_at.is_(None)
    )
    finished = db.session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == "queued", ~waiting)
        .values(status="sent", sent_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if finished:
        emails = db.session.scalar(select(Message.email_count).where(Message.id == message_id))
        audit.record("message.emailed", target=f"message:{message_id}", details=f"emails:{emails}")


@jobs.periodic_task(jobs.crontab(minute="*/10"))
def requeue_lost_messages() -> None:
    """Every ten minutes: queue again the messages still "queued" long after they were sent."""
    for message_id in lost_messages():
        email_message(message_id)


def lost_messages() -> list[int]:
    """Messages whose e-mails a lost job left unwritten (oldest first, a batch at a time)."""
    ids = list(
        db.session.scalars(
            select(Message.id)
            .where(Message.status == "queued", Message.created_at < utcnow() - LOST_AFTER)
            .order_by(Message.created_at)
            .limit(SWEEP_BATCH)
        )
    )
    db.session.commit()
    if ids:
        log.info("messages queued again: %s", ids)
    return ids
