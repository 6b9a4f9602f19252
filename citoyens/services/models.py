"""Services and schools. The enrolment issue adds activities and school years."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db

SERVICE_CATEGORIES = {
    "petite-enfance": "Petite enfance",
    "enfance": "Enfance",
    "jeunesse": "Jeunesse",
}


class Service(db.Model):
    """A municipal service families deal with; its mailbox receives their requests."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("category IN ('petite-enfance', 'enfance', 'jeunesse')", name="category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    category: Mapped[str] = mapped_column(String(20), default="enfance")
    description: Mapped[str | None] = mapped_column(Text)
    mailbox: Mapped[str | None] = mapped_column(String(254))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffService(db.Model):
    """Which services an agent works for (administrators see them all)."""

    __tablename__ = "staff_services"
    __table_args__ = (UniqueConstraint("user_id", "service_id", name="uq_staff_services_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True
    )

    service: Mapped[Service] = relationship()


SCHOOL_KINDS = {"public": "Publique", "private": "Privée"}
CLASS_LEVELS = ["TPS", "PS", "MS", "GS", "CP", "CE1", "CE2", "CM1", "CM2"]


class School(db.Model):
    """A school children attend. Private schools' canteens are run by the OGEC."""

    __tablename__ = "schools"
    __table_args__ = (CheckConstraint("kind IN ('public', 'private')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(10), default="public")
    address: Mapped[str | None] = mapped_column(String(255))
    # For private schools: who runs the canteen (OGEC), shown to families.
    canteen_contact: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
