"""The household's iCalendar feed of booked days and the reservation settings.

The feed URL carries a random secret (`Household.calendar_token`, 256 bits): phone
calendars cannot log in, so the URL is the credential. Whoever knows it sees the
days booked for the children, so the family can change it (the old URL stops
working) or stop sharing. The token never goes into a log or an audit event.

The feed answers with `Cache-Control: no-store` (private data) and never sets a
cookie: it reads neither the session nor the logged-in user, and its 404 is plain
text rather than the HTML error page (which would mint a CSRF token, so a session).
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime, timedelta

from flask import Blueprint, Response, current_app, flash, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from icalendar import Calendar, Event
from sqlalchemy import select
from wtforms import BooleanField

from citoyens import audit
from citoyens.accounts.decorators import parent_required
from citoyens.core import settings as commune_settings
from citoyens.extensions import db
from citoyens.forms import PARIS, today_in_paris
from citoyens.households.models import Household, Person
from citoyens.mail import absolute_url
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity, Service
from citoyens.web import render

bp = Blueprint("calendar_feed", __name__)

# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}\Z")
PAST_DAYS = 60
REFRESH = timedelta(hours=6)


def new_token() -> str:
    return secrets.token_urlsafe(32)


# --- The feed ---------------------------------------------------------------------------------


def feed_rows(household_id: int, since: date):
    """The household's booked days from `since` on, with what an event shows. One query."""
    return db.session.execute(
        select(
            Booking.id,
            Booking.updated_at,
            ActivityDay.day,
            Activity.start_time,
            Activity.end_time,
            Activity.name.label("activity_name"),
            Service.name.label("service_name"),
            Person.first_name,
        )
        .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
        .join(Activity, Activity.id == ActivityDay.activity_id)
        .join(Service, Service.id == Activity.service_id)
        .join(Person, Person.id == Booking.child_id)
        .where(
            Booking.household_id == household_id,
            Booking.status == "booked",
            ActivityDay.day >= since,
        )
        .order_by(ActivityDay.day, Activity.start_time, Booking.id)
    ).all()


def uid_domain() -> str:
    server = current_app.config.get("SERVER_NAME") or "citoyens"
    return server.split(":")[0]


def build_calendar(rows, *, commune: str, domain: str) -> bytes:
    """An iCalendar (RFC 5545) document, one VEVENT per booked day, times in Europe/Paris.

    UIDs and DTSTAMPs come from the booking, so two fetches give the same events.
    """
    cal = Calendar()
    cal.add("prodid", "-//Citoyens//Réservations//FR")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"Réservations — {commune}")
    cal.add("x-wr-timezone", "Europe/Paris")
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT6H")
    for row in rows:
        event = Event()
        event.add("uid", f"booking-{row.id}@{domain}")
        event.add("dtstamp", row.updated_at)
        event.add("dtstart", datetime.combine(row.day, row.start_time, tzinfo=PARIS))
        event.add("dtend", datetime.combine(row.day, row.end_time, tzinfo=PARIS))
        event.add("summary", f"{row.first_name} — {row.activity_name}")
        event.add("location", row.service_name)
        event.add("description", row.service_name)
        # The child's activity, not the parent's: it does not make the parent busy.
        event.add("transp", "TRANSPARENT")
        cal.add_component(event)
    if rows:
        # VTIMEZONE for the dates the events use (a short one, not 1970 to 2038).
        cal.add_missing_timezones(
            first_date=rows[0].day - timedelta(days=366),
            last_date=rows[-1].day + timedelta(days=366),
        )
    return cal.to_ical()


@bp.get("/calendrier/<token>.ics")
def ics(token: str):
    """Public: the secret in the URL is the credential. Two queries whatever the bookings."""
    household_id = (
        db.session.scalar(select(Household.id).where(Household.calendar_token == token))
        if TOKEN.match(token)
        else None
    )
    if household_id is None:
        return Response(
            "Agenda introuvable : ce lien n'existe pas ou n'est plus valable.\n",
            404,
            content_type="text/plain; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )
    rows = feed_rows(household_id, today_in_paris() - timedelta(days=PAST_DAYS))
    body = build_calendar(rows, commune=commune_settings.current().name, domain=uid_domain())
    return Response(
        body,
        200,
        content_type="text/calendar; charset=utf-8",
        headers={
            "Cache-Control": "no-store",
            "Content-Disposition": 'inline; filename="reservations.ics"',
        },
    )


# --- Settings ---------------------------------------------------------------------------------


class SummaryMailForm(FlaskForm):
    booking_summary_mail = BooleanField(
        "Recevoir un e-mail récapitulatif après chaque modification de mes réservations"
    )


def feed_url(token: str) -> str:
    """The absolute address of the feed (PUBLIC_URL behind a proxy, else this host)."""
    return absolute_url("calendar_feed.ics", token=token)


def webcal_url(url: str) -> str:
    """The same address with the scheme calendar apps open directly (iPhone, macOS)."""
    return re.sub(r"^https?://", "webcal://", url)


def _household() -> Household:
    return db.session.get(Household, current_user.household_id)


@bp.get("/reservations/parametres")
@parent_required
def settings():
    household = _household()
    url = feed_url(household.calendar_token) if household.calendar_token else None
    return render(
        "reservations/settings.html",
        household=household,
        feed=url,
        webcal=webcal_url(url) if url else None,
        summary_form=SummaryMailForm(booking_summary_mail=household.booking_summary_mail),
    )


@bp.post("/reservations/parametres/agenda")
@parent_required
def new_link():
    """Create the feed's address, or replace it: the old one stops working at once."""
    household = _household()
    replaced = household.calendar_token is not None
    household.calendar_token = new_token()
    audit.record(
        "calendar_feed.regenerated" if replaced else "calendar_feed.created",
        actor=current_user,
        target=f"household:{household.id}",
    )
    db.session.commit()
    flash(
        "Nouveau lien créé : l'ancien ne fonctionne plus. Mettez à jour l'abonnement "
        "de votre agenda."
        if replaced
        else "Lien d'agenda créé. Ajoutez-le à l'agenda de votre téléphone.",
        "success",
    )
    return redirect(url_for("calendar_feed.settings"), 303)


@bp.post("/reservations/parametres/agenda/arret")
@parent_required
def stop_sharing():
    household = _household()
    if household.calendar_token is not None:
        household.calendar_token = None
        audit.record(
            "calendar_feed.stopped", actor=current_user, target=f"household:{household.id}"
        )
        db.session.commit()
    flash("Partage arrêté : le lien d'agenda ne fonctionne plus.", "success")
    return redirect(url_for("calendar_feed.settings"), 303)


@bp.post("/reservations/parametres/resume")
@parent_required
def summary_mail():
    household = _household()
    form = SummaryMailForm()
    if not form.validate():  # only the CSRF token can fail, and CSRFProtect checks it first
        return redirect(url_for("calendar_feed.settings"), 303)
    wanted = bool(form.booking_summary_mail.data)
    if household.booking_summary_mail != wanted:
        household.booking_summary_mail = wanted
        audit.record(
            "booking_summary_mail.changed",
            actor=current_user,
            target=f"household:{household.id}",
            details="on" if wanted else "off",
        )
        db.session.commit()
    flash(
        "Vous recevrez un e-mail récapitulatif après chaque modification de vos réservations."
        if wanted
        else "Vous ne recevrez plus d'e-mail récapitulatif de vos réservations.",
        "success",
    )
    return redirect(url_for("calendar_feed.settings"), 303)
