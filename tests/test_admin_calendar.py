"""The back-office calendar (issue 5): holidays, their import, the calculation of opening
days, closures that cancel bookings and tell families, and `flask calendar …`.

School year 2030-2031 of tests/reservations_factories.py: Tuesday 12, Wednesday 13,
Thursday 14 and Friday 15 November 2030 are school days of the offer (Mon, Tue, Thu, Fri).
"""

from __future__ import annotations

import html
from datetime import date
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.reservations import operations
from citoyens.reservations.models import ActivityDay, Booking, BookingChange, Closure, Holiday
from citoyens.services.models import SchoolYear, Service
from tests.conftest import post
from tests.factories import make_user
from tests.requests_factories import assign_staff
from tests.reservations_factories import (
    EARLY,
    children_of,
    day_ids,
    day_row,
    enrol_accepted,
    make_bookable_offer,
    set_capacity,
)

TUE = date(2030, 11, 12)
THU = date(2030, 11, 14)
FRI = date(2030, 11, 15)
MAY_DAY = date(2031, 5, 1)  # a Thursday; a public holiday the factory does not know


# --- Helpers ---------------------------------------------------------------------------------


def logged_in(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303, "test account could not log in"
    return client


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def day_id(app, activity_id: int, day: date) -> int | None:
    found = [row_id for row_id, row_day in day_ids(app, activity_id, day, day)]
    return found[0] if found else None


def book(app, household_id: int, child_id: int, ids: list[int], *, waiting: bool = False):
    with app.app_context():
        outcome = operations.book_days(
            household_id, child_id, ids, actor=None, waiting_list=waiting, now=EARLY
        )
        db.session.commit()
        return outcome


def booking(app, child_id: int, activity_day_id: int) -> Booking:
    with app.app_context():
        row = db.session.scalar(
            select(Booking).where(
                Booking.child_id == child_id, Booking.activity_day_id == activity_day_id
            )
        )
        db.session.expunge(row)
        return row


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def family(app, offer):
    """A parent account with one child enrolled in every activity of the offer."""
    account = make_user(app, role="parent", children=1)
    child_id = children_of(app, account.household_id)[0]
    enrol_accepted(app, account.household_id, child_id, offer)
    return account, child_id


@pytest.fixture
def admin_client(app, admin):
    return logged_in(app, admin)


@pytest.fixture
def offer(app):
    return make_bookable_offer(app)


@pytest.fixture
def agent(app, offer):
    """An agent of the offer's service."""
    account = make_user(app, role="staff")
    assign_staff(app, account.id, offer.service_id)
    return account


def holiday_data(**overrides) -> dict:
    data = {"kind": "public", "name": "Pont du 11 novembre", "starts_on": "2030-11-12"}
    data.update(overrides)
    return data


# --- Access ----------------------------------------------------------------------------------


def test_anonymous_goes_to_login_and_parent_gets_403(app, client, parent):
    for path in ("/admin/calendrier", "/admin/calendrier/fermetures"):
        response = client.get(path)
        assert response.status_code == 302
        assert urlsplit(response.headers["Location"]).path == "/connexion"
    parent_client = logged_in(app, parent)
    for path in ("/admin/calendrier", "/admin/calendrier/fermetures"):
        assert parent_client.get(path).status_code == 403


# --- The calendar page -----------------------------------------------------------------------


def test_page_lists_the_years_holidays_and_opening_days(app, admin_client, offer):
    response = admin_client.get(f"/admin/calendrier?annee={offer.year_id}")
    assert response.status_code == 200
    page = text_of(response)
    assert "Calendrier 2030-2031" in page
    assert "Vacances de la Toussaint" in page and "du 19/10/2030 au 03/11/2030" in page
    assert "Armistice" in page and "le 11/11/2030" in page
    assert "modifié" in page  # rows the factory made, as staff would
    with app.app_context():
        opened = db.session.scalar(
            select(func.count())
            .select_from(ActivityDay)
            .where(ActivityDay.activity_id == offer.activity_ids[0])
        )
    assert opened > 100
    assert f"<td>{opened}</td>" in page
    assert "ne correspondent plus" not in page  # the factory generated the days
    assert "Calculer les jours d'ouverture" in page
    assert "Importer les vacances et jours fériés" in page
    # Default: the current school year or the next one set up.
    assert "Calendrier 2030-2031" in text_of(admin_client.get("/admin/calendrier"))


def test_unknown_year_is_404(admin_client, offer):
    assert admin_client.get("/admin/calendrier?annee=999999").status_code == 404
    assert admin_client.get(f"/admin/calendrier?annee={2**40}").status_code == 404


def test_page_without_any_school_year(app, admin_client):
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SchoolYear)) == 0
    response = admin_client.get("/admin/calendrier")
    assert response.status_code == 200
    assert "Aucune année scolaire" in text_of(response)


def test_agent_sees_the_calendar_read_only(app, agent, offer):
    client = logged_in(app, agent)
    page = text_of(client.get(f"/admin/calendrier?annee={offer.year_id}"))
    assert "Vacances de la Toussaint" in page
    assert "Calculer les jours d'ouverture" not in page
    assert "Ajouter un jour férié" not in page
    assert "Supprimer" not in page
    with app.app_context():
        holiday_id = db.session.scalar(select(Holiday.id).where(Holiday.name == "Armistice"))
    before = count(app, Holiday)
    assert post(client, "/admin/calendrier/vacances", holiday_data()).status_code == 403
    assert post(client, f"/admin/calendrier/vacances/{holiday_id}/supprimer").status_code == 403
    assert client.get(f"/admin/calendrier/vacances/{holiday_id}").status_code == 403
    assert post(client, f"/admin/calendrier/{offer.year_id}/import").status_code == 403
    assert post(client, f"/admin/calendrier/{offer.year_id}/calcul").status_code == 403
    assert count(app, Holiday) == before


# --- Holidays --------------------------------------------------------------------------------


def test_admin_adds_a_holiday_then_recalculates(app, admin, admin_client, offer):
    first, second = offer.activity_ids
    assert day_id(app, first, TUE) is not None
    response = post(
        admin_client, f"/admin/calendrier/vacances?annee={offer.year_id}", holiday_data()
    )
    assert response.status_code == 303
    with app.app_context():
        holiday = db.session.scalar(select(Holiday).where(Holiday.name == "Pont du 11 novembre"))
        assert (holiday.kind, holiday.starts_on, holiday.ends_on) == ("public", TUE, TUE)
        assert holiday.source == "staff"
        assert db.session.scalar(
            select(AuditEvent).where(
                AuditEvent.action == "holiday.created", AuditEvent.actor_id == admin.id
            )
        )
    # Not recalculated at once: the page says the days no longer match.
    page = text_of(admin_client.get(response.headers["Location"]))
    assert "Les jours d'ouverture ne sont pas recalculés" in page
    assert "ne correspondent plus au calendrier" in page
    assert "0 jour(s) à ouvrir, 2 à retirer" in page
    assert day_id(app, first, TUE) is not None

    response = post(admin_client, f"/admin/calendrier/{offer.year_id}/calcul")
    assert response.status_code == 303
    page = text_of(admin_client.get(response.headers["Location"]))
    assert "2030-2031 calculés : 0 jour(s) d'ouverture créé(s), 2 supprimé(s)" in page
    assert "ne correspondent plus" not in page
    assert day_id(app, first, TUE) is None and day_id(app, second, TUE) is None
    assert day_id(app, first, THU) is not None


def test_holiday_on_a_booked_day_closes_it_and_cancels_the_booking(
    app, admin_client, offer, outbox
):
    account, child_id = family(app, offer)
    first = offer.activity_ids[0]
    tuesday = day_id(app, first, TUE)
    book(app, account.household_id, child_id, [tuesday])
    post(admin_client, f"/admin/calendrier/vacances?annee={offer.year_id}", holiday_data())
    response = post(admin_client, f"/admin/calendrier/{offer.year_id}/calcul")
    page = text_of(admin_client.get(response.headers["Location"]))
    assert "1 supprimé(s), 1 fermé(s)" in page
    assert "1 réservation(s) annulée(s), 1 famille(s) prévenue(s)" in page
    assert day_row(app, tuesday) == (30, 0, True)
    cancelled = booking(app, child_id, tuesday)
    assert (cancelled.status, cancelled.late) == ("cancelled", False)
    assert [message.recipients for message in outbox] == [[account.email]]
    assert "10/11" not in outbox[0].body
    assert "mardi 12 novembre 2030" in outbox[0].body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            holiday_data(starts_on="2030-11-14", ends_on="2030-11-12"),
            "Le dernier jour ne peut pas précéder le premier jour.",
        ),
        (holiday_data(starts_on="14/13/2030"), "Saisissez une date valide"),
        (holiday_data(starts_on=""), "Le premier jour est obligatoire."),
        (holiday_data(name=" "), "Le nom est obligatoire."),
        (holiday_data(name="x" * 121), "Le nom ne peut pas dépasser 120 caractères."),
        (holiday_data(kind="other"), "Choisissez « Jour férié » ou « Vacances scolaires »."),
        (
            holiday_data(starts_on="2030-09-01", ends_on="2031-09-30"),
            "La période ne peut pas dépasser un an.",
        ),
        (holiday_data(starts_on="2030-11-11"), "Un jour férié commence déjà à cette date."),
    ],
)
def test_a_wrong_holiday_is_refused_and_saves_nothing(app, admin_client, offer, data, message):
    before = count(app, Holiday)
    response = post(admin_client, f"/admin/calendrier/vacances?annee={offer.year_id}", data)
    assert response.status_code == 422
    page = text_of(response)
    assert message in page
    assert 'aria-invalid="true"' in page or 'aria-describedby="kind-erreur"' in page
    assert count(app, Holiday) == before


def test_admin_edits_and_deletes_a_holiday(app, admin_client, offer):
    with app.app_context():
        holiday_id = db.session.scalar(select(Holiday.id).where(Holiday.name == "Armistice"))
        db.session.get(Holiday, holiday_id).source = "library"
        db.session.commit()
    page = text_of(admin_client.get(f"/admin/calendrier?annee={offer.year_id}"))
    assert "bibliothèque" in page
    assert admin_client.get(f"/admin/calendrier/vacances/{holiday_id}").status_code == 200
    data = holiday_data(name="Armistice et pont", starts_on="2030-11-11", ends_on="2030-11-12")
    response = post(admin_client, f"/admin/calendrier/vacances/{holiday_id}", data)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/calendrier?annee={offer.year_id}")
    with app.app_context():
        holiday = db.session.get(Holiday, holiday_id)
        assert (holiday.name, holiday.ends_on, holiday.source) == (
            "Armistice et pont",
            TUE,
            "staff",
        )
    bad = post(
        admin_client,
        f"/admin/calendrier/vacances/{holiday_id}",
        holiday_data(starts_on="2030-11-12", ends_on="2030-11-11"),
    )
    assert bad.status_code == 422
    response = post(admin_client, f"/admin/calendrier/vacances/{holiday_id}/supprimer")
    assert response.status_code == 303
    assert count(app, Holiday, Holiday.id == holiday_id) == 0
    assert count(app, AuditEvent, AuditEvent.action.like("holiday.%")) == 2
    assert post(admin_client, f"/admin/calendrier/vacances/{holiday_id}/supprimer").status_code == (
        404
    )


def test_import_then_generation_from_the_admin_page(app, admin_client):
    offer = make_bookable_offer(app, generate=False)
    first = offer.activity_ids[0]
    assert day_ids(app, first) == []
    # Generation before the import: only the factory's holidays are known.
    response = post(admin_client, f"/admin/calendrier/{offer.year_id}/calcul")
    assert response.status_code == 303
    page = text_of(admin_client.get(response.headers["Location"]))
    created = len(day_ids(app, first))
    assert created > 100
    assert f"{created * 2} jour(s) d'ouverture créé(s)" in page
    assert day_id(app, first, MAY_DAY) is not None  # Fête du Travail, not yet known

    response = post(admin_client, f"/admin/calendrier/{offer.year_id}/import")
    assert response.status_code == 303
    page = text_of(admin_client.get(response.headers["Location"]))
    with app.app_context():
        imported = db.session.scalars(select(Holiday).where(Holiday.source == "library")).all()
        names = {holiday.name for holiday in imported}
    assert {"Toussaint", "Fête du Travail", "Ascension"} <= names
    assert f"2030-2031 : {len(imported)} jour(s) férié(s)" in page
    # The library has no zone B holidays this far ahead: the page says so.
    assert "ne sont pas encore publiées" not in page  # the factory's periods are there
    assert "ne correspondent plus au calendrier" in page

    response = post(admin_client, f"/admin/calendrier/{offer.year_id}/calcul")
    page = text_of(admin_client.get(response.headers["Location"]))
    assert day_id(app, first, MAY_DAY) is None
    assert len(day_ids(app, first)) < created
    removed = (created - len(day_ids(app, first))) * 2
    assert f"0 jour(s) d'ouverture créé(s), {removed} supprimé(s)" in page
    # Importing again adds nothing.
    response = post(admin_client, f"/admin/calendrier/{offer.year_id}/import")
    assert "rien à ajouter" in text_of(admin_client.get(response.headers["Location"]))


def test_import_warns_when_the_year_has_no_school_holidays(app, admin_client):
    with app.app_context():
        year = SchoolYear(name="2040-2041", starts_on=date(2040, 9, 1), ends_on=date(2041, 8, 31))
        db.session.add(year)
        db.session.commit()
        year_id = year.id
    response = post(admin_client, f"/admin/calendrier/{year_id}/import")
    page = text_of(admin_client.get(response.headers["Location"]))
    assert "ne sont pas encore publiées dans la bibliothèque" in page
    assert "Armistice" in page


# --- Closures --------------------------------------------------------------------------------


def closure_data(offer, **overrides) -> dict:
    data = {
        "service_id": str(offer.service_id),
        "activity_id": "",
        "starts_on": "2030-11-12",
        "ends_on": "2030-11-15",
        "reason": "Grève",
    }
    data.update(overrides)
    return data


def test_closure_cancels_bookings_frees_places_and_mails_families(app, agent, offer, outbox):
    first, second = offer.activity_ids
    one, child_one = family(app, offer)
    two, child_two = family(app, offer)
    tuesday, thursday = day_id(app, first, TUE), day_id(app, first, THU)
    later = day_id(app, first, date(2030, 11, 19))
    book(app, one.household_id, child_one, [tuesday, thursday, later])
    set_capacity(app, thursday, 1)
    book(app, two.household_id, child_two, [tuesday])
    book(app, two.household_id, child_two, [thursday], waiting=True)
    assert booking(app, child_two, thursday).status == "waiting"
    assert day_row(app, tuesday) == (30, 2, False)

    client = logged_in(app, agent)
    response = post(client, "/admin/calendrier/fermetures", closure_data(offer))
    assert response.status_code == 303
    page = text_of(client.get(response.headers["Location"]))
    assert "Fermeture enregistrée" in page
    assert "4 réservation(s) annulée(s), 2 famille(s) prévenue(s)" in page
    assert "Grève" in page and "du 12/11/2030 au 15/11/2030" in page

    # Booked days close (and keep their rows); empty days disappear.
    assert day_row(app, tuesday) == (30, 0, True)
    assert day_row(app, thursday) == (1, 0, True)
    assert day_id(app, first, FRI) is None
    assert day_id(app, second, TUE) is None
    with app.app_context():
        assert db.session.get(ActivityDay, tuesday).closed_reason == "Grève"
    for child_id, day in ((child_one, tuesday), (child_one, thursday), (child_two, tuesday)):
        row = booking(app, child_id, day)
        assert (row.status, row.late) == ("cancelled", False)
    assert booking(app, child_two, thursday).status == "cancelled"  # was waiting
    assert booking(app, child_one, later).status == "booked"
    assert day_row(app, later)[1] == 1
    with app.app_context():
        notes = db.session.execute(
            select(BookingChange.from_state, BookingChange.to_state, BookingChange.note)
            .join(Booking, Booking.id == BookingChange.booking_id)
            .where(BookingChange.note.like("Fermeture%"))
            .order_by(BookingChange.id)
        ).all()
        assert sorted(notes) == sorted(
            [
                ("booked", "cancelled", "Fermeture : Grève"),
                ("booked", "cancelled", "Fermeture : Grève"),
                ("booked", "cancelled", "Fermeture : Grève"),
                ("waiting", "cancelled", "Fermeture : Grève"),
            ]
        )
        closure = db.session.scalar(select(Closure))
        assert closure.created_by_id == agent.id
        assert db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "closure.created")
        ).target == (f"closure:{closure.id}")

    # One e-mail per family, with only its own lines.
    by_recipient = {message.recipients[0]: message for message in outbox}
    assert set(by_recipient) == {one.email, two.email}
    body_one, body_two = by_recipient[one.email].body, by_recipient[two.email].body
    assert "mardi 12 novembre 2030" in body_one and "jeudi 14 novembre 2030" in body_one
    assert "19 novembre" not in body_one
    assert "mardi 12 novembre 2030" in body_two and "(liste d'attente)" in body_two
    assert "ne vous seront pas facturées" in body_one
    assert "Grève" in by_recipient[one.email].html


def test_closure_of_one_activity_leaves_the_others_open(app, admin_client, offer):
    first, second = offer.activity_ids
    data = closure_data(offer, activity_id=str(second), starts_on="2030-11-14", ends_on="")
    response = post(admin_client, "/admin/calendrier/fermetures", data)
    assert response.status_code == 303
    assert day_id(app, second, THU) is None
    assert day_id(app, first, THU) is not None
    assert day_id(app, second, FRI) is not None  # one day: the last day is the first
    with app.app_context():
        closure = db.session.scalar(select(Closure))
        assert (closure.activity_id, closure.starts_on, closure.ends_on) == (second, THU, THU)


def test_agent_cannot_close_another_service(app, agent, offer):
    other = make_bookable_offer(app, activities=1)
    client = logged_in(app, agent)
    page = text_of(client.get("/admin/calendrier/fermetures"))
    with app.app_context():
        other_name = db.session.get(Service, other.service_id).name
    assert other_name not in page
    attempts = [
        closure_data(offer, service_id=str(other.service_id)),
        closure_data(offer, activity_id=str(other.activity_ids[0])),
        closure_data(other, activity_id=str(other.activity_ids[0])),
    ]
    for data in attempts:
        response = post(client, "/admin/calendrier/fermetures", data)
        assert response.status_code == 422, data
    assert count(app, Closure) == 0
    assert day_id(app, other.activity_ids[0], TUE) is not None

    # The other service's closure: invisible to the agent, and 404 on delete.
    admin_client = logged_in(app, make_user(app, role="admin"))
    post(admin_client, "/admin/calendrier/fermetures", closure_data(other))
    with app.app_context():
        closure_id = db.session.scalar(select(Closure.id))
    page = text_of(client.get("/admin/calendrier/fermetures"))
    assert "Grève" not in page
    response = post(client, f"/admin/calendrier/fermetures/{closure_id}/supprimer")
    assert response.status_code == 404
    assert count(app, Closure) == 1


def test_activity_of_another_service_is_refused_for_an_administrator(app, admin_client, offer):
    other = make_bookable_offer(app, activities=1)
    data = closure_data(offer, activity_id=str(other.activity_ids[0]))
    response = post(admin_client, "/admin/calendrier/fermetures", data)
    assert response.status_code == 422
    assert "Cette activité n'appartient pas au service choisi." in text_of(response)
    assert count(app, Closure) == 0


def test_agent_without_a_service_cannot_add_a_closure(app, offer):
    client = logged_in(app, make_user(app, role="staff"))
    page = text_of(client.get("/admin/calendrier/fermetures"))
    assert "aucun service" in page
    response = post(client, "/admin/calendrier/fermetures", closure_data(offer))
    assert response.status_code == 403
    assert count(app, Closure) == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"starts_on": "2030-11-15", "ends_on": "2030-11-12"},
            "Le dernier jour fermé ne peut pas précéder le premier jour.",
        ),
        (
            {"starts_on": "2041-11-12", "ends_on": ""},
            "Aucune année scolaire ne contient cette date",
        ),
        ({"ends_on": "2031-09-02"}, "Aucune année scolaire ne contient cette date"),
        ({"reason": ""}, "Le motif est obligatoire."),
        ({"reason": "x" * 201}, "Le motif ne peut pas dépasser 200 caractères."),
        ({"reason": "Grève\x00"}, "Le motif contient des caractères non autorisés."),
        ({"starts_on": ""}, "Le premier jour fermé est obligatoire."),
        ({"service_id": "abc"}, "Choisissez un de vos services dans la liste."),
        ({"activity_id": "999999"}, "Choisissez une activité dans la liste."),
    ],
)
def test_a_wrong_closure_is_refused_and_saves_nothing(app, admin_client, offer, overrides, message):
    days_before = len(day_ids(app, offer.activity_ids[0]))
    response = post(admin_client, "/admin/calendrier/fermetures", closure_data(offer, **overrides))
    assert response.status_code == 422
    page = text_of(response)
    assert message in page
    assert 'aria-invalid="true"' in page
    assert count(app, Closure) == 0
    assert len(day_ids(app, offer.activity_ids[0])) == days_before


def test_deleting_a_closure_reopens_its_days(app, agent, offer, outbox):
    first, second = offer.activity_ids
    account, child_id = family(app, offer)
    tuesday = day_id(app, first, TUE)
    book(app, account.household_id, child_id, [tuesday])
    client = logged_in(app, agent)
    post(client, "/admin/calendrier/fermetures", closure_data(offer))
    assert day_row(app, tuesday)[2] is True
    assert day_id(app, second, TUE) is None
    with app.app_context():
        closure_id = db.session.scalar(select(Closure.id))
    sent = len(outbox)

    response = post(client, f"/admin/calendrier/fermetures/{closure_id}/supprimer")
    assert response.status_code == 303
    page = text_of(client.get(response.headers["Location"]))
    assert "Fermeture supprimée" in page and "1 rouvert(s)" in page
    assert count(app, Closure) == 0
    assert day_row(app, tuesday) == (30, 0, False)
    with app.app_context():
        assert db.session.get(ActivityDay, tuesday).closed_reason is None
    assert day_id(app, second, TUE) is not None  # removed days come back
    assert day_id(app, first, FRI) is not None
    assert booking(app, child_id, tuesday).status == "cancelled"  # not booked again
    assert len(outbox) == sent
    assert count(app, AuditEvent, AuditEvent.action == "closure.deleted") == 1
    # The reopened day can be booked again.
    assert book(app, account.household_id, child_id, [tuesday]).booked == [tuesday]


# --- Command line ----------------------------------------------------------------------------


def test_cli_seeds_holidays_and_generates_days(app, runner):
    offer = make_bookable_offer(app, generate=False)
    first = offer.activity_ids[0]
    result = runner.invoke(args=["calendar", "seed-holidays", "--year", "2030-2031"])
    assert result.exit_code == 0, result.output
    assert "2030-2031 :" in result.output and "ajouté(s)" in result.output
    with app.app_context():
        assert db.session.scalar(select(Holiday.id).where(Holiday.name == "Toussaint"))
    result = runner.invoke(args=["calendar", "generate", "--year", "2030-2031"])
    assert result.exit_code == 0, result.output
    created = len(day_ids(app, first))
    assert created > 100
    assert f"2030-2031 : {created * 2} jour(s) d'ouverture créé(s), 0 supprimé(s)" in (
        result.output
    )
    assert day_id(app, first, MAY_DAY) is None
    # Again, every year: nothing changes.
    result = runner.invoke(args=["calendar", "generate"])
    assert result.exit_code == 0, result.output
    assert "2030-2031 : 0 jour(s) d'ouverture créé(s), 0 supprimé(s)" in result.output
    result = runner.invoke(args=["calendar", "seed-holidays"])
    assert "2030-2031 : 0 jour(s) férié(s)" in result.output


@pytest.mark.parametrize("public_url", ["", "https://familles.example.org"])
def test_cli_generation_cancels_bookings_of_closed_days(
    app, runner, offer, outbox, monkeypatch, public_url
):
    monkeypatch.setitem(app.config, "PUBLIC_URL", public_url)
    account, child_id = family(app, offer)
    tuesday = day_id(app, offer.activity_ids[0], TUE)
    book(app, account.household_id, child_id, [tuesday])
    with app.app_context():
        db.session.add(Holiday(kind="public", name="Pont", starts_on=TUE, ends_on=TUE))
        db.session.commit()
    result = runner.invoke(args=["calendar", "generate", "--year", "2030-2031"])
    assert result.exit_code == 0, result.output
    assert "1 réservation(s) annulée(s), 1 famille(s) prévenue(s)" in result.output
    assert booking(app, child_id, tuesday).status == "cancelled"
    assert [message.recipients for message in outbox] == [[account.email]]
    body = outbox[0].body
    assert "mardi 12 novembre 2030 (motif : Jour de fermeture)" in body
    # The command line knows the site's address only from the configuration.
    if public_url:
        assert "Voir vos réservations : https://familles.example.org/reservations/" in body
    else:
        assert "localhost" not in body and "Voir vos réservations" not in body


def test_cli_unknown_year_is_a_clear_error(app, runner, offer):
    for command in ("seed-holidays", "generate"):
        result = runner.invoke(args=["calendar", command, "--year", "2099-2100"])
        assert result.exit_code != 0
        assert "Année scolaire inconnue : « 2099-2100 »" in result.output
        assert "2030-2031" in result.output


def test_cli_without_any_school_year(app, runner):
    result = runner.invoke(args=["calendar", "generate"])
    assert result.exit_code != 0
    assert "Aucune année scolaire" in result.output


# --- Random input ----------------------------------------------------------------------------

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
fuzz_text = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(min_size=1, max_size=3).map(lambda s: s * 300),
    st.sampled_from(["\x00", "2030-11-12", "12/11/2030", "0001-01-01", "9999-12-31", "-1"]),
    st.integers().map(str),
)


@FUZZ
@given(kind=fuzz_text, name=fuzz_text, starts_on=fuzz_text, ends_on=fuzz_text)
def test_random_holiday_forms_never_fail(app, admin_client, kind, name, starts_on, ends_on):
    data = {"kind": kind, "name": name, "starts_on": starts_on, "ends_on": ends_on}
    response = post(admin_client, "/admin/calendrier/vacances", data)
    assert response.status_code in (303, 422)


@FUZZ
@given(
    service_id=fuzz_text,
    activity_id=fuzz_text,
    starts_on=fuzz_text,
    ends_on=fuzz_text,
    reason=fuzz_text,
)
def test_random_closure_forms_never_fail(
    app, admin_client, offer, service_id, activity_id, starts_on, ends_on, reason
):
    data = {
        "service_id": service_id,
        "activity_id": activity_id,
        "starts_on": starts_on,
        "ends_on": ends_on,
        "reason": reason,
    }
    response = post(admin_client, "/admin/calendrier/fermetures", data)
    assert response.status_code in (303, 422)
