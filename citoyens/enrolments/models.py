"""An enrolment: a child, a service, a school year, the activities chosen.

The family follows it as a request (kind "enrolment", or "place_request" for the
multi-accueil); `status` mirrors the decision so the database can refuse a
duplicate (same child, service and year) while one is pending or accepted.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db

ENROLMENT_STATUSES = {
    "pending": "En attente de validation",
    "accepted": "Acceptée",
    "refused": "Refusée",
    "waiting_list": "Liste d'attente",
    "cancelled": "Annulée",
    "ended": "Terminée",
}


class Enrolment(db.Model):
    __tablename__ = "enrolments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'accepted', 'refused', 'waiting_list', 'cancelled', 'ended')",
            name="status",
        ),
        Index(
            "uq_enrolments_live",
            "child_id",
            "service_id",
            "school_year_id",
            unique=True,
            sqlite_where=text("status IN ('pending', 'accepted', 'waiting_list')"),
            postgresql_where=text("status IN ('pending', 'accepted', 'waiting_list')"),
        ),
        Index("ix_enrolments_service_year_status", "service_id", "school_year_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL"), unique=True
    )
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    child_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="RESTRICT"))
    school_year_id: Mapped[int] = mapped_column(
        ForeignKey("school_years.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[str] = mapped_column(String(12), default="pending")
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Multi-accueil place request.
    wished_start_on: Mapped[date | None] = mapped_column(Date)
    days_per_week: Mapped[int | None] = mapped_column()
    hours_per_week: Mapped[int | None] = mapped_column()
    comments: Mapped[str | None] = mapped_column(Text)
    # Last day the child attends, once the enrolment is ended during the year (status
    # "ended"): its days up to this date stay bookable, none after.
    ends_on: Mapped[date | None] = mapped_column(Date)

    activities: Mapped[list[EnrolmentActivity]] = relationship(
        back_populates="enrolment", cascade="all, delete-orphan"
    )
    child = relationship("Person")
    service = relationship("Service")
    school_year = relationship("SchoolYear")
    request = relationship("Request")


class EnrolmentActivity(db.Model):
    __tablename__ = "enrolment_activities"
    __table_args__ = (
        UniqueConstraint("enrolment_id", "activity_id", name="uq_enrolment_activities_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolments.id", ondelete="CASCADE"), index=True
    )
    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="RESTRICT"), index=True
    )

    enrolment: Mapped[Enrolment] = relationship(back_populates="activities")
    activity = relationship("Activity")


CHANGE_ACTIONS = ("end", "activities", "school")


class EnrolmentChangeRequest(db.Model):
    """What a family asks to change on an accepted enrolment (request kind
    "enrolment_change"): staff accepting the request apply it through the same rules as
    their own changes (citoyens.enrolments.changes)."""

    __tablename__ = "enrolment_change_requests"
    __table_args__ = (CheckConstraint("action IN ('end', 'activities', 'school')", name="action"),)

    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    enrolment_id: Mapped[int] = mapped_column(
        ForeignKey("enrolments.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(10))
    ends_on: Mapped[date | None] = mapped_column(Date)  # end, or a removal's date
    add_ids: Mapped[str | None] = mapped_column(String(200))  # comma-separated activity ids
    remove_ids: Mapped[str | None] = mapped_column(String(200))
    school_id: Mapped[int | None] = mapped_column(
        ForeignKey("schools.id", ondelete="SET NULL"), index=True
    )
    class_level: Mapped[str | None] = mapped_column(String(5))
