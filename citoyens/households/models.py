"""Household, person, and the membership table that links them.

A child may belong to two households (separated parents), so people are not
owned by a household: a membership row says who belongs where, and as what.
A member removed by staff keeps their row with `left_at` set: history stays.
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
    false,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db, trigram_index

MEMBER_ROLES = ("adult", "child", "contact")


class Household(db.Model):
    __tablename__ = "households"
    __table_args__ = (
        trigram_index("households", "external_ref"),
        trigram_index("households", "city"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Identifier in the previous system, for imported families.
    external_ref: Mapped[str | None] = mapped_column(String(40), unique=True)
    address_line: Mapped[str | None] = mapped_column(String(200))
    address_extra: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    # Quotient familial (CAF/MSA), in euros, as accepted by staff: the one invoices use.
    # None means unknown (top tariff band). A family's own figure is a QuotientDeclaration.
    family_quotient: Mapped[int | None] = mapped_column()
    # "Facture en ligne": on by default; nothing to do with paying online.
    paperless_invoices: Mapped[bool] = mapped_column(default=True, server_default=true())
    civil_status_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Secret of the household's iCalendar feed of booked days; None until asked for.
    calendar_token: Mapped[str | None] = mapped_column(String(43), unique=True)
    # A summary e-mail after each change of the bookings (off unless asked for).
    booking_summary_mail: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Account closed at the family's request (citoyens.privacy.closure): its accounts are
    # off; the retention purge deletes its personal data later (citoyens.retention).
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Personal data deleted by the retention purge: what stays is an anonymous shell that
    # its invoices, payments and credit movements (accounting records) still point to.
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    memberships: Mapped[list[HouseholdMember]] = relationship(
        back_populates="household", cascade="all, delete-orphan"
    )


class Person(db.Model):
    __tablename__ = "people"
    __table_args__ = (
        CheckConstraint("civility IS NULL OR civility IN ('M.', 'Mme')", name="civility"),
        CheckConstraint("sex IS NULL OR sex IN ('F', 'M')", name="sex"),
        trigram_index("people", "first_name"),
        trigram_index("people", "last_name"),
        trigram_index("people", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    civility: Mapped[str | None] = mapped_column(String(4))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1))
    # Adults and contacts. Phones are stored E.164 (+33612345678).
    email: Mapped[str | None] = mapped_column(String(254))
    mobile_phone: Mapped[str | None] = mapped_column(String(20))
    home_phone: Mapped[str | None] = mapped_column(String(20))
    work_phone: Mapped[str | None] = mapped_column(String(20))
    address_line: Mapped[str | None] = mapped_column(String(200))
    postcode: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    # Children.
    school_id: Mapped[int | None] = mapped_column(
        ForeignKey("schools.id", ondelete="SET NULL"), index=True
    )
    class_level: Mapped[str | None] = mapped_column(String(5))
    allergies: Mapped[str | None] = mapped_column(Text)
    diet: Mapped[str | None] = mapped_column(String(30))
    pai: Mapped[bool] = mapped_column(default=False, server_default=false())
    doctor_name: Mapped[str | None] = mapped_column(String(120))
    doctor_phone: Mapped[str | None] = mapped_column(String(20))
    image_rights: Mapped[bool] = mapped_column(default=False, server_default=false())
    outing_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    memberships: Mapped[list[HouseholdMember]] = relationship(back_populates="person")
    school = relationship("School")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"


# Fields whose values never go into the change history (health data).
HEALTH_FIELDS = frozenset({"allergies", "diet", "pai", "doctor_name", "doctor_phone"})


class HouseholdMember(db.Model):
    __tablename__ = "household_members"
    __table_args__ = (
        UniqueConstraint("household_id", "person_id", name="uq_household_members_person"),
        CheckConstraint("role IN ('adult', 'child', 'contact')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(10))
    # Other contacts: who they are to the family, and what they may do.
    relationship_label: Mapped[str | None] = mapped_column(String(60))
    can_pick_up: Mapped[bool] = mapped_column(default=False, server_default=false())
    emergency_contact: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    household: Mapped[Household] = relationship(back_populates="memberships")
    person: Mapped[Person] = relationship(back_populates="memberships")

    @property
    def active(self) -> bool:
        return self.left_at is None


class HouseholdChange(db.Model):
    """Who changed what in a household, and when: field names only, never health values."""

    __tablename__ = "household_changes"
    __table_args__ = (Index("ix_household_changes_household_at", "household_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(20))  # created, updated, removed, invited, ...
    fields: Mapped[str | None] = mapped_column(String(500))  # comma-separated field names

    actor = relationship("User")
    person = relationship("Person")


class QuotientDeclaration(db.Model):
    """The QF a family declared with its CAF/MSA attestation: the figure its "family_quotient"
    request is about. It prices nothing until staff accept the request, which copies it
    to `Household.family_quotient`; the attestation is the request's document."""

    __tablename__ = "quotient_declarations"
    __table_args__ = (
        CheckConstraint("family_quotient >= 0 AND family_quotient <= 99999", name="range"),
    )

    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), primary_key=True
    )
    family_quotient: Mapped[int] = mapped_column()


class Invitation(db.Model):
    """A second responsible adult invited by e-mail to get an account on the household."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    invited_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
