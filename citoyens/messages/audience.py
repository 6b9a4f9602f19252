"""Who receives a message: the households of a service, of one activity or of one activity
day, and the e-mail addresses of their responsible adults. Plain queries, no HTTP.

- A service or an activity: the households with an **accepted** enrolment in it, in a
  school year not over yet. A pending enrolment (or one on the waiting list) does not
  count: the child is not admitted yet, and a closure or an outing is no news for a
  family still waiting for an answer. The form says so.
- A day: the households with a child booked or on the waiting list that day, or come
  without booking (a walk-in, recorded on the day itself); cancelled bookings do not count.
- A household whose account was closed receives nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Select, exists, func, select

from citoyens.accounts.models import User
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.formatting import day_fr
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity, SchoolYear, Service

# Bookings whose family is expected on the day (not "cancelled").
EXPECTED_BOOKINGS = ("booked", "waiting", "walk_in")


@dataclass(frozen=True)
class Audience:
    """The families a message goes to: `kind` and the service, activity or day it names."""

    kind: str  # "service", "activity" or "day"
    service: Service
    activity: Activity | None = None
    day: ActivityDay | None = None

    @property
    def label(self) -> str:
        """ "Goulidons · Mercredi journée · mercredi 12 mars 2031", as staff see it."""
        parts = [self.service.name]
        if self.activity is not None:
            parts.append(self.activity.name)
        if self.day is not None:
            parts.append(day_fr(self.day.day))
        return " · ".join(parts)

    @property
    def ids(self) -> dict[str, int | None]:
        """The message's columns naming its audience."""
        return {
            "service_id": self.service.id,
            "activity_id": self.activity.id if self.activity is not None else None,
            "activity_day_id": self.day.id if self.day is not None else None,
        }


def household_ids(audience: Audience, today: date) -> Select:
    """A SELECT of the distinct household ids the message goes to (runs no query)."""
    open_household = select(Household.id).where(Household.closed_at.is_(None))
    if audience.kind == "day":
        return (
            select(Booking.household_id)
            .where(
                Booking.activity_day_id == audience.day.id,
                Booking.status.in_(EXPECTED_BOOKINGS),
                Booking.household_id.in_(open_household),
            )
            .distinct()
        )
    query = (
        select(Enrolment.household_id)
        .join(SchoolYear, SchoolYear.id == Enrolment.school_year_id)
        .where(
            Enrolment.service_id == audience.service.id,
            Enrolment.status == "accepted",
            SchoolYear.ends_on >= today,
            Enrolment.household_id.in_(open_household),
        )
    )
    if audience.kind == "activity":
        query = query.where(
            exists().where(
                EnrolmentActivity.enrolment_id == Enrolment.id,
                EnrolmentActivity.activity_id == audience.activity.id,
            )
        )
    return query.distinct()


@dataclass
class Addresses:
    """The responsible adults of some households and where each is e-mailed."""

    adults: dict[int, int] = field(default_factory=dict)  # household id -> adults
    emails: dict[int, list[str]] = field(default_factory=dict)  # household id -> addresses

    @property
    def adult_count(self) -> int:
        return sum(self.adults.values())

    @property
    def email_count(self) -> int:
        return sum(len(found) for found in self.emails.values())


def addresses_of(households) -> Addresses:
    """For households (a list of ids or a SELECT of them), each responsible adult's address:
    that of their account when they have one (the address they log in with), else the one
    on their card; account holders not linked to an adult card are e-mailed too. One
    address once per household, whatever its case. Two queries."""
    adults = db.session.execute(
        select(HouseholdMember.household_id, Person.id, Person.email)
        .join(Person, Person.id == HouseholdMember.person_id)
        .where(
            HouseholdMember.household_id.in_(households),
            HouseholdMember.role == "adult",
            HouseholdMember.left_at.is_(None),
        )
        .order_by(HouseholdMember.household_id, HouseholdMember.id)
    ).all()
    accounts = db.session.execute(
        select(User.household_id, User.person_id, User.email)
        .where(
            User.household_id.in_(households),
            User.role == "parent",
            User.active.is_(True),
        )
        .order_by(User.household_id, User.id)
    ).all()
    login_of: dict[tuple[int, int], str] = {}
    unlinked: dict[int, list[str]] = defaultdict(list)
    for household_id, person_id, email in accounts:
        if person_id is None:
            unlinked[household_id].append(email)
        else:
            login_of[(household_id, person_id)] = email
    found = Addresses()
    cards: dict[int, set[int]] = defaultdict(set)
    for household_id, person_id, card_email in adults:
        found.adults[household_id] = found.adults.get(household_id, 0) + 1
        cards[household_id].add(person_id)
        _add(found, household_id, login_of.get((household_id, person_id)) or card_email)
    for (household_id, person_id), email in login_of.items():
        if person_id not in cards[household_id]:  # an account whose card left or is not adult
            unlinked[household_id].append(email)
    for household_id, emails in unlinked.items():
        for email in emails:
            _add(found, household_id, email)
    return found


def _add(found: Addresses, household_id: int, email: str | None) -> None:
    email = (email or "").strip()
    if not email:
        return
    known = found.emails.setdefault(household_id, [])
    if email.casefold() not in {address.casefold() for address in known}:
        known.append(email)


@dataclass
class Preview:
    """What « Envoyer » would do: how many families, adults and e-mails."""

    families: int
    adults: int
    emails: int


def preview(audience: Audience, today: date) -> Preview:
    """The counts shown before sending. Three queries, whatever the number of families."""
    ids = household_ids(audience, today)
    families = db.session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    found = addresses_of(ids)
    return Preview(families=families, adults=found.adult_count, emails=found.email_count)
