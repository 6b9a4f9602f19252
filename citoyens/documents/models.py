"""Document types (managed by staff) and the documents families upload."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db

DOCUMENT_STATUSES = {
    "pending": "En attente",
    "accepted": "Accepté",
    "refused": "Refusé",
    "expired": "Expiré",  # derived from valid_until, never stored
}


class DocumentType(db.Model):
    """What a document is, whose it is, and how long it stays valid.

    Validity: a number of months from upload, or until the end of the school
    year (31 August), or forever when neither is set.
    """

    __tablename__ = "document_types"
    __table_args__ = (CheckConstraint("scope IN ('household', 'child')", name="scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    label: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(String(10), default="household")
    validity_months: Mapped[int | None] = mapped_column()
    until_school_year_end: Mapped[bool] = mapped_column(default=False)
    # Health documents: every opening by staff is logged.
    health: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)


class Document(db.Model):
    """One uploaded file. A newer upload of the same type for the same person
    replaces it for the family (`replaced_at` set); staff keep the history."""

    __tablename__ = "documents"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'accepted', 'refused')", name="status"),
        Index("ix_documents_current", "household_id", "type_id", "person_id", "replaced_at"),
        # One current document per household, type and person (and activity day, for a
        # certificate of absence: one per day justified): the database says so.
        Index(
            "uq_documents_one_current",
            "household_id",
            "type_id",
            func.coalesce(text("person_id"), 0),
            func.coalesce(text("activity_day_id"), 0),
            unique=True,
            sqlite_where=text("replaced_at IS NULL"),
            postgresql_where=text("replaced_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), index=True
    )
    type_id: Mapped[int] = mapped_column(
        ForeignKey("document_types.id", ondelete="RESTRICT"), index=True
    )
    # The day a medical certificate of absence justifies: each day has its own certificate,
    # and a new one sent for that day (after a refusal) replaces only that day's.
    activity_day_id: Mapped[int | None] = mapped_column(
        ForeignKey("activity_days.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), default="pending")
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    original_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(60))
    size: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    valid_until: Mapped[date | None] = mapped_column(Date)
    reviewed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refusal_reason: Mapped[str | None] = mapped_column(String(500))
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The "documents to check" request it is reviewed in: the household's (documents sent
    # outside an enrolment) or an enrolment's. None: checked with another request (a
    # quotient familial declaration carries its attestation through `Request.document_id`).
    # use_alter: requests.document_id points the other way (a cycle the tables' creation
    # order resolves by adding this key once both exist).
    review_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL", use_alter=True), index=True
    )

    type: Mapped[DocumentType] = relationship()
    person = relationship("Person")

    def status_on(self, day: date) -> str:
        """pending, accepted, refused, or expired once past its validity end."""
        if self.valid_until is not None and day > self.valid_until:
            return "expired"
        return self.status


NOTICE_DECISIONS = ("accepted", "refused")


class DocumentNotice(db.Model):
    """A staff decision on a document the family has not been told of yet.

    Decisions are told grouped: one e-mail per household a few minutes after the last one
    (`citoyens.documents.notices`), so an agent checking four documents sends one e-mail.
    One notice per document (a document is decided once); `sent_at` is set in the
    transaction that writes the e-mail to the outbox, so two workers never send it twice.
    """

    __tablename__ = "document_notices"
    __table_args__ = (
        CheckConstraint("decision IN ('accepted', 'refused')", name="decision"),
        Index("ix_document_notices_pending", "household_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    document_id: Mapped[int] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), unique=True
    )
    decision: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Not told before this moment: each new decision of the household pushes it back.
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    document: Mapped[Document] = relationship()
