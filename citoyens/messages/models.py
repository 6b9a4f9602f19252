"""A message staff send to families, and one row per household that receives it.

The recipients are fixed when the message is sent (`MessageRecipient`, one row per
household, unique): the family finds it in « Messages » at once, and the job queue then
e-mails the household's responsible adults. `emailed_at` is set by a conditional UPDATE in
the transaction that writes the household's e-mails to the outbox, so a job run twice, or
two workers, e-mail a household once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db

# Who receives it: the families of a service, of one activity, or booked on one day.
AUDIENCES = {
    "service": "Toutes les familles d'un service",
    "activity": "Les familles d'une activité",
    "day": "Les familles attendues un jour donné",
}
# "queued": the e-mails are still being written to the outbox (the job has not finished);
# "sent": every recipient household's e-mails are in the outbox.
MESSAGE_STATUSES = {"queued": "E-mails en préparation", "sent": "Envoyé"}

SUBJECT_MAX_LENGTH = 150
BODY_MAX_LENGTH = 5000


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("audience IN ('service', 'activity', 'day')", name="audience"),
        CheckConstraint("status IN ('queued', 'sent')", name="status"),
        CheckConstraint("recipient_count >= 0 AND email_count >= 0", name="counts"),
        Index("ix_messages_service_created_at", "service_id", "created_at"),
        # The sweeper looks for messages whose e-mails a lost job left unwritten.
        Index("ix_messages_status_created_at", "status", "created_at"),
        # Days and activities are deleted in bulk (recalculation): their SET NULL is indexed.
        Index("ix_messages_activity_day_id", "activity_day_id"),
        Index("ix_messages_activity_id", "activity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    audience: Mapped[str] = mapped_column(String(10))
    # Always set (the activity's or the day's service for those audiences): what scopes the
    # message to the agents of that service.
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"))
    activity_id: Mapped[int | None] = mapped_column(
        ForeignKey("activities.id", ondelete="SET NULL")
    )
    activity_day_id: Mapped[int | None] = mapped_column(
        ForeignKey("activity_days.id", ondelete="SET NULL")
    )
    # Who it went to, in words, as it was when sent ("Goulidons · Mercredi journée ·
    # mercredi 12 mars 2031"): the activity or the day may change or disappear later.
    audience_label: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX_LENGTH))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recipient_count: Mapped[int] = mapped_column(default=0, server_default="0")
    email_count: Mapped[int] = mapped_column(default=0, server_default="0")
    status: Mapped[str] = mapped_column(String(10), default="queued", server_default="queued")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Random, from the preview form: a double click on « Envoyer » sends one message.
    send_token: Mapped[str] = mapped_column(String(64), unique=True)

    author = relationship("User")
    service = relationship("Service")


class MessageRecipient(db.Model):
    """A household that received the message: whether it read it, when it was e-mailed."""

    __tablename__ = "message_recipients"
    __table_args__ = (
        UniqueConstraint("message_id", "household_id", name="uq_message_recipients_pair"),
        # The family's list and its unread count.
        Index("ix_message_recipients_household_read", "household_id", "read_at"),
        # The job's next households to e-mail.
        Index("ix_message_recipients_message_emailed", "message_id", "emailed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    message: Mapped[Message] = relationship()
