"""Services, activities, school years and enrolment windows in the back office (issue 4):
administrators set them up; the demo seeds Chalonnes-sur-Loire's; the rules tell which
school year is current and whether enrolments are open.
"""

from __future__ import annotations

import html
from contextlib import contextmanager
from datetime import date, time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event, func, select

from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.services import rules
from citoyens.services.models import (
    Activity,
    EnrolmentWindow,
    SchoolYear,
    Service,
    ServiceDocument,
)
from tests.conftest import post
from tests.documents_factories import make_type
from tests.factories import make_user
from tests.requests_factories import make_service

TODAY = date(2026, 11, 26)


# --- Helpers ---------------------------------------------------------------------------------


def logged_in(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303, "test account could not log in"
    return client


@pytest.fixture
def admin_client(app, admin):
    return logged_in(app, admin)


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def path_of(response) -> str:
    return urlsplit(response.headers["Location"]).path


def make_year(app, name: str = "2026-2027", starts_on=None, ends_on=None) -> int:
    first = int(name[:4])
    with app.app_context():
        year = SchoolYear(
            name=name,
            starts_on=starts_on or date(first, 9, 1),
            ends_on=ends_on or date(first + 1, 8, 31),
        )
        db.session.add(year)
        db.session.commit()
        return year.id


def make_activity(app, service_id: int, name: str = "Accueil du matin", **fields) -> int:
    values = {
        "weekdays": "1,2,4,5",
        "start_time": time(7, 15),
        "end_time": time(8, 45),
        "capacity": 60,
        "calendar": "term",
    }
    values.update(fields)
    with app.app_context():
        activity = Activity(service_id=service_id, name=name, **values)
        db.session.add(activity)
        db.session.commit()
        return activity.id


def make_window(app, service_id: int, year_id: int, opens_on: date, closes_on: date) -> int:
    with app.app_context():
        window = EnrolmentWindow(
            service_id=service_id, school_year_id=year_id, opens_on=opens_on, closes_on=closes_on
        )
        db.session.add(window)
        db.session.commit()
        return window.id


def fetch(app, model, record_id: int):
    with app.app_context():
        found = db.session.get(model, record_id)
        db.session.expunge_all()
        return found


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def counts(app) -> tuple[int, ...]:
    return tuple(
        count(app, model)
        for model in (Service, ServiceDocument, Activity, SchoolYear, EnrolmentWindow)
    )


def service_by_code(app, code: str) -> Service | None:
    with app.app_context():
        found = db.session.scalar(select(Service).where(Service.code == code))
        db.session.expunge_all()
        return found


def required_type_ids(app, service_id: int) -> set[int]:
    with app.app_context():
        return set(
            db.session.scalars(
                select(ServiceDocument.document_type_id).where(
                    ServiceDocument.service_id == service_id
                )
            )
        )


def audit_actions(app, target: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent.action).where(AuditEvent.target == target).order_by(AuditEvent.id)
            )
        )


@contextmanager
def counted_queries(app):
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def service_form(**overrides) -> dict:
    data = {
        "code": "ludotheque",
        "name": "Ludothèque",
        "category": "jeunesse",
        "description": "Jeux sur place et prêt.",
        "mailbox": "ludotheque@example.org",
        "min_age_months": "36",
        "max_age_months": "144",
        "school_levels": ["CP", "CE1"],
        "active": "y",
    }
    data.update(overrides)
    return data


def activity_form(**overrides) -> dict:
    data = {
        "name": "Accueil du soir",
        "weekdays": ["5", "1", "2", "4"],
        "start_time": "16:30",
        "end_time": "18:45",
        "capacity": "80",
        "cutoff_hours": "72",
        "calendar": "term",
        "unit": "",
    }
    data.update(overrides)
    return data


def year_form(**overrides) -> dict:
    data = {"name": "2028-2029", "starts_on": "", "ends_on": ""}
    data.update(overrides)
    return data


def send(client, method: str, path: str, data: dict):
    return client.get(path) if method == "GET" else post(client, path, data)


def every_route(service_id: int, activity_id: int, year_id: int) -> list[tuple[str, str, dict]]:
    """Every route of this module: (method, path, form data that would be valid)."""
    window = {"school_year_id": str(year_id), "opens_on": "2026-06-01", "closes_on": "2027-06-30"}
    return [
        ("GET", "/admin/services", {}),
        ("GET", "/admin/services/nouveau", {}),
        ("POST", "/admin/services/nouveau", service_form()),
        ("GET", f"/admin/services/{service_id}", {}),
        ("GET", f"/admin/services/{service_id}/modifier", {}),
        ("POST", f"/admin/services/{service_id}/modifier", service_form(name="Renommé")),
        ("POST", f"/admin/services/{service_id}/periodes-inscription", window),
        ("GET", f"/admin/services/{service_id}/activites/nouvelle", {}),
        ("POST", f"/admin/services/{service_id}/activites/nouvelle", activity_form()),
        ("GET", f"/admin/activites/{activity_id}/modifier", {}),
        ("POST", f"/admin/activites/{activity_id}/modifier", activity_form(name="Renommée")),
        ("POST", f"/admin/activites/{activity_id}/activation", {"active": "0"}),
        ("GET", "/admin/annees-scolaires", {}),
        ("GET", "/admin/annees-scolaires/nouvelle", {}),
        ("POST", "/admin/annees-scolaires/nouvelle", year_form()),
        ("GET", f"/admin/annees-scolaires/{year_id}/modifier", {}),
        ("POST", f"/admin/annees-scolaires/{year_id}/modifier", year_form(name="2026-2027")),
    ]


@pytest.fixture
def setup(app):
    """A service with one activity, and a school year: ids."""
    service_id = make_service(app, name="Accueil périscolaire")
    return service_id, make_activity(app, service_id), make_year(app, "2026-2027")


# --- Services --------------------------------------------------------------------------------


def test_admin_creates_a_service_with_its_rules_and_documents(app, admin_client):
    civil = make_type(app, label="Attestation de responsabilité civile")
    vaccines = make_type(app, label="Vaccinations")
    make_type(app, label="Ancien document", active=False)
    page = text_of(admin_client.get("/admin/services/nouveau"))
    assert "Attestation de responsabilité civile" in page and "Ancien document" not in page

    data = service_form(code="  LudoTheque ", document_type_ids=[str(civil), str(vaccines)])
    response = post(admin_client, "/admin/services/nouveau", data)
    assert response.status_code == 303
    created = service_by_code(app, "ludotheque")
    assert path_of(response) == f"/admin/services/{created.id}"
    assert (created.name, created.category, created.mailbox) == (
        "Ludothèque",
        "jeunesse",
        "ludotheque@example.org",
    )
    assert (created.min_age_months, created.max_age_months, created.school_levels) == (
        36,
        144,
        "CP,CE1",
    )
    assert (created.excludes_private_school, created.place_request, created.active) == (
        False,
        False,
        True,
    )
    assert required_type_ids(app, created.id) == {civil, vaccines}
    assert audit_actions(app, f"service:{created.id}") == ["service.created"]

    listing = text_of(admin_client.get("/admin/services"))
    assert "Ludothèque" in listing and "ludotheque@example.org" in listing
    assert "Attestation de responsabilité civile, Vaccinations" in listing
    assert "Jeunesse" in listing


def test_empty_optional_fields_are_stored_as_nothing(app, admin_client):
    data = service_form(
        description="", mailbox="", min_age_months="", max_age_months="", school_levels=[]
    )
    assert post(admin_client, "/admin/services/nouveau", data).status_code == 303
    created = service_by_code(app, "ludotheque")
    assert (
        created.description,
        created.mailbox,
        created.min_age_months,
        created.max_age_months,
        created.school_levels,
    ) == (None, None, None, None, None)


def test_admin_edits_a_service_and_its_required_documents(app, admin_client):
    keep, drop, add = make_type(app), make_type(app), make_type(app)
    service_id = make_service(app, name="Restauration scolaire")
    with app.app_context():
        db.session.add_all(
            [
                ServiceDocument(service_id=service_id, document_type_id=keep),
                ServiceDocument(service_id=service_id, document_type_id=drop),
            ]
        )
        db.session.commit()
    page = text_of(admin_client.get(f"/admin/services/{service_id}/modifier"))
    assert 'value="Restauration scolaire"' in page

    data = service_form(
        code="pirate",
        name="Restauration scolaire",
        category="enfance",
        school_levels=["PS", "CM2", "GS"],
        excludes_private_school="y",
        document_type_ids=[str(keep), str(add)],
        min_age_months="",
        max_age_months="",
    )
    response = post(admin_client, f"/admin/services/{service_id}/modifier", data)
    assert response.status_code == 303
    assert path_of(response) == f"/admin/services/{service_id}"
    edited = fetch(app, Service, service_id)
    # Levels in school order; the code never changes after creation.
    assert (edited.school_levels, edited.excludes_private_school) == ("PS,GS,CM2", True)
    assert edited.code == f"service-{edited.code.split('-')[1]}" and edited.code != "pirate"
    assert required_type_ids(app, service_id) == {keep, add}
    assert audit_actions(app, f"service:{service_id}") == ["service.updated"]


def test_saving_an_unchanged_service_logs_nothing(app, admin_client):
    service_id = make_service(app, name="Goulidons", mailbox="goulidons@example.org")
    data = {
        "name": "Goulidons",
        "category": "enfance",
        "mailbox": "goulidons@example.org",
        "active": "y",
    }
    assert post(admin_client, f"/admin/services/{service_id}/modifier", data).status_code == 303
    assert audit_actions(app, f"service:{service_id}") == []


def test_a_deactivated_document_type_stays_required_until_unticked(app, admin_client):
    old = make_type(app, label="Ancienne attestation", active=False)
    service_id = make_service(app)
    with app.app_context():
        db.session.add(ServiceDocument(service_id=service_id, document_type_id=old))
        db.session.commit()
    page = admin_client.get(f"/admin/services/{service_id}/modifier").get_data(as_text=True)
    assert f'value="{old}"' in page and "checked" in page
    data = service_form(name="Service", document_type_ids=[str(old)])
    assert post(admin_client, f"/admin/services/{service_id}/modifier", data).status_code == 303
    assert required_type_ids(app, service_id) == {old}


def test_admin_deactivates_a_service(app, admin_client):
    service_id = make_service(app, name="Ancien service")
    data = service_form(name="Ancien service")
    del data["active"]
    assert post(admin_client, f"/admin/services/{service_id}/modifier", data).status_code == 303
    assert fetch(app, Service, service_id).active is False
    assert "Désactivé" in text_of(admin_client.get("/admin/services"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "Le nom est obligatoire."),
        ({"name": "x" * 10_000}, "Le nom ne peut pas dépasser 120 caractères."),
        ({"name": "Ludo\x00"}, "Le nom contient des caractères non autorisés."),
        ({"code": ""}, "Le code est obligatoire."),
        ({"code": "c" * 10_000}, "Le code ne peut pas dépasser 30 caractères."),
        ({"code": "ludo thèque"}, "Le code ne contient que des lettres minuscules"),
        ({"category": "adultes"}, "Choisissez une des catégories proposées."),
        ({"description": "d" * 10_000}, "La description ne peut pas dépasser 2000 caractères."),
        ({"mailbox": "pas-une-adresse"}, "Saisissez une adresse e-mail valide"),
        ({"mailbox": "a" * 10_000 + "@example.org"}, "ne peut pas dépasser 254 caractères"),
        ({"min_age_months": "-1"}, "L'âge minimum doit être entre 0 et 240."),
        ({"max_age_months": "9999"}, "L'âge maximum doit être entre 0 et 240."),
        ({"min_age_months": "deux ans"}, "Saisissez un nombre entier, par exemple 12."),
        (
            {"min_age_months": "48", "max_age_months": "12"},
            "L'âge maximum ne peut pas être inférieur à l'âge minimum.",
        ),
        ({"school_levels": ["CP", "6e"]}, "Choisissez des niveaux scolaires de la liste."),
        ({"document_type_ids": ["999999"]}, "Choisissez des documents de la liste."),
        ({"document_type_ids": ["abc"]}, "Choisissez des documents de la liste."),
    ],
)
def test_bad_service_forms_save_nothing(app, admin_client, overrides, message):
    before = counts(app)
    response = post(admin_client, "/admin/services/nouveau", service_form(**overrides))
    assert response.status_code == 422
    assert message in text_of(response)
    assert counts(app) == before


@pytest.mark.parametrize("code", ["aps", "APS", " Aps "])
def test_service_code_is_unique(app, admin_client, code):
    with app.app_context():
        db.session.add(Service(code="aps", name="APS", category="enfance"))
        db.session.commit()
    before = counts(app)
    response = post(admin_client, "/admin/services/nouveau", service_form(code=code))
    assert response.status_code == 422
    assert "Ce code est déjà utilisé par un autre service." in text_of(response)
    assert counts(app) == before


def test_a_bad_edit_changes_nothing(app, admin_client):
    service_id = make_service(app, name="Multi-accueil")
    data = service_form(name="", min_age_months="50", max_age_months="2")
    response = post(admin_client, f"/admin/services/{service_id}/modifier", data)
    assert response.status_code == 422
    page = text_of(response)
    assert "Le nom est obligatoire." in page and "inférieur à l'âge minimum" in page
    unchanged = fetch(app, Service, service_id)
    assert (unchanged.name, unchanged.min_age_months) == ("Multi-accueil", None)
    assert audit_actions(app, f"service:{service_id}") == []


def test_service_list_takes_a_constant_number_of_queries(app, admin_client):
    doc = make_type(app)
    first = make_service(app)
    make_activity(app, first)
    admin_client.get("/admin/services")
    with counted_queries(app) as one:
        admin_client.get("/admin/services")
    for _ in range(4):
        other = make_service(app)
        make_activity(app, other)
        make_activity(app, other, "Soir", active=False)
        with app.app_context():
            db.session.add(ServiceDocument(service_id=other, document_type_id=doc))
            db.session.commit()
    with counted_queries(app) as five:
        page = text_of(admin_client.get("/admin/services"))
    assert len(one) == len(five)
    assert "(+ 1 désactivée)" in page


def test_service_page_takes_a_constant_number_of_queries(app, admin_client):
    service_id = make_service(app)
    make_activity(app, service_id)
    make_year(app, "2026-2027")
    admin_client.get(f"/admin/services/{service_id}")
    with counted_queries(app) as one:
        admin_client.get(f"/admin/services/{service_id}")
    for n in range(4):
        make_activity(app, service_id, f"Activité {n}")
        year = make_year(app, f"{2030 + n}-{2031 + n}")
        make_window(app, service_id, year, date(2030 + n, 5, 1), date(2030 + n, 6, 30))
        with app.app_context():
            db.session.add(ServiceDocument(service_id=service_id, document_type_id=make_type(app)))
            db.session.commit()
    with counted_queries(app) as five:
        admin_client.get(f"/admin/services/{service_id}")
    assert len(one) == len(five)


# --- Activities ------------------------------------------------------------------------------


def test_admin_adds_an_activity_to_a_service(app, admin_client):
    service_id = make_service(app, name="APS")
    page = admin_client.get(f"/admin/services/{service_id}/activites/nouvelle")
    assert page.status_code == 200
    assert 'value="72"' in page.get_data(as_text=True)  # the default cut-off

    response = post(
        admin_client, f"/admin/services/{service_id}/activites/nouvelle", activity_form()
    )
    assert response.status_code == 303
    assert path_of(response) == f"/admin/services/{service_id}"
    with app.app_context():
        activity = db.session.scalar(select(Activity).where(Activity.service_id == service_id))
        assert (activity.name, activity.weekdays, activity.start_time, activity.end_time) == (
            "Accueil du soir",
            "1,2,4,5",
            time(16, 30),
            time(18, 45),
        )
        assert (activity.capacity, activity.cutoff_hours, activity.calendar, activity.unit) == (
            80,
            72,
            "term",
            None,
        )
        assert activity.active is True
        activity_id = activity.id
    assert audit_actions(app, f"activity:{activity_id}") == ["activity.created"]
    page = text_of(admin_client.get(f"/admin/services/{service_id}"))
    assert "Accueil du soir" in page and "Lundi, Mardi, Jeudi, Vendredi" in page
    assert "16:30–18:45" in page


def test_admin_edits_an_activity(app, admin_client):
    service_id = make_service(app, name="Goulidons")
    activity_id = make_activity(app, service_id, "Mercredi")
    page = text_of(admin_client.get(f"/admin/activites/{activity_id}/modifier"))
    assert 'value="Mercredi"' in page and 'value="07:15"' in page
    data = activity_form(
        name="Mercredi demi-journée",
        weekdays=["3"],
        start_time="08:30",
        end_time="12:00",
        capacity="40",
        cutoff_hours="0",
        calendar="holidays",
        unit="half_day",
    )
    response = post(admin_client, f"/admin/activites/{activity_id}/modifier", data)
    assert response.status_code == 303
    edited = fetch(app, Activity, activity_id)
    assert (edited.name, edited.weekdays, edited.start_time, edited.end_time) == (
        "Mercredi demi-journée",
        "3",
        time(8, 30),
        time(12, 0),
    )
    assert (edited.capacity, edited.cutoff_hours, edited.calendar, edited.unit) == (
        40,
        0,
        "holidays",
        "half_day",
    )
    assert audit_actions(app, f"activity:{activity_id}") == ["activity.updated"]
    # Saved again as is: nothing more is logged.
    post(admin_client, f"/admin/activites/{activity_id}/modifier", data)
    assert audit_actions(app, f"activity:{activity_id}") == ["activity.updated"]


def test_admin_deactivates_then_reactivates_an_activity(app, admin_client):
    service_id = make_service(app)
    activity_id = make_activity(app, service_id)
    path = f"/admin/activites/{activity_id}/activation"
    response = post(admin_client, path, {"active": "0"})
    assert response.status_code == 303
    assert path_of(response) == f"/admin/services/{service_id}"
    assert fetch(app, Activity, activity_id).active is False
    assert "Désactivée" in text_of(admin_client.get(f"/admin/services/{service_id}"))
    post(admin_client, path, {"active": "0"})  # a double click changes nothing more
    assert post(admin_client, path, {"active": "1"}).status_code == 303
    assert fetch(app, Activity, activity_id).active is True
    assert audit_actions(app, f"activity:{activity_id}") == [
        "activity.deactivated",
        "activity.activated",
    ]


def test_activation_with_a_forged_value_is_400(app, admin_client):
    activity_id = make_activity(app, make_service(app))
    for data in ({}, {"active": "peut-être"}):
        assert post(
            admin_client, f"/admin/activites/{activity_id}/activation", data
        ).status_code == (400)
    assert fetch(app, Activity, activity_id).active is True


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "Le nom est obligatoire."),
        ({"name": "x" * 10_000}, "Le nom ne peut pas dépasser 120 caractères."),
        ({"weekdays": []}, "Choisissez au moins un jour de la semaine."),
        ({"weekdays": ["1", "9"]}, "Choisissez des jours de la semaine de la liste."),
        ({"weekdays": ["lundi"]}, "Choisissez des jours de la semaine de la liste."),
        ({"start_time": ""}, "L'heure de début est obligatoire."),
        ({"start_time": "25:00"}, "Saisissez une heure valide, par exemple 08:30."),
        ({"end_time": "t" * 10_000}, "Saisissez une heure valide, par exemple 08:30."),
        ({"end_time": "16:00"}, "L'heure de fin doit être après l'heure de début."),
        ({"end_time": "16:30"}, "L'heure de fin doit être après l'heure de début."),
        ({"capacity": ""}, "Le nombre de places est obligatoire."),
        ({"capacity": "-1"}, "Le nombre de places doit être entre 0 et 1000."),
        ({"capacity": "1001"}, "Le nombre de places doit être entre 0 et 1000."),
        ({"capacity": "beaucoup"}, "Saisissez un nombre entier, par exemple 12."),
        ({"cutoff_hours": "721"}, "Le délai de réservation doit être entre 0 et 720."),
        ({"cutoff_hours": "-1"}, "Le délai de réservation doit être entre 0 et 720."),
        ({"calendar": "weekends"}, "Choisissez une des périodes proposées."),
        ({"unit": "hour"}, "Choisissez « Aucune », « Journée » ou « Demi-journée »."),
    ],
)
def test_bad_activity_forms_save_nothing(app, admin_client, overrides, message):
    service_id = make_service(app)
    activity_id = make_activity(app, service_id)
    before = counts(app)
    for path in (
        f"/admin/services/{service_id}/activites/nouvelle",
        f"/admin/activites/{activity_id}/modifier",
    ):
        response = post(admin_client, path, activity_form(**overrides))
        assert response.status_code == 422, path
        assert message in text_of(response), path
    assert counts(app) == before
    unchanged = fetch(app, Activity, activity_id)
    assert (unchanged.name, unchanged.weekdays, unchanged.capacity) == (
        "Accueil du matin",
        "1,2,4,5",
        60,
    )


# --- School years ----------------------------------------------------------------------------


def test_new_school_year_follows_the_last_one(app, admin_client):
    make_year(app, "2026-2027")
    page = admin_client.get("/admin/annees-scolaires/nouvelle").get_data(as_text=True)
    assert 'value="2027-2028"' in page
    assert 'value="2027-09-01"' in page and 'value="2028-08-31"' in page


def test_school_year_dates_default_to_september_and_august(app, admin_client):
    response = post(admin_client, "/admin/annees-scolaires/nouvelle", year_form())
    assert response.status_code == 303
    assert path_of(response) == "/admin/annees-scolaires"
    with app.app_context():
        year = db.session.scalar(select(SchoolYear).where(SchoolYear.name == "2028-2029"))
        assert (year.starts_on, year.ends_on) == (date(2028, 9, 1), date(2028 + 1, 8, 31))
        year_id = year.id
    assert audit_actions(app, f"school_year:{year_id}") == ["school_year.created"]
    assert "2028-2029" in text_of(admin_client.get("/admin/annees-scolaires"))


def test_admin_sets_and_edits_school_year_dates(app, admin_client):
    data = year_form(starts_on="2028-09-04", ends_on="05/07/2029")
    assert post(admin_client, "/admin/annees-scolaires/nouvelle", data).status_code == 303
    with app.app_context():
        year_id = db.session.scalar(select(SchoolYear.id).where(SchoolYear.name == "2028-2029"))
    assert (fetch(app, SchoolYear, year_id).starts_on, fetch(app, SchoolYear, year_id).ends_on) == (
        date(2028, 9, 4),
        date(2029, 7, 5),
    )
    page = admin_client.get(f"/admin/annees-scolaires/{year_id}/modifier").get_data(as_text=True)
    assert 'value="2028-09-04"' in page
    data = year_form(starts_on="2028-09-01", ends_on="2029-08-31")
    response = post(admin_client, f"/admin/annees-scolaires/{year_id}/modifier", data)
    assert response.status_code == 303
    assert fetch(app, SchoolYear, year_id).ends_on == date(2029, 8, 31)
    assert audit_actions(app, f"school_year:{year_id}") == [
        "school_year.created",
        "school_year.updated",
    ]


def test_current_school_year_is_marked(app, admin_client, monkeypatch):
    from citoyens.services import staff_services as views

    make_year(app, "2025-2026")
    make_year(app, "2026-2027")
    monkeypatch.setattr(views, "today_in_paris", lambda: TODAY)
    page = text_of(admin_client.get("/admin/annees-scolaires"))
    assert page.count("En cours") == 1
    assert page.index("2026-2027") < page.index("En cours")


BAD_YEAR = "Le nom s'écrit avec deux années qui se suivent, par exemple « 2026-2027 »."


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "Le nom de l'année scolaire est obligatoire."),
        ({"name": "2026"}, BAD_YEAR),
        ({"name": "2026-2028"}, BAD_YEAR),
        ({"name": "2027-2026"}, BAD_YEAR),
        ({"name": "2026/2027"}, BAD_YEAR),
        ({"name": "deux mille"}, BAD_YEAR),
        ({"name": "2" * 10_000}, "Le nom ne peut pas dépasser 9 caractères."),
        ({"starts_on": "31/02/2028"}, "Saisissez une date valide"),
        ({"ends_on": "e" * 10_000}, "Saisissez une date valide"),
        ({"starts_on": "2027-09-01"}, "Le premier jour doit être en 2028."),
        ({"ends_on": "2030-08-31"}, "Le dernier jour doit être en 2029."),
        (
            {"starts_on": "2028-12-31", "ends_on": "2028-12-30"},
            "Le dernier jour doit être après le premier jour.",
        ),
    ],
)
def test_bad_school_year_forms_save_nothing(app, admin_client, overrides, message):
    before = counts(app)
    response = post(admin_client, "/admin/annees-scolaires/nouvelle", year_form(**overrides))
    assert response.status_code == 422
    assert message in text_of(response)
    assert counts(app) == before


def test_school_year_end_must_follow_its_start(app, admin_client):
    year_id = make_year(app, "2028-2029")
    data = {"name": "2028-2029", "starts_on": "2028-09-01", "ends_on": "2028-09-01"}
    response = post(admin_client, f"/admin/annees-scolaires/{year_id}/modifier", data)
    assert response.status_code == 422
    assert "Le dernier jour doit être après le premier jour." in text_of(response)
    assert fetch(app, SchoolYear, year_id).ends_on == date(2029, 8, 31)
    assert audit_actions(app, f"school_year:{year_id}") == []


def test_school_year_name_is_unique(app, admin_client):
    make_year(app, "2028-2029")
    other = make_year(app, "2029-2030")
    before = counts(app)
    response = post(admin_client, "/admin/annees-scolaires/nouvelle", year_form())
    assert response.status_code == 422
    assert "Cette année scolaire existe déjà." in text_of(response)
    response = post(admin_client, f"/admin/annees-scolaires/{other}/modifier", year_form())
    assert response.status_code == 422
    assert "Cette année scolaire existe déjà." in text_of(response)
    assert counts(app) == before
    assert fetch(app, SchoolYear, other).name == "2029-2030"


# --- Enrolment windows -----------------------------------------------------------------------


def window_of(app, service_id: int, year_id: int) -> tuple[date, date] | None:
    with app.app_context():
        row = db.session.execute(
            select(EnrolmentWindow.opens_on, EnrolmentWindow.closes_on).where(
                EnrolmentWindow.service_id == service_id,
                EnrolmentWindow.school_year_id == year_id,
            )
        ).first()
        return tuple(row) if row else None


def test_admin_opens_enrolments_for_a_school_year(app, admin_client, monkeypatch):
    from citoyens.services import staff_services as views

    monkeypatch.setattr(views, "today_in_paris", lambda: TODAY)
    service_id = make_service(app, name="APS")
    make_year(app, "2025-2026")
    year_id = make_year(app, "2026-2027")
    page = admin_client.get(f"/admin/services/{service_id}").get_data(as_text=True)
    assert f'<option selected value="{year_id}">' in page  # the current year comes first
    path = f"/admin/services/{service_id}/periodes-inscription"
    data = {"school_year_id": str(year_id), "opens_on": "2026-06-01", "closes_on": "2027-06-30"}
    response = post(admin_client, path, data)
    assert response.status_code == 303
    assert path_of(response) == f"/admin/services/{service_id}"
    assert window_of(app, service_id, year_id) == (date(2026, 6, 1), date(2027, 6, 30))
    page = text_of(admin_client.get(f"/admin/services/{service_id}"))
    assert "du 01/06/2026 au 30/06/2027" in page and "Ouvertes" in page

    # Moved: the same window, new dates; the same dates again change nothing.
    data["closes_on"] = "30/11/2026"
    assert post(admin_client, path, data).status_code == 303
    post(admin_client, path, data)
    assert window_of(app, service_id, year_id) == (date(2026, 6, 1), date(2026, 11, 30))
    assert count(app, EnrolmentWindow) == 1
    assert audit_actions(app, f"service:{service_id}") == [
        "enrolment_window.set",
        "enrolment_window.set",
    ]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"closes_on": "2026-05-31"},
            "La date de clôture ne peut pas précéder la date d'ouverture.",
        ),
        ({"opens_on": ""}, "La date d'ouverture est obligatoire."),
        ({"closes_on": "demain"}, "Saisissez une date valide"),
        ({"school_year_id": "999999"}, "Choisissez une année scolaire de la liste."),
        ({"school_year_id": "x" * 10_000}, "Choisissez une année scolaire de la liste."),
    ],
)
def test_bad_windows_save_nothing(app, admin_client, overrides, message):
    service_id = make_service(app)
    year_id = make_year(app, "2026-2027")
    data = {"school_year_id": str(year_id), "opens_on": "2026-06-01", "closes_on": "2027-06-30"}
    data.update(overrides)
    response = post(admin_client, f"/admin/services/{service_id}/periodes-inscription", data)
    assert response.status_code == 422
    assert message in text_of(response)
    assert count(app, EnrolmentWindow) == 0


# --- Unknown ids, who may --------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["999999", "99999999999"])
def test_unknown_ids_are_404(app, admin_client, setup, missing):
    service_id, activity_id, year_id = setup
    for method, path, data in every_route(int(missing), int(missing), int(missing)):
        if missing in path:
            assert send(admin_client, method, path, data).status_code == 404, (method, path)


@pytest.mark.parametrize("role", ["staff", "parent"])
def test_agents_and_parents_get_403_everywhere(app, setup, role):
    client = logged_in(app, make_user(app, role=role))
    before = counts(app)
    for method, path, data in every_route(*setup):
        assert send(client, method, path, data).status_code == 403, (method, path)
    assert counts(app) == before
    assert fetch(app, Activity, setup[1]).active is True


def test_anonymous_is_sent_to_the_login_page(app, client, setup):
    for method, path, data in every_route(*setup):
        response = send(client, method, path, data)
        assert response.status_code in (302, 303), (method, path)
        assert path_of(response) == "/connexion", (method, path)


def test_post_without_csrf_token_is_400_and_saves_nothing(app, admin_client, setup):
    before = counts(app)
    for method, path, data in every_route(*setup):
        if method == "POST":
            response = admin_client.post(path, data=data)
            assert response.status_code == 400, path
            assert "Le formulaire a expiré" in response.get_data(as_text=True)
    assert counts(app) == before
    assert fetch(app, Activity, setup[1]).name == "Accueil du matin"


def test_admin_landing_links_to_services_and_school_years(app, admin_client, staff):
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert "/admin/services" in page and "/admin/annees-scolaires" in page
    agent_page = logged_in(app, staff).get("/admin/").get_data(as_text=True)
    assert "/admin/services" not in agent_page


# --- Rules -----------------------------------------------------------------------------------


@pytest.fixture
def years(app):
    return {name: make_year(app, name) for name in ("2025-2026", "2026-2027", "2027-2028")}


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 11, 26), "2026-2027"),
        (date(2026, 9, 1), "2026-2027"),
        (date(2026, 8, 31), "2025-2026"),
        (date(2028, 8, 31), "2027-2028"),
        (date(2028, 9, 1), None),
        (date(2025, 8, 31), None),
    ],
)
def test_current_school_year(app, years, today, expected):
    with app.app_context():
        year = rules.current_school_year(today)
        assert (year.name if year else None) == expected


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 11, 26), ["2026-2027", "2027-2028"]),
        (date(2026, 8, 30), ["2025-2026", "2026-2027", "2027-2028"]),
        (date(2026, 8, 31), ["2026-2027", "2027-2028"]),  # the last day: over for enrolments
        (date(2028, 8, 31), []),
    ],
)
def test_enrolable_school_years(app, years, today, expected):
    with app.app_context():
        assert [year.name for year in rules.enrolable_school_years(today)] == expected


@pytest.mark.parametrize(
    ("today", "is_open"),
    [
        (date(2026, 5, 31), False),
        (date(2026, 6, 1), True),
        (date(2026, 11, 26), True),
        (date(2027, 6, 30), True),
        (date(2027, 7, 1), False),
    ],
)
def test_open_window(app, years, today, is_open):
    service_id = make_service(app)
    other_service = make_service(app)
    window_id = make_window(
        app, service_id, years["2026-2027"], date(2026, 6, 1), date(2027, 6, 30)
    )
    with app.app_context():
        window = rules.open_window(service_id, years["2026-2027"], today)
        assert (window.id if window else None) == (window_id if is_open else None)
        # Another year or another service has no window.
        assert rules.open_window(service_id, years["2027-2028"], today) is None
        assert rules.open_window(other_service, years["2026-2027"], today) is None


# --- Demo ------------------------------------------------------------------------------------


def test_demo_services_are_seeded_once(app):
    from citoyens.demo import seed_services

    with app.app_context():
        assert seed_services() > 0
        db.session.commit()
    after_first = counts(app)
    with app.app_context():
        assert seed_services() == 0
        db.session.commit()
    assert counts(app) == after_first
    assert after_first[0] == 4  # services
    assert after_first[3] == 3  # school years
    assert after_first[4] == 8  # two windows for each service


def test_demo_is_chalonnes_configuration(app):
    from citoyens.demo import seed_services

    with app.app_context():
        seed_services()
        db.session.commit()
        by_code = {s.code: s for s in db.session.scalars(select(Service))}
        assert all(s.mailbox.endswith("@example.org") for s in by_code.values())

        def activities(code):
            return {
                a.name: (a.weekdays, a.start_time, a.end_time, a.capacity, a.calendar, a.unit)
                for a in by_code[code].activities
            }

        def documents(code):
            return {link.document_type.code for link in by_code[code].required_documents}

        assert activities("aps") == {
            "Accueil du matin": ("1,2,4,5", time(7, 15), time(8, 45), 60, "term", None),
            "Accueil du soir": ("1,2,4,5", time(16, 30), time(18, 45), 80, "term", None),
        }
        assert activities("restauration") == {
            "Repas du midi": ("1,2,4,5", time(12), time(13, 30), 600, "term", None)
        }
        goulidons = activities("goulidons")
        assert goulidons["Mercredi journée"] == (
            "3",
            time(8, 30),
            time(17, 30),
            80,
            "term",
            "day",
        )
        assert goulidons["Mercredi demi-journée"][3:] == (40, "term", "half_day")
        assert goulidons["Vacances journée"][0] == "1,2,3,4,5"
        assert set(activities("multiaccueil")) == {"Accueil régulier"}
        assert all(a.cutoff_hours == 72 for s in by_code.values() for a in s.activities)

        canteen = by_code["restauration"]
        assert canteen.excludes_private_school is True
        assert canteen.school_levels == "PS,MS,GS,CP,CE1,CE2,CM1,CM2"
        creche = by_code["multiaccueil"]
        assert (creche.place_request, creche.min_age_months, creche.max_age_months) == (
            True,
            2,
            48,
        )
        assert (by_code["goulidons"].min_age_months, by_code["goulidons"].max_age_months) == (
            36,
            144,
        )
        common = {"responsabilite-civile", "vaccinations"}
        assert (
            documents("multiaccueil") == documents("goulidons") == common | {"certificat-medical"}
        )
        assert documents("aps") == documents("restauration") == common | {"justificatif-domicile"}

        # Today (26 November 2026): 2026-2027 is current and open, 2027-2028 not open yet.
        current = rules.current_school_year(TODAY)
        assert current.name == "2026-2027"
        for service in by_code.values():
            assert rules.open_window(service.id, current.id, TODAY) is not None
        later = [y for y in rules.enrolable_school_years(TODAY) if y.name == "2027-2028"][0]
        assert rules.open_window(by_code["aps"].id, later.id, TODAY) is None
        assert rules.open_window(by_code["aps"].id, later.id, date(2027, 5, 1)) is not None


def test_demo_leaves_a_configured_service_as_staff_set_it(app):
    from citoyens.demo import seed_services

    with app.app_context():
        seed_services()
        aps = db.session.scalar(select(Service).where(Service.code == "aps"))
        morning = next(a for a in aps.activities if a.name == "Accueil du matin")
        morning.name = "Matin"
        aps.school_levels = None
        db.session.commit()
        assert seed_services() == 0
        db.session.commit()
        names = set(db.session.scalars(select(Activity.name).where(Activity.service_id == aps.id)))
        assert names == {"Matin", "Accueil du soir"}
        assert db.session.get(Service, aps.id).school_levels is None
