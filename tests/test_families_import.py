"""Bringing the families in (issue 13): the CSV import, from the command line and /admin,
and what imported adults do next (activate their account, the welcome e-mail)."""

from __future__ import annotations

import csv
import html
import io
import re
import time
from datetime import date
from datetime import time as clock
from pathlib import Path

import pytest
from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.core.models import JobRun
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households.import_csv import ImportFileError, read_csv
from citoyens.households.import_plan import plan_import
from citoyens.households.models import Household, HouseholdChange, HouseholdMember, Person
from citoyens.services.models import Activity, School, SchoolYear, Service
from tests.conftest import post

SAMPLE = Path(__file__).resolve().parent.parent / "docs" / "import-familles.csv"
HEADER = (
    "reference_famille;role;civilite;nom;prenom;date_naissance;email;telephone;adresse;"
    "code_postal;ville;ecole;classe;lien;inscriptions"
)


@pytest.fixture
def offer(app):
    """The schools, services, activities and current school year the sample names."""
    today = today_in_paris()
    first = today.year if today.month >= 9 else today.year - 1
    with app.app_context():
        for name in ("École maternelle publique", "École élémentaire publique"):
            db.session.add(School(name=name))
        db.session.add(School(name="École privée Saint-Joseph", kind="private"))
        if (
            db.session.scalar(
                select(SchoolYear).where(SchoolYear.starts_on <= today, SchoolYear.ends_on >= today)
            )
            is None
        ):
            db.session.add(
                SchoolYear(
                    name=f"{first}-{first + 1}",
                    starts_on=date(first, 9, 1),
                    ends_on=date(first + 1, 8, 31),
                )
            )
        activities = {
            "restauration": ["Repas du midi"],
            "aps": ["Accueil du matin", "Accueil du soir"],
            "goulidons": ["Mercredi journée", "Mercredi demi-journée"],
        }
        for code, names in activities.items():
            service = Service(code=code, name=f"Service {code}")
            service.activities = [
                Activity(
                    name=name,
                    weekdays="1,2,4,5",
                    start_time=clock(8),
                    end_time=clock(9),
                    capacity=50,
                )
                for name in names
            ]
            db.session.add(service)
        db.session.commit()


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Household, Person, HouseholdMember, User, Enrolment, HouseholdChange)
        }


def import_cli(runner, path, *args):
    return runner.invoke(args=["families", "import", str(path), *args])


def write(tmp_path, content: str | bytes, name: str = "familles.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def family_lines(*lines: str) -> str:
    return "\n".join([HEADER, *lines]) + "\n"


def upload(client, content: bytes, name: str = "familles.csv"):
    return post(
        client,
        "/admin/familles/import",
        {"fichier": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


# --- the sample, by the command ---------------------------------------------------------------


def test_the_sample_dry_run_writes_nothing_then_imports_then_changes_nothing(app, runner, offer):
    before = counts(app)
    dry = import_cli(runner, SAMPLE, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "11 famille(s) : 11 création, 0 mise à jour, 0 inchangé, 0 refusé" in dry.output
    assert "rien n'a été enregistré" in dry.output
    assert counts(app) == before

    done = import_cli(runner, SAMPLE)
    assert done.exit_code == 0, done.output
    assert "11 famille(s) créée(s)" in done.output
    with app.app_context():
        household = db.session.scalar(select(Household).where(Household.external_ref == "F0001"))
        assert (household.address_line, household.postcode) == ("12 rue du Vieux Pont", "49290")
        users = db.session.scalars(select(User).where(User.imported.is_(True))).all()
        assert len(users) == 13
        assert all(u.password_hash is None and u.role == "parent" for u in users)
        amelie = db.session.scalar(select(Person).where(Person.first_name == "Amélie"))
        assert (amelie.civility, amelie.mobile_phone) == ("Mme", "+33611223344")
        assert amelie.email == "amelie.lefevre@example.org"
        fx = db.session.scalar(select(Person).where(Person.first_name == "François-Xavier"))
        assert fx.home_phone == "+33241780011" and fx.mobile_phone is None
        zoe = db.session.scalar(select(Person).where(Person.first_name == "Zoé"))
        assert (zoe.birth_date, zoe.class_level, zoe.school.name) == (
            date(2016, 6, 21),
            "CE2",
            "École élémentaire publique",
        )
        enrolments = db.session.scalars(select(Enrolment).where(Enrolment.child_id == zoe.id))
        by_service = {
            e.service.code: sorted(a.activity.name for a in e.activities) for e in enrolments
        }
        assert by_service == {"restauration": ["Repas du midi"], "aps": ["Accueil du soir"]}
        assert {e.status for e in db.session.scalars(select(Enrolment))} == {"accepted"}
        grandmother = db.session.scalar(
            select(HouseholdMember).join(Person).where(Person.first_name == "Fatou")
        )
        assert (grandmother.role, grandmother.relationship_label) == ("contact", "grand-mère")
    after = counts(app)

    again = import_cli(runner, SAMPLE)
    assert "0 création, 0 mise à jour, 11 inchangé, 0 refusé" in again.output
    assert counts(app) == after


def test_a_changed_line_updates_only_what_changed_and_keeps_the_history(
    app, runner, offer, tmp_path
):
    import_cli(runner, SAMPLE)
    changed = SAMPLE.read_text().replace("06 11 22 33 44", "06 99 99 99 99")
    result = import_cli(runner, write(tmp_path, changed))
    assert "1 mise à jour, 10 inchangé" in result.output
    assert "ligne 2 Amélie Lefèvre : mise à jour (téléphone portable)" in result.output
    with app.app_context():
        amelie = db.session.scalar(select(Person).where(Person.first_name == "Amélie"))
        assert amelie.mobile_phone == "+33699999999"
        change = db.session.scalar(
            select(HouseholdChange).where(
                HouseholdChange.person_id == amelie.id, HouseholdChange.action == "updated"
            )
        )
        assert change.fields == "mobile_phone"


# --- encodings, delimiters, columns -----------------------------------------------------------


def test_windows_1252_with_commas_and_a_bom_in_utf8_are_both_read(app, offer):
    rows = list(csv.reader(io.StringIO(SAMPLE.read_text()), delimiter=";"))
    out = io.StringIO()
    csv.writer(out, delimiter=",").writerows(rows)
    parsed = read_csv(out.getvalue().encode("cp1252"))
    assert (parsed.encoding, parsed.delimiter) == ("Windows-1252", ",")
    assert parsed.rows[0].get("nom") == "Lefèvre" and parsed.rows[0].line == 2
    with app.app_context():
        plan = plan_import(parsed, today_in_paris())
    assert plan.counts["create"] == 11

    bom = read_csv(b"\xef\xbb\xbf" + SAMPLE.read_bytes())
    assert (bom.encoding, bom.rows[0].get("reference_famille")) == ("UTF-8", "F0001")


def test_headers_are_matched_whatever_their_case_accents_and_spaces():
    parsed = read_csv(
        "Référence famille;RÔLE;Nom;Prénom;E-mail;Date de naissance\n"
        "F1;responsable;A;B;a@example.org;01/01/1980\n".encode()
    )
    assert parsed.rows[0].cells == {
        "reference_famille": "F1",
        "role": "responsable",
        "nom": "A",
        "prenom": "B",
        "email": "a@example.org",
        "date_naissance": "01/01/1980",
    }


@pytest.mark.parametrize(
    "content, message",
    [
        ("reference_famille;role;nom\nF1;enfant;Martin\n", "absente(s) : prenom"),
        ("nom;prenom\nMartin;Léa\n", "reference_famille, role"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "n'est pas un fichier texte CSV"),
        ("reference_famille;role;nom;prenom\n".encode("utf-16"), "UTF-16"),
        (b"reference_famille;role;nom;prenom\nF1;enfant;\x81\x8d;x\n", "Encodage"),
        ("", "vide"),
        (HEADER + "\n", "aucune ligne"),
        ('reference_famille;role;nom;prenom\nF1;enfant;"Martin;Léa\n', "guillemets"),
        ("reference_famille;role;nom;prenom\nF1;enfant;Martin;Léa;x;y\n", "4 en-têtes"),
        ("reference_famille;role;nom;nom;prenom\nF1;enfant;a;b;c\n", "en double : nom"),
    ],
)
def test_an_unreadable_file_is_refused_with_a_clear_message(content, message):
    with pytest.raises(ImportFileError, match=re.escape(message)):
        read_csv(content if isinstance(content, bytes) else content.encode())


# --- families refused as a whole -------------------------------------------------------------


def test_a_family_with_a_bad_line_goes_in_not_at_all_and_the_others_do(
    app, client, auth, admin, offer, outbox
):
    content = family_lines(
        "A1;responsable;Mme;Martin;Camille;;camille@example.org;06 12 34 56 78;1 rue;49290;"
        "Chalonnes;;;;",
        "A1;enfant;;Martin;Léa;31/02/2017;;;;;;;CP;;",  # no 31 February
        "B1;responsable;M.;Durand;Paul;;paul@example.org;;2 rue;49290;Chalonnes;;;;",
        "B1;enfant;;Durand;Jade;03/09/2017;;;;;;École élémentaire publique;CE1;;restauration",
    ).encode()
    auth.login(admin)
    before = counts(app)
    report = text(upload(client, content))
    assert "Rien n'est encore enregistré" in report
    assert "A1 : Refusé" in report and "Aucune ligne de cette famille n'est importée" in report
    assert "Date de naissance « 31/02/2017 » invalide" in report
    assert "B1 : Création" in report
    assert counts(app) == before  # the report wrote nothing

    done = text(post(client, "/admin/familles/import/confirmer", {"cle": _key(client)}))
    assert "1 famille(s) créée(s)" in done and "1 inscription(s) acceptée(s)" in done
    assert outbox == []  # no e-mail at import
    with app.app_context():
        refs = set(db.session.scalars(select(Household.external_ref)))
        assert "B1" in refs and "A1" not in refs
        assert db.session.scalar(select(Person).where(Person.first_name == "Camille")) is None
        change = db.session.scalar(
            select(HouseholdChange).where(HouseholdChange.action == "created")
        )
        assert change.actor_id == admin.id

    # The report was used: confirming again does nothing.
    again = post(client, "/admin/familles/import/confirmer", {"cle": "0" * 32 + ".csv"})
    assert "n'est plus valable" in text(client.get(again.headers["Location"]))


def _key(client) -> str:
    with client.session_transaction() as session:
        return session["family_import_file"]


def test_a_confirmation_needs_the_admins_own_stored_file(app, client, auth, admin, offer):
    auth.login(admin)
    upload(client, family_lines("C1;responsable;M.;Roux;Jean;;;;;;;;;;").encode())
    forged = post(client, "/admin/familles/import/confirmer", {"cle": "f" * 32 + ".csv"})
    assert forged.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Household).where(Household.external_ref == "C1")) is None


@pytest.mark.parametrize(
    "lines, reason",
    [
        (
            [
                "D1;responsable;M.;Roux;Jean;;;;1 rue A;49290;Chalonnes;;;;",
                "D1;responsable;Mme;Roux;Anne;;;;9 rue B;49290;Chalonnes;;;;",
            ],
            "différent de la ligne 2",
        ),
        (
            ["D1;responsable;M.;Roux;Jean;;;;;;;;;;", "D1;responsable;M.;ROUX;jean;;;;;;;;;;"],
            "Même personne que la ligne 2",
        ),
        (["D1;enfant;;Roux;Léo;01/01/2018;;;;;;;;;"], "Aucun responsable"),
        (["D1;tuteur;;Roux;Léo;;;;;;;;;;"], "Rôle « tuteur » inconnu"),
        (["D1;responsable;Dr;Roux;Léo;;;;;;;;;;"], "Civilité « Dr »"),
        (["D1;responsable;M.;Roux;Léo;;pas-une-adresse;;;;;;;;"], "adresse e-mail valide"),
        (["D1;responsable;M.;Roux;Léo;;;12;;;;;;;"], "Téléphone « 12 »"),
        (["D1;responsable;M.;Roux;Léo;;;;;4929;;;;;"], "5 chiffres"),
        (
            [
                "D1;responsable;M.;Roux;Léo;;;;;;;;;;",
                "D1;enfant;;Roux;Lou;01/01/2018;;;;;;Collège X;;;",
            ],
            "École « Collège X » inconnue",
        ),
        (
            ["D1;responsable;M.;Roux;Léo;;;;;;;;;;", "D1;enfant;;Roux;Lou;01/01/2018;;;;;;;6e;;"],
            "Classe « 6e » inconnue",
        ),
        (
            [
                "D1;responsable;M.;Roux;Léo;;;;;;;;;;",
                "D1;enfant;;Roux;Lou;01/01/2018;;;;;;;;;piscine",
            ],
            "service « piscine » inconnu",
        ),
        (
            [
                "D1;responsable;M.;Roux;Léo;;;;;;;;;;",
                "D1;enfant;;Roux;Lou;01/01/2018;;;;;;;;;aps:Nuit",
            ],
            "activité « Nuit » inconnue",
        ),
        (
            ["D1;responsable;M.;Roux;Léo;;;;;;;;;;restauration"],
            "seulement sur la ligne d'un enfant",
        ),
        (
            ["D1;responsable;M.;Roux;Léo;;;;;;;;;;", "D1;enfant;;Roux;Lou;01/01/1990;;;;;;;;;"],
            "moins de 25 ans",
        ),
        ([";responsable;M.;Roux;Léo;;;;;;;;;;"], "Référence famille manquante"),
    ],
)
def test_each_bad_line_refuses_its_family_with_its_reason(app, offer, lines, reason):
    with app.app_context():
        plan = plan_import(read_csv(family_lines(*lines).encode()), today_in_paris())
    (family,) = plan.families
    assert family.action == "refused"
    reasons = family.reasons + [r for line in family.lines for r in line.reasons]
    assert any(reason in r for r in reasons), reasons


def test_an_email_is_one_account_across_the_file_and_the_database(
    app, runner, offer, tmp_path, parent
):
    content = family_lines(
        "E1;responsable;M.;Roux;Léo;;leo@example.org;;;;;;;;",
        "E2;responsable;Mme;Blanc;Eva;;LEO@example.org;;;;;;;;",
        f"E3;responsable;Mme;Noir;Ida;;{parent.email};;;;;;;;",
    )
    result = import_cli(runner, write(tmp_path, content))
    assert "1 création, 0 mise à jour, 0 inchangé, 2 refusé" in result.output
    assert "déjà sur la ligne 2" in result.output
    assert "déjà celle d'un autre compte" in result.output


@pytest.mark.parametrize(
    "cell", ['=HYPERLINK("http://evil.example","x")', "+SUM(1;2)", "-2+3", "@SUM(A1)"]
)
def test_formula_injection_in_a_name_is_refused(app, offer, cell):
    escaped = '"' + cell.replace('"', '""') + '"'
    content = family_lines(f"F1;responsable;M.;{escaped};Léo;;;;;;;;;;")
    with app.app_context():
        plan = plan_import(read_csv(content.encode()), today_in_paris())
    (line,) = plan.families[0].lines
    assert plan.families[0].action == "refused"
    assert f"Le nom commence par « {cell[0]} » (formule de tableur)" in line.reasons[0]


# --- size -------------------------------------------------------------------------------------


def test_a_50_mb_upload_is_refused_before_it_is_read(app, client, auth, admin):
    auth.login(admin)
    big = HEADER.encode() + b"\n" + b"x" * (50 * 1024 * 1024)
    started = time.monotonic()
    response = upload(client, big)
    assert response.status_code == 413
    assert "Fichier trop volumineux" in text(response)
    assert time.monotonic() - started < 5


def test_a_file_over_the_import_cap_is_refused_by_the_form_and_the_command(
    app, client, auth, admin, runner, tmp_path
):
    app.config["FAMILY_IMPORT_MAX_BYTES"] = 1024
    try:
        auth.login(admin)
        content = family_lines(*["G1;responsable;M.;Roux;Léo;;;;;;;;;;"] * 60).encode()
        response = upload(client, content)
        assert response.status_code == 422 and "Le fichier dépasse" in text(response)
        result = import_cli(runner, write(tmp_path, content))
        assert result.exit_code != 0 and "Le fichier dépasse" in result.output
    finally:
        app.config.pop("FAMILY_IMPORT_MAX_BYTES")


def test_an_unreadable_upload_gets_its_message_and_nothing_is_kept(app, client, auth, admin):
    auth.login(admin)
    response = upload(client, b"\x00\x01binary")
    assert response.status_code == 422 and "n'est pas un fichier texte CSV" in text(response)
    assert post(client, "/admin/familles/import", {}).status_code == 422
    with client.session_transaction() as session:
        assert "family_import_file" not in session


# --- access -----------------------------------------------------------------------------------


def test_import_and_welcome_are_for_administrators(app, client, auth, staff, parent):
    for path in ("/admin/familles/import",):
        assert client.get(path).status_code == 302  # anonymous → login
    auth.login(staff)
    assert client.get("/admin/familles/import").status_code == 403
    assert upload(client, SAMPLE.read_bytes()).status_code == 403
    assert post(client, "/admin/familles/bienvenue").status_code == 403
    assert post(client, "/admin/familles/import/confirmer", {"cle": "x"}).status_code == 403
    auth.logout()
    auth.login(parent)
    assert client.get("/admin/familles/import").status_code == 403


def test_posts_need_the_csrf_token(app, client, auth, admin):
    auth.login(admin)
    assert client.post("/admin/familles/bienvenue").status_code == 400
    response = client.post(
        "/admin/familles/import",
        data={"fichier": (io.BytesIO(SAMPLE.read_bytes()), "f.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code in (400, 422)
    with client.session_transaction() as session:
        assert "family_import_file" not in session


# --- imported adults: activation and the welcome e-mail ---------------------------------------


def link_in(message) -> str:
    match = re.search(r"http://localhost(/\S+)", message.body)
    assert match, message.body
    return match.group(1)


def test_an_imported_adult_is_told_at_login_then_uses_the_forgotten_password_page(
    app, client, auth, runner, offer, outbox
):
    import_cli(runner, SAMPLE)
    email = "amelie.lefevre@example.org"
    failed = text(auth.login(email=email, password="une phrase au hasard"))
    assert "Votre compte est déjà créé" in failed
    # The same words for an address nobody has: nothing is given away.
    unknown = text(auth.login(email="personne@example.org", password="une phrase au hasard"))
    assert "Votre compte est déjà créé" in unknown

    post(client, "/mot-de-passe-oublie", {"email": email})
    assert outbox[-1].subject == "Activez votre espace"
    link = link_in(outbox[-1])
    assert post(client, link, {"password": "ma phrase de passe choisie"}).status_code == 303
    assert auth.login(email=email, password="ma phrase de passe choisie").status_code == 303
    assert "Zoé" in text(client.get("/mon-foyer"))


def test_signing_up_again_tells_an_imported_adult_their_account_exists(
    app, client, runner, offer, outbox
):
    import_cli(runner, SAMPLE)
    response = post(
        client,
        "/creer-mon-espace",
        {
            "email": "amelie.lefevre@example.org",
            "password": "ma phrase de passe choisie",
            "first_name": "Amélie",
            "last_name": "L",
        },
    )
    assert response.status_code == 303
    (message,) = [m for m in outbox if m.recipients == ["amelie.lefevre@example.org"]]
    assert "Votre compte est déjà créé" in message.body


def test_the_welcome_run_mails_each_imported_adult_once_with_progress(
    app, client, auth, admin, runner, offer, outbox
):
    import_cli(runner, SAMPLE)
    auth.login(admin)
    page = text(client.get("/admin/familles/import"))
    assert "13 comptes importés à prévenir" in page

    response = post(client, "/admin/familles/bienvenue")
    assert response.status_code == 303
    page = text(client.get(response.headers["Location"]))
    assert "13 e-mail(s) de bienvenue envoyé(s)" in page
    assert "0 compte importé à prévenir" in page
    welcome = [m for m in outbox if m.subject.startswith("Votre espace famille est prêt")]
    assert len(welcome) == 13 and len({m.recipients[0] for m in welcome}) == 13
    with app.app_context():
        run = db.session.scalar(select(JobRun).where(JobRun.kind == "families-welcome"))
        assert (run.status, run.done, run.total, run.actor_id) == ("done", 13, 13, admin.id)
        assert (
            db.session.scalar(select(func.count(User.id)).where(User.welcomed_at.is_not(None)))
            == 13
        )
    fragment = text(
        client.get(f"/admin/familles/bienvenue/{run.id}", headers={"HX-Request": "true"})
    )
    assert "13 e-mail(s) de bienvenue" in fragment and "data-hx-trigger" not in fragment

    # Again: nobody gets a second one.
    post(client, "/admin/familles/bienvenue")
    assert len([m for m in outbox if m.subject.startswith("Votre espace famille")]) == 13

    # The welcome link sets the password, for days; once used it is dead.
    auth.logout()
    message = next(m for m in welcome if m.recipients == ["louis.bernard@example.org"])
    link = link_in(message)
    assert "Activer mon espace" in text(client.get(link))
    assert post(client, link, {"password": "ma phrase de passe choisie"}).status_code == 303
    assert (
        auth.login(
            email="louis.bernard@example.org", password="ma phrase de passe choisie"
        ).status_code
        == 303
    )
    auth.logout()
    assert "Ce lien n'est plus valable" in text(client.get(link))


def test_the_welcome_progress_is_polled_while_the_run_is_running(app, client, auth, admin):
    from citoyens import jobs
    from citoyens.households.welcome import progress_key

    with app.app_context():
        run = JobRun(kind="families-welcome", key="imported", status="running")
        db.session.add(run)
        db.session.commit()
        run_id = run.id
        jobs.huey.put(progress_key(run_id), (4, 10))
    auth.login(admin)
    fragment = text(
        client.get(f"/admin/familles/bienvenue/{run_id}", headers={"HX-Request": "true"})
    )
    assert "4 e-mails sur 10" in fragment and 'data-hx-trigger="every 2s"' in fragment
    assert client.get("/admin/familles/bienvenue/999999").status_code == 404
    with app.app_context():
        jobs.huey.delete(progress_key(run_id))
