"""Staff exports (/admin/exports): attendance over a period, the families of a service, and
the large ones built by the worker (issue 14).

Dates are those of school year 2030-2031 (tests/reservations_factories.py); the staff
clock is set to Tuesday 10 September 2030, so early September is past. Jobs run at once
in tests: a file "built by the worker" is ready when the POST answers.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from citoyens import export_jobs
from citoyens.core.models import AuditEvent, ExportFile
from citoyens.documents.storage import get_storage
from citoyens.extensions import db
from citoyens.reservations import staff as staff_rules
from citoyens.retention import purge
from citoyens.tabular import read_xlsx
from tests.conftest import counted_queries, csrf_token, post
from tests.documents_factories import make_document, make_type
from tests.enrolments_factories import update_child
from tests.exports_factories import SEPTEMBER, add_booking, attendance_form, families_form
from tests.factories import make_user
from tests.households_factories import add_member, make_school
from tests.requests_factories import assign_staff
from tests.reservations_factories import (
    add_child,
    children_of,
    day_ids,
    enrol_accepted,
    make_bookable_offer,
)

PAGE = "/admin/exports"
ATTENDANCE = "/admin/exports/presences"
FAMILIES = "/admin/exports/familles"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOW = datetime(2030, 9, 10, 8, 0, tzinfo=UTC)
MON, TUE, THU, FRI = date(2030, 9, 2), date(2030, 9, 3), date(2030, 9, 5), date(2030, 9, 6)
INJECTIONS = ["=cmd|' /C calc'!A0", "+1", "@SUM(A1)", "-2+3"]


@pytest.fixture(autouse=True)
def setup(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path / "uploads"))
    monkeypatch.setitem(app.config, "UPLOAD_STORAGE", "filesystem")
    monkeypatch.setattr(staff_rules, "now", lambda: NOW)


def login(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303
    return client


@pytest.fixture
def world(app):
    """APS (two activities) and Goulidons; a family of two children enrolled in APS (and a
    third child pending), another family in Goulidons; two agents of APS, an agent of no
    service, an administrator."""
    aps = make_bookable_offer(app, activities=2, name="Accueil périscolaire")
    goulidons = make_bookable_offer(app, activities=1, name="Goulidons", weekdays="3")
    family = make_user(app, role="parent", children=2)
    household = family.household_id
    zoe, leo = children_of(app, household)
    school = make_school(app, "École Saint-Exupéry")
    update_child(
        app,
        zoe,
        last_name="Martin",
        first_name="Zoé",
        birth_date=date(2022, 3, 4),
        class_level="CE1",
        school_id=school,
        allergies="Arachides",
        pai=True,
        diet="Sans porc",
    )
    update_child(app, leo, last_name="Bernard", first_name="Léo", class_level="CP")
    for child in (zoe, leo):
        enrol_accepted(app, household, child, aps)
    pending = add_child(app, household, "Paulette")
    enrol_accepted(app, household, pending, aps, status="pending")
    other = make_user(app, role="parent", children=1)
    outsider = children_of(app, other.household_id)[0]
    update_child(app, outsider, last_name="Goulidonsfamille")
    enrol_accepted(app, other.household_id, outsider, goulidons)
    g_day = day_ids(app, goulidons.activity_ids[0], *SEPTEMBER)[0][0]
    add_booking(app, other.household_id, outsider, g_day, attendance="present")
    agent, colleague, loner = (make_user(app, role="staff") for _ in range(3))
    assign_staff(app, agent.id, aps.service_id)
    assign_staff(app, colleague.id, aps.service_id)
    return {
        "aps": aps,
        "goulidons": goulidons,
        "household": household,
        "zoe": zoe,
        "leo": leo,
        "pending": pending,
        "agent": agent,
        "colleague": colleague,
        "loner": loner,
        "admin": make_user(app, role="admin"),
        "days": {d: i for i, d in day_ids(app, aps.activity_ids[0], *SEPTEMBER)},
        "days_2": {d: i for i, d in day_ids(app, aps.activity_ids[1], *SEPTEMBER)},
    }


def book_september(app, world):
    """Zoé: present, justified (certificate pending), not pointed, cancelled in time; Léo:
    absent, walk-in, late cancellation, waiting. Zoé also on APS's second activity."""
    h, zoe, leo, days = world["household"], world["zoe"], world["leo"], world["days"]
    certificate = make_document(
        app, household_id=h, type_id=make_type(app, label="Certificat"), person_id=zoe
    )
    add_booking(app, h, zoe, days[MON], attendance="present")
    add_booking(app, h, zoe, days[TUE], attendance="excused", certificate_id=certificate)
    add_booking(app, h, zoe, days[THU])
    add_booking(app, h, zoe, days[FRI], status="cancelled")
    add_booking(app, h, leo, days[MON], attendance="absent")
    add_booking(app, h, leo, days[TUE], status="walk_in", attendance="present")
    add_booking(app, h, leo, days[THU], status="cancelled", late=True)
    add_booking(app, h, leo, days[FRI], status="waiting")
    add_booking(app, h, zoe, world["days_2"][MON], attendance="present")


def activity_names(app, world) -> list[str]:
    from citoyens.services.models import Activity

    with app.app_context():
        return [db.session.get(Activity, i).name for i in world["aps"].activity_ids]


def csv_rows(response) -> list[list[str]]:
    assert response.data.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))


def audits(app, action: str) -> list[tuple]:
    with app.app_context():
        return db.session.execute(
            select(AuditEvent.actor_id, AuditEvent.target, AuditEvent.details)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        ).all()


# --- Attendance -------------------------------------------------------------------------------


def test_attendance_of_an_activity_as_xlsx_with_its_summary_per_child(app, world):
    book_september(app, world)
    first, _second = activity_names(app, world)
    client = login(app, world["agent"])
    response = post(client, ATTENDANCE, attendance_form(f"activite:{world['aps'].activity_ids[0]}"))
    assert response.status_code == 200
    assert response.mimetype == XLSX
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "presences-" in disposition
    assert "2030-09-01-2030-09-30.xlsx" in disposition
    assert response.headers["Cache-Control"] == "no-store"
    book = read_xlsx(response.data)
    assert list(book) == ["Présences", "Synthèse par enfant"]
    detail = book["Présences"]
    assert detail[0] == [
        "Date",
        "Jour",
        "Activité",
        "Nom",
        "Prénom",
        "Classe",
        "Réservation",
        "Présence",
        "Certificat médical",
    ]
    lines = [[row[0].date(), *row[1:]] for row in detail[1:]]
    assert lines == [
        [MON, "lundi", first, "Bernard", "Léo", "CP", "Réservé", "Absent", None],
        [MON, "lundi", first, "Martin", "Zoé", "CE1", "Réservé", "Présent", None],
        [TUE, "mardi", first, "Bernard", "Léo", "CP", "Présent sans réservation", "Présent", None],
        [TUE, "mardi", first, "Martin", "Zoé", "CE1", "Réservé", "Absent justifié", "En attente"],
        [THU, "jeudi", first, "Bernard", "Léo", "CP", "Annulé hors délai", None, None],
        [THU, "jeudi", first, "Martin", "Zoé", "CE1", "Réservé", "Non pointé", None],
        [FRI, "vendredi", first, "Bernard", "Léo", "CP", "Liste d'attente", None, None],
    ]
    summary = book["Synthèse par enfant"]
    assert summary[0] == [
        "Nom",
        "Prénom",
        "Classe",
        "Activité",
        "Jours réservés",
        "Présent",
        "Absent",
        "Absent justifié",
        "Non pointé",
        "Sans réservation",
        "Annulé hors délai",
    ]
    assert summary[1:] == [
        ["Bernard", "Léo", "CP", first, 1, 0, 1, 0, 0, 1, 1],
        ["Martin", "Zoé", "CE1", first, 3, 1, 0, 1, 1, 0, 0],
    ]
    # Who exported what, and how much.
    ((actor, target, details),) = audits(app, "export.presences")
    assert actor == world["agent"].id
    assert target == f"activity:{world['aps'].activity_ids[0]}"
    assert details == f"xlsx, 7 ligne(s) : Présences — {first}, du 01/09/2030 au 30/09/2030"


def test_attendance_of_a_whole_service_as_csv(app, world):
    book_september(app, world)
    first, second = activity_names(app, world)
    client = login(app, world["agent"])
    form = attendance_form(f"service:{world['aps'].service_id}", MON, MON, fmt="csv")
    response = post(client, ATTENDANCE, form)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = csv_rows(response)
    assert rows[0][:4] == ["Date", "Jour", "Activité", "Nom"]
    # Both activities of APS, never the Goulidons; a CSV holds the detail only.
    assert [(row[2], row[3]) for row in rows[1:]] == [
        (first, "Bernard"),
        (first, "Martin"),
        (second, "Martin"),
    ]
    assert rows[1][0] == "02/09/2030"
    assert "Goulidonsfamille" not in response.get_data(as_text=True)
    assert audits(app, "export.presences")[0][1:] == (
        f"service:{world['aps'].service_id}",
        "csv, 3 ligne(s) : Présences — Accueil périscolaire, du 02/09/2030 au 02/09/2030",
    )


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        ("2030-09-30", "2030-09-01", "Le dernier jour ne peut pas précéder le premier jour."),
        ("2030-09-01", "2031-09-02", "La période ne peut pas dépasser un an."),
        ("2030-02-31", "2030-09-30", "Saisissez une date valide, par exemple 03/09/2017."),
        ("", "2030-09-30", "Le premier jour est obligatoire."),
        ("2030-09-01", "demain", "Saisissez une date valide, par exemple 03/09/2017."),
    ],
)
def test_bad_dates_are_refused_in_french_and_export_nothing(app, world, first, last, message):
    client = login(app, world["agent"])
    target = f"activite:{world['aps'].activity_ids[0]}"
    response = post(client, ATTENDANCE, attendance_form(target, first, last))
    assert response.status_code == 422
    assert response.mimetype == "text/html"
    assert message in response.get_data(as_text=True)
    assert audits(app, "export.presences") == []


def test_a_whole_school_year_may_be_exported(app, world):
    client = login(app, world["agent"])
    target = f"service:{world['aps'].service_id}"
    response = post(client, ATTENDANCE, attendance_form(target, "2030-09-01", "2031-08-31"))
    assert response.status_code == 200 and response.mimetype == XLSX


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "presences-target",
            "activite:abc",
            "Choisissez une activité ou un service dans la liste.",
        ),
        ("presences-target", "", "Choisissez une activité ou un service dans la liste."),
        ("presences-target", "activite:99999999999", "Choisissez une activité ou un service"),
        ("presences-fmt", "pdf", "Choisissez le format XLSX ou CSV."),
    ],
)
def test_bad_choices_are_refused_in_french(app, world, field, value, message):
    client = login(app, world["agent"])
    form = attendance_form(f"activite:{world['aps'].activity_ids[0]}")
    form[field] = value
    response = post(client, ATTENDANCE, form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("familles-service_id", "abc"), ("familles-school_year_id", "x"), ("familles-fmt", "ods")],
)
def test_bad_family_export_choices_are_refused(app, world, field, value):
    client = login(app, world["agent"])
    form = families_form(world["aps"].service_id, world["aps"].year_id)
    form[field] = value
    response = post(client, FAMILIES, form)
    assert response.status_code == 422
    assert "Le formulaire contient 1 erreur." in response.get_data(as_text=True)
    assert audits(app, "export.familles") == []


# --- Access -----------------------------------------------------------------------------------


def test_an_agent_of_aps_cannot_export_the_goulidons(app, world):
    client = login(app, world["agent"])
    g = world["goulidons"]
    for path, form in (
        (ATTENDANCE, attendance_form(f"service:{g.service_id}")),
        (ATTENDANCE, attendance_form(f"activite:{g.activity_ids[0]}")),
        (FAMILIES, families_form(g.service_id, g.year_id)),
    ):
        response = post(client, path, form)
        assert response.status_code == 404, path
        assert b"Goulidonsfamille" not in response.data
    # An unknown activity is the same 404.
    assert post(client, ATTENDANCE, attendance_form("activite:987654")).status_code == 404
    denied = [target for _actor, target, _ in audits(app, "access.denied")]
    assert denied == [
        f"service:{g.service_id}",
        f"activity:{g.activity_ids[0]}",
        f"service:{g.service_id}",
        "activity:987654",
    ]
    assert audits(app, "export.presences") == audits(app, "export.familles") == []
    # The form offers only APS.
    page = client.get(PAGE).get_data(as_text=True)
    assert f"activite:{world['aps'].activity_ids[0]}" in page
    assert f"activite:{g.activity_ids[0]}" not in page and "Goulidons" not in page


def test_an_agent_of_no_service_exports_nothing_and_an_admin_everything(app, world):
    loner = login(app, world["loner"])
    assert "Vous n'êtes rattaché à aucun service" in loner.get(PAGE).get_data(as_text=True)
    aps = world["aps"]
    assert post(loner, ATTENDANCE, attendance_form(f"service:{aps.service_id}")).status_code == 404
    assert post(loner, FAMILIES, families_form(aps.service_id, aps.year_id)).status_code == 404
    admin = login(app, world["admin"])
    page = admin.get(PAGE).get_data(as_text=True)
    assert "Goulidons" in page and "Accueil périscolaire" in page
    g = world["goulidons"]
    response = post(admin, FAMILIES, families_form(g.service_id, g.year_id, fmt="csv"))
    assert response.status_code == 200
    assert "Goulidonsfamille" in response.get_data(as_text=True)


def test_the_page_is_linked_and_prefilled_from_a_day_list(app, world):
    client = login(app, world["agent"])
    activity = world["aps"].activity_ids[0]
    day_page = client.get(f"/admin/reservations/jour/{world['days'][THU]}").get_data(as_text=True)
    link = f"/admin/exports?activite={activity}&amp;du=2030-09-01&amp;au=2030-09-05"
    assert link in day_page
    assert 'href="/admin/exports"' in client.get("/admin/").get_data(as_text=True)
    page = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert f'<option selected value="activite:{activity}">' in page
    assert 'value="2030-09-01"' in page and 'value="2030-09-05"' in page
    assert client.get(f"{PAGE}?du=2030-13-01").status_code == 400


# --- Families and children --------------------------------------------------------------------


def test_families_of_a_service_with_adults_and_contacts(app, world):
    h = world["household"]
    with app.app_context():
        from citoyens.households.models import HouseholdMember, Person

        adult = db.session.scalar(
            select(Person)
            .join(HouseholdMember, HouseholdMember.person_id == Person.id)
            .where(HouseholdMember.household_id == h, HouseholdMember.role == "adult")
        )
        adult.first_name, adult.last_name = "Claire", "Martin"
        adult.email, adult.mobile_phone = "claire@example.org", "+33612345678"
        db.session.commit()
    add_member(app, h, "adult", first_name="Paul", last_name="Martin", home_phone="+33241000000")
    add_member(
        app,
        h,
        "contact",
        first_name="Mamie",
        last_name="Durand",
        relationship_label="Grand-mère",
        can_pick_up=True,
        mobile_phone="+33698765432",
        email="mamie@example.org",
    )
    add_member(app, h, "contact", first_name="Voisin", last_name="Roy", emergency_contact=True)
    client = login(app, world["agent"])
    aps = world["aps"]
    response = post(client, FAMILIES, families_form(aps.service_id, aps.year_id))
    assert response.status_code == 200 and response.mimetype == XLSX
    book = read_xlsx(response.data)
    assert list(book) == ["Inscrits acceptés", "Contacts"]
    children = book["Inscrits acceptés"]
    header = children[0]
    assert header[:12] == [
        "Nom",
        "Prénom",
        "Date de naissance",
        "Classe",
        "École",
        "Allergies",
        "PAI",
        "Régime",
        "Droit à l'image",
        "Autorisation de sortie",
        "Inscription",
        "Activités",
    ]
    rows = {row[1]: dict(zip(header, row, strict=True)) for row in children[1:]}
    assert set(rows) == {"Zoé", "Léo"}  # Paulette's enrolment is pending
    zoe = rows["Zoé"]
    assert zoe["Date de naissance"].date() == date(2022, 3, 4)
    assert (zoe["Classe"], zoe["École"], zoe["Allergies"]) == (
        "CE1",
        "École Saint-Exupéry",
        "Arachides",
    )
    assert (zoe["PAI"], zoe["Régime"], zoe["Inscription"]) == ("Oui", "Sans porc", "Acceptée")
    assert zoe["Activités"] == ", ".join(activity_names(app, world))
    assert zoe["Responsable 1"] == "Claire Martin"
    assert zoe["Téléphones 1"] == "06 12 34 56 78 (portable)"
    assert zoe["E-mail 1"] == "claire@example.org"
    assert (zoe["Responsable 2"], zoe["Téléphones 2"]) == (
        "Paul Martin",
        "02 41 00 00 00 (domicile)",
    )
    contacts = book["Contacts"]
    assert contacts[0] == [
        "Nom de l'enfant",
        "Prénom de l'enfant",
        "Nom du contact",
        "Prénom du contact",
        "Lien avec l'enfant",
        "Peut venir chercher l'enfant",
        "À prévenir en urgence",
        "Téléphones",
        "E-mail",
    ]
    assert sorted(contacts[1:]) == sorted(
        [
            [
                child,
                first,
                "Durand",
                "Mamie",
                "Grand-mère",
                "Oui",
                "Non",
                "06 98 76 54 32 (portable)",
                "mamie@example.org",
            ]
            for child, first in (("Martin", "Zoé"), ("Bernard", "Léo"))
        ]
        + [
            [child, first, "Roy", "Voisin", None, "Non", "Oui", None, None]
            for child, first in (("Martin", "Zoé"), ("Bernard", "Léo"))
        ]
    )
    ((actor, target, details),) = audits(app, "export.familles")
    assert (actor, target, details) == (
        world["agent"].id,
        f"service:{aps.service_id}",
        "xlsx, 2 ligne(s) : Familles et enfants — Accueil périscolaire 2030-2031 "
        "(inscriptions acceptées)",
    )
    # Pending enrolments on request: the sheet says so.
    response = post(client, FAMILIES, families_form(aps.service_id, aps.year_id, pending=True))
    book = read_xlsx(response.data)
    assert list(book) == ["Inscrits acceptés et en attente", "Contacts"]
    statuses = {row[1]: row[10] for row in book["Inscrits acceptés et en attente"][1:]}
    assert statuses == {
        "Zoé": "Acceptée",
        "Léo": "Acceptée",
        "Paulette": "En attente de validation",
    }


# --- Formula injection ------------------------------------------------------------------------


def test_formulas_in_names_and_allergies_are_neutralised_in_csv_and_xlsx(app, world):
    h, aps, days = world["household"], world["aps"], world["days"]
    children = [world["zoe"], world["leo"]] + [add_child(app, h, "X") for _ in range(2)]
    for child, name in zip(children, INJECTIONS, strict=True):
        update_child(app, child, last_name=name, first_name=name, allergies="=1+1", diet="@porc")
        if child not in (world["zoe"], world["leo"]):
            enrol_accepted(app, h, child, aps)
        add_booking(app, h, child, days[MON], attendance="present")
    add_member(app, h, "contact", first_name="+33 6", last_name="-Contact", can_pick_up=True)
    client = login(app, world["agent"])
    exports = [
        (ATTENDANCE, attendance_form(f"activite:{aps.activity_ids[0]}", fmt=fmt))
        for fmt in ("csv", "xlsx")
    ] + [(FAMILIES, families_form(aps.service_id, aps.year_id, fmt=fmt)) for fmt in ("csv", "xlsx")]
    for path, form in exports:
        response = post(client, path, form)
        assert response.status_code == 200
        if response.mimetype == "text/csv":
            sheets = {"csv": csv_rows(response)}
        else:
            sheets = read_xlsx(response.data)
        cells = [
            cell
            for rows in sheets.values()
            for row in rows
            for cell in row
            if isinstance(cell, str)
        ]
        assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@"))], path
        for name in INJECTIONS:
            assert "'" + name in cells, (path, name)
        if path == FAMILIES:
            assert "'=1+1" in cells and "'@porc" in cells
        if path == FAMILIES and response.mimetype == XLSX:
            assert "'-Contact" in cells and "'+33 6" in cells


# --- Large exports: the worker ----------------------------------------------------------------


def latest_file(app) -> ExportFile:
    with app.app_context():
        export = db.session.scalar(select(ExportFile).order_by(ExportFile.id.desc()).limit(1))
        db.session.expunge(export)
        return export


def test_a_large_export_is_built_by_the_worker_and_downloaded_by_its_requester_only(
    app, world, monkeypatch
):
    book_september(app, world)
    client = login(app, world["agent"])
    form = attendance_form(f"activite:{world['aps'].activity_ids[0]}")
    streamed = read_xlsx(post(client, ATTENDANCE, form).data)
    monkeypatch.setitem(app.config, "EXPORT_WORKER_ROWS", 5)
    response = post(client, ATTENDANCE, form)
    assert response.status_code == 303
    export = latest_file(app)
    assert response.headers["Location"] == f"/admin/exports/fichiers/{export.id}"
    assert (export.status, export.requested_by_id, export.format) == (
        "ready",
        world["agent"].id,
        "xlsx",
    )
    assert export.title.startswith("Présences — ") and "du 01/09/2030 au 30/09/2030" in export.title
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Télécharger" in page and "data-hx-trigger" not in page
    download = f"/admin/exports/fichiers/{export.id}/telecharger"
    assert f'href="{download}"' in page
    got = client.get(download)
    assert got.status_code == 200 and got.mimetype == XLSX
    assert got.headers["Cache-Control"] == "no-store"
    assert got.headers["Content-Disposition"].startswith("attachment;")
    assert read_xlsx(got.data) == streamed
    assert (
        audits(app, "export.presences")[-1][2]
        == f"xlsx, 7 ligne(s), en tâche de fond : {export.title}"
    )
    assert [target for _a, target, _d in audits(app, "export.downloaded")] == [
        f"export_file:{export.id}"
    ]
    # The page lists it for its requester, never for a colleague.
    assert f"/admin/exports/fichiers/{export.id}" in client.get(PAGE).get_data(as_text=True)
    for other in ("colleague", "admin"):
        someone = login(app, world[other])
        assert f"/admin/exports/fichiers/{export.id}" not in someone.get(PAGE).get_data(
            as_text=True
        )
        assert someone.get(f"/admin/exports/fichiers/{export.id}").status_code == 404
        assert someone.get(download).status_code == 404
    # Seven days after it was asked for, the purge deletes the row and the file.
    with app.app_context():
        assert get_storage().exists(export.storage_key)
        purge(export.created_at + timedelta(days=6))
        assert db.session.get(ExportFile, export.id) is not None
        purge(export.created_at + timedelta(days=7, seconds=1))
        assert db.session.get(ExportFile, export.id) is None
        assert not get_storage().exists(export.storage_key)
    assert client.get(download).status_code == 404


def test_a_csv_file_built_by_the_worker_holds_the_detail(app, world, monkeypatch):
    book_september(app, world)
    monkeypatch.setitem(app.config, "EXPORT_WORKER_ROWS", 0)
    client = login(app, world["agent"])
    aps = world["aps"]
    response = post(client, FAMILIES, families_form(aps.service_id, aps.year_id, fmt="csv"))
    assert response.status_code == 303
    export = latest_file(app)
    assert (export.kind, export.status, export.rows) == ("familles", "ready", 2)
    got = client.get(f"/admin/exports/fichiers/{export.id}/telecharger")
    assert got.mimetype == "text/csv"
    assert [row[1] for row in csv_rows(got)[1:]] == ["Léo", "Zoé"]


def test_the_file_page_polls_while_the_worker_has_not_finished(app, world, monkeypatch):
    monkeypatch.setattr(export_jobs, "build_file_task", lambda file_id: None)  # no worker
    monkeypatch.setitem(app.config, "EXPORT_WORKER_ROWS", 0)
    book_september(app, world)
    client = login(app, world["agent"])
    form = attendance_form(f"activite:{world['aps'].activity_ids[0]}")
    first = post(client, ATTENDANCE, form).headers["Location"]
    assert post(client, ATTENDANCE, form).headers["Location"] == first  # a double click
    export = latest_file(app)
    assert export.status == "queued"
    page = client.get(first).get_data(as_text=True)
    assert "attend son tour" in page and 'data-hx-trigger="every 2s"' in page
    assert 'aria-live="polite"' in page
    # The worker is writing: htmx gets the fragment with the progress.
    with app.app_context():
        db.session.get(ExportFile, export.id).status = "running"
        db.session.commit()
        export_jobs.jobs.huey.put(export_jobs.progress_key(export.id), (3, 7))
    fragment = client.get(first, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="export-fichier"')
    assert "3 lignes écrites sur 7 environ" in fragment and "<h1>" not in fragment
    assert client.get(f"{first}/telecharger").status_code == 404  # not ready yet
    # The worker finishes.
    with app.app_context():
        db.session.get(ExportFile, export.id).status = "queued"
        db.session.commit()
        assert export_jobs.build_file(export.id) == "ready"
        assert export_jobs.build_file(export.id) == "skipped"
    fragment = client.get(first, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Télécharger" in fragment and "data-hx-trigger" not in fragment


def test_a_failed_build_says_so_and_stores_nothing(app, world, monkeypatch, tmp_path):
    def broken(params):
        raise RuntimeError("boom")

    builder = export_jobs.builder("presences")
    monkeypatch.setitem(
        export_jobs._builders,
        "presences",
        builder.__class__(builder.name, broken, builder.count, builder.title, builder.filename),
    )
    monkeypatch.setitem(app.config, "EXPORT_WORKER_ROWS", 0)
    book_september(app, world)
    client = login(app, world["agent"])
    response = post(client, ATTENDANCE, attendance_form(f"activite:{world['aps'].activity_ids[0]}"))
    assert response.status_code == 303
    export = latest_file(app)
    assert (export.status, export.storage_key) == ("failed", None)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Erreur lors de la préparation du fichier : demandez-le à nouveau." in page
    assert not (tmp_path / "uploads").exists() or not list((tmp_path / "uploads").iterdir())


# --- Queries ----------------------------------------------------------------------------------


def export_statements(app, client, path: str, form: dict) -> int:
    form = {**form, "csrf_token": csrf_token(client)}
    with counted_queries(app) as statements:
        response = client.post(path, data=form)
        assert response.status_code == 200, response.status_code
        assert response.data
    return len(statements)


def test_an_export_runs_a_fixed_number_of_queries_whatever_its_rows(app, world):
    small = make_bookable_offer(app, activities=1, name="Petit service")
    large = make_bookable_offer(app, activities=1, name="Grand service")
    for offer, children in ((small, 1), (large, 6)):
        family = make_user(app, role="parent", children=children)
        add_member(app, family.household_id, "contact", can_pick_up=True)
        add_member(app, family.household_id, "adult", mobile_phone="+33612345678")
        days = [i for i, _d in day_ids(app, offer.activity_ids[0], *SEPTEMBER)]
        for child in children_of(app, family.household_id):
            enrol_accepted(app, family.household_id, child, offer)
            for day in days[: 1 if children == 1 else 8]:
                add_booking(app, family.household_id, child, day, attendance="present")
    client = login(app, world["admin"])
    for fmt in ("xlsx", "csv"):
        counts = {}
        for name, offer in (("small", small), ("large", large)):
            forms = [
                (ATTENDANCE, attendance_form(f"service:{offer.service_id}", fmt=fmt)),
                (FAMILIES, families_form(offer.service_id, offer.year_id, fmt=fmt)),
            ]
            export_statements(app, client, *forms[0])  # warm-up
            counts[name] = [export_statements(app, client, path, form) for path, form in forms]
        assert counts["small"] == counts["large"], (fmt, counts)
    with app.app_context():
        assert (
            db.session.scalar(
                select(func.count(AuditEvent.id)).where(AuditEvent.action.like("export.%"))
            )
            == 12
        )


# --- Random input -----------------------------------------------------------------------------

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
    st.sampled_from(
        ["\x00", "2030-09-12", "12/09/2030", "0001-01-01", "9999-12-31", "-1", "xlsx", "csv"]
    ),
    st.integers().map(str),
    st.integers().map(lambda n: f"activite:{n}"),
    st.integers().map(lambda n: f"service:{n}"),
)


@FUZZ
@given(target=fuzz_text, first=fuzz_text, last=fuzz_text, fmt=fuzz_text)
def test_random_attendance_forms_never_fail(app, world, target, first, last, fmt):
    client = login(app, world["admin"])
    form = {
        "presences-target": target,
        "presences-starts_on": first,
        "presences-ends_on": last,
        "presences-fmt": fmt,
    }
    assert post(client, ATTENDANCE, form).status_code in (200, 404, 422)


@FUZZ
@given(service=fuzz_text, year=fuzz_text, pending=fuzz_text, fmt=fuzz_text)
def test_random_family_forms_never_fail(app, world, service, year, pending, fmt):
    client = login(app, world["agent"])
    form = {
        "familles-service_id": service,
        "familles-school_year_id": year,
        "familles-pending": pending,
        "familles-fmt": fmt,
    }
    assert post(client, FAMILIES, form).status_code in (200, 404, 422)
