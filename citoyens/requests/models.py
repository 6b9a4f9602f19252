"""The generic request and its history of events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db

REQUEST_KINDS = {
    "member_removal": "Suppression d'un membre du foyer",
    "document_review": "Vérification d'un document",
    "enrolment": "Inscription",
    "place_request": "Demande de place en multi-accueil",
    "family_quotient": "Quotient familial",
    "account_closure": "Fermeture du compte famille",
    "enrolment_change": "Modification d'une inscription",
}
# Kinds only administrators see and decide (tied to no service: DOMAIN.md "Staff and scope").
ADMIN_ONLY_KINDS = frozenset({"account_closure"})

REQUEST_STATUSES = {
    "sent": "Envoyée",
    "in_review": "En cours d'examen",
    "waiting_list": "Liste d'attente",
    "accepted": "Acceptée",
    "refused": "Refusée",
    "cancelled": "Annulée",
}
OPEN_STATUSES = ("sent", "in_review", "waiting_list")
# A document under review is withdrawn by sending another file, not by cancelling.
NOT_CANCELLABLE_BY_FAMILY = frozenset({"document_review"})

EVENT_KINDS = ("created", "status", "message", "note")


class Request(db.Model):
    __tablename__ = "requests"
    __table_args__ = (
        CheckConstraint(
            "status IN ('sent', 'in_review', 'waiting_list', 'accepted', 'refused', 'cancelled')",
            name="status",
        ),
        Index("ix_requests_household_status", "household_id", "status"),
        Index("ix_requests_service_status", "service_id", "status"),
        # At most one open removal request per person of a household, even when two
        # parents press the button at the same instant.
        Index(
            "uq_requests_open_removal",
            "household_id",
            "person_id",
            unique=True,
            sqlite_where=text("kind = 'member_removal' AND status IN ('sent', 'in_review')"),
            postgresql_where=text("kind = 'member_removal' AND status IN ('sent', 'in_review')"),
        ),
        # At most one quotient familial declaration waiting for staff per household.
        Index(
            "uq_requests_open_quotient",
            "household_id",
            unique=True,
            sqlite_where=text("kind = 'family_quotient' AND status IN ('sent', 'in_review')"),
            postgresql_where=text("kind = 'family_quotient' AND status IN ('sent', 'in_review')"),
        ),
        # At most one open change request per child and service (enrolments during the year).
        Index(
            "uq_requests_open_enrolment_change",
            "person_id",
            "service_id",
            unique=True,
            sqlite_where=text("kind = 'enrolment_change' AND status IN ('sent', 'in_review')"),
            postgresql_where=text("kind = 'enrolment_change' AND status IN ('sent', 'in_review')"),
        ),
        # At most one open "documents to check" request per household for the documents
        # sent outside an enrolment (for_request_id NULL), and one per enrolment request.
        Index(
            "uq_requests_open_document_review",
            "household_id",
            func.coalesce(text("for_request_id"), 0),
            unique=True,
            sqlite_where=text("kind = 'document_review' AND status IN ('sent', 'in_review')"),
            postgresql_where=text("kind = 'document_review' AND status IN ('sent', 'in_review')"),
        ),
        # At most one open request to close the account per household.
        Index(
            "uq_requests_open_closure",
            "household_id",
            unique=True,
            sqlite_where=text("kind = 'account_closure' AND status IN ('sent', 'in_review')"),
            postgresql_where=text("kind = 'account_closure' AND status IN ('sent', 'in_review')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(12), default="sent")
    title: Mapped[str] = mapped_column(String(200))
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    # The service whose queue it sits in; None: every agent's general queue.
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="SET NULL"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL"), index=True
    )
    # A "documents to check" request made for another request (an enrolment's): the
    # documents that enrolment requires are checked together in it.
    for_request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL"), index=True
    )
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    events: Mapped[list[RequestEvent]] = relationship(
        back_populates="request", order_by="RequestEvent.id", cascade="all, delete-orphan"
    )
    household = relationship("Household")
    service = relationship("Service")
    person = relationship("Person")
    document = relationship("Document", foreign_keys=[document_id])

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def family_can_cancel(self) -> bool:
        return self.is_open and self.kind not in NOT_CANCELLABLE_BY_FAMILY


class RequestEvent(db.Model):
    """One dated line of a request's history. `internal` notes are never shown to the family."""

    __tablename__ = "request_events"
    __table_args__ = (
        CheckConstraint("kind IN ('created', 'status', 'message', 'note')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str | None] = mapped_column(String(12))
    body: Mapped[str | None] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(default=False)

    request: Mapped[Request] = relationship(back_populates="events")
    actor = relationship("User")
