"""Services, their activities and rules of access, school years, schools."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
    true,
)
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
    # Who may enrol: an age range (in months, at the start of the school year) and/or
    # school levels (comma-separated CLASS_LEVELS); none set means everyone.
    min_age_months: Mapped[int | None] = mapped_column()
    max_age_months: Mapped[int | None] = mapped_column()
    school_levels: Mapped[str | None] = mapped_column(String(60))
    # Restauration scolaire: pupils of a private school eat at the OGEC's canteen.
    excludes_private_school: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Multi-accueil: a "demande de place" examined in commission, not a plain enrolment.
    place_request: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Added to the unit price for a child present without a reservation (DOMAIN.md), cents.
    walk_in_surcharge_cents: Mapped[int] = mapped_column(default=0, server_default="0")

    activities: Mapped[list[Activity]] = relationship(
        back_populates="service", order_by="Activity.id"
    )
    required_documents: Mapped[list[ServiceDocument]] = relationship(cascade="all, delete-orphan")


class ServiceDocument(db.Model):
    """A document type a service requires before enrolment."""

    __tablename__ = "service_documents"
    __table_args__ = (
        UniqueConstraint("service_id", "document_type_id", name="uq_service_documents_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    document_type_id: Mapped[int] = mapped_column(
        ForeignKey("document_types.id", ondelete="CASCADE"), index=True
    )

    document_type = relationship("DocumentType")


# The periods an activity runs in (DOMAIN.md "Calendar"), on its weekdays, minus public
# holidays and closures. "both": the crèche, every weekday of the year.
CALENDAR_KINDS = {
    "term": "En période scolaire",
    "holidays": "Pendant les vacances scolaires",
    "both": "Toute l'année (période scolaire et vacances)",
}
ACTIVITY_UNITS = {"day": "Journée", "half_day": "Demi-journée"}
CALENDAR_WORDS = {
    "term": "en période scolaire",
    "holidays": "pendant les vacances scolaires",
    "both": "toute l'année",
}
DAY_NAMES = dict(enumerate(("lundi", "mardi", "mercredi", "jeudi", "vendredi"), start=1))
DAY_NAMES.update({6: "samedi", 7: "dimanche"})


def describe_calendar(weekdays: list[int], calendar: str) -> str:
    """When an activity opens, in words: "les mercredis en période scolaire", "du lundi au
    vendredi pendant les vacances scolaires", "les lundis, mardis, jeudis et vendredis en
    période scolaire", "du lundi au vendredi toute l'année"."""
    days = sorted(set(weekdays))
    period = CALENDAR_WORDS.get(calendar, "")
    if not days:
        return ""
    if len(days) >= 3 and days == list(range(days[0], days[-1] + 1)):
        when = f"du {DAY_NAMES[days[0]]} au {DAY_NAMES[days[-1]]}"
    else:
        names = [f"{DAY_NAMES[day]}s" for day in days]
        listed = ", ".join(names[:-1]) + " et " + names[-1] if len(names) > 1 else names[0]
        when = f"les {listed}"
    return f"{when} {period}".strip()


class Activity(db.Model):
    """Something bookable of a service: APS matin, repas du midi, mercredi journée..."""

    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint("calendar IN ('term', 'holidays', 'both')", name="calendar"),
        CheckConstraint("unit IS NULL OR unit IN ('day', 'half_day')", name="unit"),
        CheckConstraint("capacity >= 0", name="capacity"),
        CheckConstraint("cutoff_hours >= 0", name="cutoff"),
        CheckConstraint("end_time > start_time", name="times"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    # ISO weekdays, Monday = 1: "1,2,4,5" for the canteen.
    weekdays: Mapped[str] = mapped_column(String(13))
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    capacity: Mapped[int] = mapped_column()
    cutoff_hours: Mapped[int] = mapped_column(default=72, server_default="72")
    calendar: Mapped[str] = mapped_column(String(15), default="term")
    unit: Mapped[str | None] = mapped_column(String(10))
    active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Activities of one set exclude each other on a date (journée / matin / après-midi):
    # bookings copy it, and a partial unique index refuses the second one.
    exclusion_set_id: Mapped[int | None] = mapped_column(
        ForeignKey("exclusion_sets.id", ondelete="SET NULL"), index=True
    )
    # The revenue account its invoice lines go to in the accounting export ("7067-APS").
    accounting_code: Mapped[str | None] = mapped_column(String(20))

    service: Mapped[Service] = relationship(back_populates="activities")
    exclusion_set: Mapped[ExclusionSet | None] = relationship()

    @property
    def weekday_numbers(self) -> list[int]:
        return [int(day) for day in self.weekdays.split(",") if day]

    @property
    def calendar_words(self) -> str:
        """ "les mercredis en période scolaire" (the enrolment form, catalogue, admin)."""
        return describe_calendar(self.weekday_numbers, self.calendar)


class ExclusionSet(db.Model):
    """Activities of a service a child may hold only one of on a date."""

    __tablename__ = "exclusion_sets"
    __table_args__ = (UniqueConstraint("service_id", "name", name="uq_exclusion_sets_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))


class SchoolYear(db.Model):
    """1 September to 31 August, named "2026-2027"."""

    __tablename__ = "school_years"
    __table_args__ = (CheckConstraint("ends_on > starts_on", name="dates"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(9), unique=True)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)


class EnrolmentWindow(db.Model):
    """When families may send enrolments to a service for a school year."""

    __tablename__ = "enrolment_windows"
    __table_args__ = (
        UniqueConstraint("service_id", "school_year_id", name="uq_enrolment_windows_pair"),
        CheckConstraint("closes_on >= opens_on", name="dates"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    school_year_id: Mapped[int] = mapped_column(
        ForeignKey("school_years.id", ondelete="CASCADE"), index=True
    )
    opens_on: Mapped[date] = mapped_column(Date)
    closes_on: Mapped[date] = mapped_column(Date)


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
