"""E-mails of the reservations: a waiting-list promotion, the optional summary."""

from __future__ import annotations

from sqlalchemy import select

from citoyens.extensions import db
from citoyens.households.models import Household, Person
from citoyens.mail import absolute_url
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity, Service


def tell_promoted(booking_ids: list[int]) -> None:
    """A place freed up: tell each family their child is now booked."""
    from citoyens.mail import send_mail
    from citoyens.requests.operations import family_recipients

    rows = db.session.execute(
        select(Booking, ActivityDay, Activity, Person, Service.mailbox)
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .join(Service, Service.id == Activity.service_id)
        .join(Person, Person.id == Booking.child_id)
        .where(Booking.id.in_(booking_ids))
    ).all()
    for booking, activity_day, activity, child, mailbox in rows:
        link = absolute_url(
            "reservations.month",
            child_id=child.id,
            mois=activity_day.day.strftime("%Y-%m"),
        )
        for email in family_recipients(booking.household_id):
            send_mail(
                "booking-promoted",
                email,
                f"Place libérée : une place est réservée pour {child.first_name} le "
                f"{activity_day.day.strftime('%d/%m/%Y')}",
                "booking_promoted",
                reply_to=mailbox,
                child_name=child.first_name,
                activity_name=activity.name,
                day=activity_day.day,
                link=link,
            )


def send_summary(household_id: int, child_names: dict[int, str], lines: list[str]) -> None:
    """The summary of a change of bookings, for households that asked for it."""
    from citoyens.mail import send_mail
    from citoyens.requests.operations import family_recipients

    household = db.session.get(Household, household_id)
    if household is None or not household.booking_summary_mail or not lines:
        return
    link = absolute_url("reservations.index")
    for email in family_recipients(household_id):
        send_mail(
            "booking-summary",
            email,
            "Vos réservations ont été modifiées",
            "booking_summary",
            lines=lines,
            link=link,
        )
