"""The household's iCalendar feed of booked days, and the reservation settings page that
creates, regenerates and stops its secret link and sets the summary e-mail (issue 5)."""

from __future__ import annotations

import html
from datetime import date, datetime, time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar
from sqlalchemy import select

from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.households.models import Household
from citoyens.reservations import feed as feed_module
from citoyens.reservations import operations
from citoyens.reservations.models import Booking
from tests.conftest import counted_queries, post
from tests.factories import make_user
from tests.reservations_factories import (
    EARLY,
    children_of,
    day_ids,
    enrol_accepted,
    make_bookable_offer,
    set_capacity,
)

PARIS = ZoneInfo("Europe/Paris")
NOVEMBER = (date(2030, 11, 1), date(2030, 11, 30))
# "Today" for the feed: 60 days before it is 10 November 2030.
TODAY = date(2031, 1, 9)


# --- Helpers ---------------------------------------------------------------------------------


def logged_in(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303, "test account could not log in"
    return client


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def set_token(app, household_id: int, token: str | None) -> None:
    with app.app_context():
        db.session.get(Household, household_id).calendar_token = token
        db.session.commit()


def token_of(app, household_id: int) -> str | None:
    with app.app_context():
        return db.session.get(Household, household_id).calendar_token


def book(app, household_id, child_id, ids, *, waiting=False):
    with app.app_context():
        operations.book_days(
            household_id, child_id, ids, actor=None, waiting_list=waiting, now=EARLY
        )
        db.session.commit()


def cancel(app, household_id, child_id, ids):
    with app.app_context():
        operations.cancel_days(household_id, child_id, ids, actor=None, now=EARLY)
        db.session.commit()


def events(response) -> dict[str, object]:
    """UID → VEVENT of a feed response."""
    calendar = Calendar.from_ical(response.get_data())
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


@pytest.fixture(autouse=True)
def fixed_today(monkeypatch):
    monkeypatch.setattr(feed_module, "today_in_paris", lambda: TODAY)


@pytest.fixture
def offer(app):
    return make_bookable_offer(app)


@pytest.fixture
def family(app, parent, offer):
    """The parent's household, its first child enrolled in both activities, a token."""
    child_id = children_of(app, parent.household_id)[0]
    enrol_accepted(app, parent.household_id, child_id, offer)
    token = "a" * 43
    set_token(app, parent.household_id, token)
    return parent.household_id, child_id, token


# --- The feed --------------------------------------------------------------------------------


def test_feed_lists_the_booked_days_as_events(app, client, offer, family):
    household_id, child_id, token = family
    first, second = offer.activity_ids
    days = day_ids(app, first, *NOVEMBER)
    (old, _), (kept, kept_day), (other, _) = days[0], days[6], days[7]
    assert days[0][1] < date(2030, 11, 10) <= kept_day
    book(app, household_id, child_id, [old, kept, other])
    cancel(app, household_id, child_id, [other])
    set_capacity(app, day_ids(app, second, *NOVEMBER)[6][0], 0)
    book(app, household_id, child_id, [day_ids(app, second, *NOVEMBER)[6][0]], waiting=True)

    response = client.get(f"/calendrier/{token}.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    calendar = Calendar.from_ical(response.get_data())
    assert str(calendar["X-WR-CALNAME"]) == "Réservations — Chalonnes-sur-Loire"
    assert str(calendar["VERSION"]) == "2.0"
    found = events(response)
    with app.app_context():
        booking_id = db.session.scalar(
            select(Booking.id).where(
                Booking.child_id == child_id,
                Booking.activity_day_id == kept,
            )
        )
    # Only the booked day after "60 days ago": not the old one, the cancelled one, the waiting.
    assert list(found) == [f"booking-{booking_id}@citoyens"]
    event = found[f"booking-{booking_id}@citoyens"]
    assert event.start == datetime.combine(kept_day, time(7, 30), tzinfo=PARIS)
    assert event.end == datetime.combine(kept_day, time(8, 30), tzinfo=PARIS)
    assert str(event["SUMMARY"]).startswith("Enfant0 — Activité ")
    assert str(event["LOCATION"]).startswith("Service test ")
    assert str(event["DESCRIPTION"]) == str(event["LOCATION"])
    body = response.get_data(as_text=True)
    assert "DTSTART;TZID=Europe/Paris:" in body
    assert "BEGIN:VTIMEZONE" in body and "TZID:Europe/Paris" in body


def test_uids_are_stable_across_fetches(app, client, offer, family):
    household_id, child_id, token = family
    ids = [row_id for row_id, _ in day_ids(app, offer.activity_ids[0], *NOVEMBER)[6:10]]
    book(app, household_id, child_id, ids)
    first = client.get(f"/calendrier/{token}.ics")
    second = client.get(f"/calendrier/{token}.ics")
    assert len(events(first)) == 4
    assert list(events(first)) == list(events(second))
    assert first.get_data() == second.get_data()


def test_uid_names_the_server_when_configured(app, client, offer, family, monkeypatch):
    household_id, child_id, token = family
    book(app, household_id, child_id, [day_ids(app, offer.activity_ids[0], *NOVEMBER)[8][0]])
    monkeypatch.setitem(app.config, "SERVER_NAME", "familles.example.org")
    response = client.get(f"/calendrier/{token}.ics", base_url="http://familles.example.org")
    assert all(uid.endswith("@familles.example.org") for uid in events(response))


def test_another_households_bookings_are_absent(app, client, offer, family):
    household_id, child_id, token = family
    other = make_user(app, role="parent", children=1)
    other_child = children_of(app, other.household_id)[0]
    enrol_accepted(app, other.household_id, other_child, offer)
    day = day_ids(app, offer.activity_ids[0], *NOVEMBER)[8][0]
    book(app, other.household_id, other_child, [day])
    set_token(app, other.household_id, "b" * 43)
    assert events(client.get(f"/calendrier/{token}.ics")) == {}
    assert len(events(client.get(f"/calendrier/{'b' * 43}.ics"))) == 1


def test_unknown_or_malformed_token_is_404_without_cookie(client, family):
    for token in ("c" * 43, "a" * 42, "a" * 44, "x", "a" * 42 + "!"):
        response = client.get(f"/calendrier/{token}.ics")
        assert response.status_code == 404, token
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "Set-Cookie" not in response.headers
        assert response.headers["Cache-Control"] == "no-store"


def test_feed_needs_a_fixed_number_of_queries(app, client, offer, family):
    household_id, child_id, token = family
    with counted_queries(app) as few:
        assert client.get(f"/calendrier/{token}.ics").status_code == 200
    ids = [row_id for row_id, _ in day_ids(app, offer.activity_ids[0], *NOVEMBER)[6:]]
    ids += [row_id for row_id, _ in day_ids(app, offer.activity_ids[1], *NOVEMBER)[6:]]
    book(app, household_id, child_id, ids)
    second_child = children_of(app, household_id)[1]
    enrol_accepted(app, household_id, second_child, offer)
    book(app, household_id, second_child, ids)
    with counted_queries(app) as many:
        response = client.get(f"/calendrier/{token}.ics")
    assert len(events(response)) == 2 * len(ids)
    assert len(many) == len(few) == 3  # with the commune's settings (its name)


def test_the_session_is_no_substitute_for_the_token(app, parent, family):
    """Logged in or not, only the secret in the URL opens the feed."""
    household_id, child_id, token = family
    client = logged_in(app, parent)
    assert client.get(f"/calendrier/{'c' * 43}.ics").status_code == 404
    assert client.get(f"/calendrier/{token}.ics").status_code == 200


# --- Settings --------------------------------------------------------------------------------


def test_settings_create_regenerate_and_stop_the_link(app, parent):
    set_token(app, parent.household_id, None)
    client = logged_in(app, parent)
    page = text_of(client.get("/reservations/parametres"))
    assert "Créer le lien d'agenda" in page
    assert token_of(app, parent.household_id) is None  # a GET creates nothing

    response = post(client, "/reservations/parametres/agenda")
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/reservations/parametres"
    token = token_of(app, parent.household_id)
    assert token and len(token) == 43
    page = text_of(client.get("/reservations/parametres"))
    assert "Lien d'agenda créé" in page
    assert f'value="http://localhost/calendrier/{token}.ics"' in page
    assert f'href="webcal://localhost/calendrier/{token}.ics"' in page
    assert "Régénérer le lien" in page and "Arrêter le partage" in page
    assert client.get(f"/calendrier/{token}.ics").status_code == 200

    response = post(client, "/reservations/parametres/agenda")
    assert response.status_code == 303
    new = token_of(app, parent.household_id)
    assert new and new != token
    anonymous = app.test_client()
    assert anonymous.get(f"/calendrier/{token}.ics").status_code == 404
    assert anonymous.get(f"/calendrier/{new}.ics").status_code == 200
    assert "l'ancien ne fonctionne plus" in text_of(client.get("/reservations/parametres"))

    response = post(client, "/reservations/parametres/agenda/arret")
    assert response.status_code == 303
    assert token_of(app, parent.household_id) is None
    assert anonymous.get(f"/calendrier/{new}.ics").status_code == 404
    assert "Partage arrêté" in text_of(client.get("/reservations/parametres"))

    with app.app_context():
        audit = db.session.execute(
            select(AuditEvent.action, AuditEvent.target, AuditEvent.details, AuditEvent.actor_id)
            .where(AuditEvent.action.like("calendar_feed.%"))
            .order_by(AuditEvent.id)
        ).all()
    assert [row.action for row in audit] == [
        "calendar_feed.created",
        "calendar_feed.regenerated",
        "calendar_feed.stopped",
    ]
    for row in audit:
        assert row.actor_id == parent.id
        assert row.target == f"household:{parent.household_id}"
        assert token not in str(row) and new not in str(row)


def test_settings_use_the_public_url(app, parent, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_URL", "https://familles.example.org")
    set_token(app, parent.household_id, "d" * 43)
    page = text_of(logged_in(app, parent).get("/reservations/parametres"))
    assert f'value="https://familles.example.org/calendrier/{"d" * 43}.ics"' in page
    assert f'href="webcal://familles.example.org/calendrier/{"d" * 43}.ics"' in page


def test_summary_mail_toggle_saves(app, parent):
    client = logged_in(app, parent)
    page = text_of(client.get("/reservations/parametres"))
    assert 'name="booking_summary_mail"' in page and "checked" not in page
    response = post(client, "/reservations/parametres/resume", {"booking_summary_mail": "y"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Household, parent.household_id).booking_summary_mail is True
    page = text_of(client.get("/reservations/parametres"))
    assert "Vous recevrez un e-mail récapitulatif" in page
    assert "checked" in page
    response = post(client, "/reservations/parametres/resume", {})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Household, parent.household_id).booking_summary_mail is False
        details = db.session.scalars(
            select(AuditEvent.details)
            .where(AuditEvent.action == "booking_summary_mail.changed")
            .order_by(AuditEvent.id)
        ).all()
    assert details == ["on", "off"]


def test_settings_need_csrf_and_a_parent(app, client, parent, staff):
    response = client.get("/reservations/parametres")
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/connexion"
    assert logged_in(app, staff).get("/reservations/parametres").status_code == 403
    assert post(logged_in(app, staff), "/reservations/parametres/agenda").status_code == 403
    family_client = logged_in(app, parent)
    response = family_client.post("/reservations/parametres/agenda", data={})
    assert response.status_code == 400
    assert token_of(app, parent.household_id) is None
