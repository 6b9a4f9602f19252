"""Schools in the back office (issue 3): administrators list, add, edit and deactivate them."""

from __future__ import annotations

import html
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from citoyens.core.models import AuditEvent
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.households.models import Person
from citoyens.services.models import School
from tests.conftest import counted_queries, post
from tests.factories import make_user
from tests.households_factories import add_member, make_school

ADD_CHILD = "/mon-foyer/ajouter/enfant"


def logged_in(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303, "test account could not log in"
    return client


def school_form(**overrides) -> dict:
    data = {
        "name": "École Saint-Joseph",
        "kind": "private",
        "address": "2 rue de l'Église",
        "canteen_contact": "OGEC Saint-Joseph, 02 41 00 00 00",
    }
    data.update(overrides)
    return data


def school(app, school_id: int) -> School:
    with app.app_context():
        found = db.session.get(School, school_id)
        db.session.expunge_all()
        return found


def school_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(School))


def school_named(app, name: str) -> School | None:
    with app.app_context():
        found = db.session.scalar(select(School).where(School.name == name))
        db.session.expunge_all()
        return found


def audit_actions(app, school_id: int) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.target == f"school:{school_id}")
                .order_by(AuditEvent.id)
            )
        )


def text_of(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def admin_client(app, admin):
    return logged_in(app, admin)


def school_routes(school_id: int) -> list[tuple[str, str, dict]]:
    """Every school route: (method, path, form data that would be valid)."""
    return [
        ("GET", "/admin/ecoles", {}),
        ("GET", "/admin/ecoles/nouvelle", {}),
        ("POST", "/admin/ecoles/nouvelle", school_form()),
        ("GET", f"/admin/ecoles/{school_id}/modifier", {}),
        ("POST", f"/admin/ecoles/{school_id}/modifier", school_form()),
        ("POST", f"/admin/ecoles/{school_id}/activation", {"active": "0"}),
    ]


def send(client, method: str, path: str, data: dict):
    return client.get(path) if method == "GET" else post(client, path, data)


# --- The administrator's journey -------------------------------------------------------------


def test_admin_adds_a_private_school(app, admin_client):
    assert admin_client.get("/admin/ecoles/nouvelle").status_code == 200
    response = post(admin_client, "/admin/ecoles/nouvelle", school_form())
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/admin/ecoles"
    created = school_named(app, "École Saint-Joseph")
    assert (created.kind, created.address, created.canteen_contact, created.active) == (
        "private",
        "2 rue de l'Église",
        "OGEC Saint-Joseph, 02 41 00 00 00",
        True,
    )
    assert audit_actions(app, created.id) == ["school.created"]
    page = text_of(admin_client.get("/admin/ecoles"))
    assert "École Saint-Joseph" in page and "Privée" in page and "OGEC Saint-Joseph" in page


def test_public_school_needs_no_canteen_contact(app, admin_client):
    data = school_form(name="École Jules-Ferry", kind="public", canteen_contact="", address="")
    assert post(admin_client, "/admin/ecoles/nouvelle", data).status_code == 303
    created = school_named(app, "École Jules-Ferry")
    assert (created.kind, created.canteen_contact, created.address) == ("public", None, None)
    assert "Publique" in text_of(admin_client.get("/admin/ecoles"))


def test_admin_edits_a_school(app, admin_client):
    school_id = make_school(app, "École des Tilleuls")
    page = text_of(admin_client.get(f"/admin/ecoles/{school_id}/modifier"))
    assert 'value="École des Tilleuls"' in page
    response = post(
        admin_client,
        f"/admin/ecoles/{school_id}/modifier",
        school_form(name="École des Tilleuls", canteen_contact="OGEC des Tilleuls"),
    )
    assert response.status_code == 303
    edited = school(app, school_id)
    assert (edited.name, edited.kind, edited.canteen_contact) == (
        "École des Tilleuls",
        "private",
        "OGEC des Tilleuls",
    )
    assert audit_actions(app, school_id) == ["school.updated"]


def test_saving_an_unchanged_school_logs_nothing(app, admin_client):
    school_id = make_school(app, "École du Parc")
    data = {"name": "École du Parc", "kind": "public", "address": "", "canteen_contact": ""}
    response = post(admin_client, f"/admin/ecoles/{school_id}/modifier", data)
    assert response.status_code == 303
    assert audit_actions(app, school_id) == []


def test_admin_deactivates_then_reactivates_a_school(app, admin_client):
    school_id = make_school(app, "École du Bourg")
    response = post(admin_client, f"/admin/ecoles/{school_id}/activation", {"active": "0"})
    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/admin/ecoles"
    assert school(app, school_id).active is False
    assert "Désactivée" in text_of(admin_client.get("/admin/ecoles"))
    # A double click changes nothing more.
    post(admin_client, f"/admin/ecoles/{school_id}/activation", {"active": "0"})
    assert post(
        admin_client, f"/admin/ecoles/{school_id}/activation", {"active": "1"}
    ).status_code == (303)
    assert school(app, school_id).active is True
    assert audit_actions(app, school_id) == ["school.deactivated", "school.activated"]


def test_activation_with_a_forged_value_is_400(app, admin_client):
    school_id = make_school(app)
    for data in ({}, {"active": "maybe"}):
        response = post(admin_client, f"/admin/ecoles/{school_id}/activation", data)
        assert response.status_code == 400
    assert school(app, school_id).active is True


def test_list_counts_children_in_a_constant_number_of_queries(app, admin_client):
    family = make_user(app, role="parent")
    first = make_school(app, "École A")
    add_member(app, family.household_id, "child", school_id=first)
    add_member(app, family.household_id, "child", school_id=first)
    add_member(app, family.household_id, "child", school_id=first, left_at=utcnow())
    admin_client.get("/admin/ecoles")
    with counted_queries(app) as one:
        admin_client.get("/admin/ecoles")
    for n in range(4):
        other = make_school(app, f"École B{n}")
        add_member(app, family.household_id, "child", school_id=other)
    with counted_queries(app) as five:
        page = admin_client.get("/admin/ecoles").get_data(as_text=True)
    assert len(one) == len(five)
    # Two current children at École A (the one who left the household is not counted).
    assert "<td>2</td>" in page
    assert page.count("<td>1</td>") == 4


@pytest.mark.parametrize(
    "path", ["/admin/ecoles/999/modifier", "/admin/ecoles/99999999999/modifier"]
)
def test_unknown_school_is_404(app, admin_client, path):
    assert admin_client.get(path).status_code == 404
    assert post(admin_client, path, school_form()).status_code == 404
    toggle = path.replace("modifier", "activation")
    assert post(admin_client, toggle, {"active": "0"}).status_code == 404


# --- Who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "parent"])
def test_agents_and_parents_get_403_on_every_school_route(app, role):
    school_id = make_school(app, "École Interdite")
    client = logged_in(app, make_user(app, role=role))
    before = school_count(app)
    for method, path, data in school_routes(school_id):
        assert send(client, method, path, data).status_code == 403, (method, path)
    assert school_count(app) == before
    assert school(app, school_id).active is True
    assert school(app, school_id).name == "École Interdite"


def test_anonymous_is_sent_to_the_login_page(app, client):
    school_id = make_school(app)
    for method, path, data in school_routes(school_id):
        response = send(client, method, path, data)
        assert response.status_code in (302, 303), (method, path)
        assert urlsplit(response.headers["Location"]).path == "/connexion", (method, path)


def test_post_without_csrf_token_is_400_and_saves_nothing(app, admin_client):
    school_id = make_school(app, "École Sans Jeton")
    before = school_count(app)
    for method, path, data in school_routes(school_id):
        if method == "POST":
            response = admin_client.post(path, data=data)
            assert response.status_code == 400, path
            assert "Le formulaire a expiré" in response.get_data(as_text=True)
    assert school_count(app) == before
    assert (school(app, school_id).name, school(app, school_id).active) == (
        "École Sans Jeton",
        True,
    )


# --- Bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": ""}, "Le nom est obligatoire."),
        ({"name": "   "}, "Le nom est obligatoire."),
        ({"name": "x" * 10_000}, "Le nom ne peut pas dépasser 120 caractères."),
        ({"name": "École\x00Saint-Joseph"}, "Le nom contient des caractères non autorisés."),
        ({"canteen_contact": ""}, "Indiquez qui gère la cantine (OGEC) pour une école privée."),
        ({"canteen_contact": "c" * 256}, "255 caractères"),
        ({"canteen_contact": "OGEC\x00"}, "caractères non autorisés"),
        ({"address": "a" * 10_000}, "L'adresse ne peut pas dépasser 255 caractères."),
        ({"address": "1 rue\x00"}, "L'adresse contient des caractères non autorisés."),
        ({"kind": "planet"}, "Choisissez « Publique » ou « Privée »."),
        ({"kind": ""}, "Choisissez « Publique » ou « Privée »."),
    ],
)
def test_bad_school_forms_save_nothing(app, admin_client, overrides, message):
    before = school_count(app)
    response = post(admin_client, "/admin/ecoles/nouvelle", school_form(**overrides))
    assert response.status_code == 422
    assert message in text_of(response)
    assert school_count(app) == before


@pytest.mark.parametrize(
    "name", ["école des tilleuls", "ÉCOLE DES TILLEULS", " École des Tilleuls "]
)
def test_school_name_is_unique_whatever_the_case(app, admin_client, name):
    make_school(app, "École des Tilleuls")
    before = school_count(app)
    response = post(admin_client, "/admin/ecoles/nouvelle", school_form(name=name))
    assert response.status_code == 422
    assert "Ce nom d'école existe déjà." in text_of(response)
    assert school_count(app) == before


def test_renaming_onto_another_school_saves_nothing(app, admin_client):
    make_school(app, "École du Centre")
    school_id = make_school(app, "École du Port")
    response = post(
        admin_client, f"/admin/ecoles/{school_id}/modifier", school_form(name="école du centre")
    )
    assert response.status_code == 422
    assert "Ce nom d'école existe déjà." in text_of(response)
    assert (school(app, school_id).name, school(app, school_id).kind) == ("École du Port", "public")
    assert audit_actions(app, school_id) == []


def test_a_private_school_edited_without_canteen_contact_saves_nothing(app, admin_client):
    school_id = make_school(app, "École du Lac")
    response = post(
        admin_client,
        f"/admin/ecoles/{school_id}/modifier",
        school_form(name="École du Lac", canteen_contact=""),
    )
    assert response.status_code == 422
    assert "Indiquez qui gère la cantine (OGEC) pour une école privée." in text_of(response)
    assert school(app, school_id).kind == "public"


# --- What families see -----------------------------------------------------------------------


def test_deactivated_school_leaves_the_child_form_but_children_keep_it(app, admin_client, parent):
    school_id = make_school(app, "École des Vignes")
    child_id = add_member(app, parent.household_id, "child", school_id=school_id)
    family = logged_in(app, parent)
    assert f'<option value="{school_id}">' in family.get(ADD_CHILD).get_data(as_text=True)

    post(admin_client, f"/admin/ecoles/{school_id}/activation", {"active": "0"})
    page = family.get(ADD_CHILD).get_data(as_text=True)
    assert f'value="{school_id}"' not in page
    assert "École des Vignes" not in html.unescape(page)
    with app.app_context():
        assert db.session.get(Person, child_id).school_id == school_id
    assert "<td>1</td>" in admin_client.get("/admin/ecoles").get_data(as_text=True)

    post(admin_client, f"/admin/ecoles/{school_id}/activation", {"active": "1"})
    assert f'<option value="{school_id}">' in family.get(ADD_CHILD).get_data(as_text=True)


def test_a_child_keeps_a_deactivated_school_when_the_parent_edits_them(app, client, auth, parent):
    from citoyens.households.models import HouseholdMember, Person
    from citoyens.services.models import School

    with app.app_context():
        school = School(name="École fermée", kind="public", active=False)
        db.session.add(school)
        db.session.flush()
        child = db.session.scalar(
            db.select(Person)
            .join(HouseholdMember)
            .where(
                HouseholdMember.household_id == parent.household_id, HouseholdMember.role == "child"
            )
        )
        child.school_id = school.id
        db.session.commit()
        child_id, school_id = child.id, school.id
    auth.login(parent)
    page = client.get(f"/mon-foyer/membres/{child_id}/modifier").get_data(as_text=True)
    assert f'value="{school_id}" selected' in page or f'selected value="{school_id}"' in page
