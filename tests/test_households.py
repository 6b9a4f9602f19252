"""Household ("Mon foyer"): rules, forms, access, removal requests, invitations, back office.

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.extensions import db, limiter
from citoyens.forms import format_phone, normalize_phone, today_in_paris
from citoyens.households import rules
from citoyens.households.models import Household, HouseholdMember, Invitation, Person
from citoyens.requests.models import Request
from citoyens.requests.operations import change_status
from tests.conftest import counted_queries, post
from tests.factories import make_user
from tests.households_factories import (
    TOWN_HALL,
    account_person_id,
    add_member,
    changes,
    counts,
    history_text,
    make_commune,
    make_school,
    person_ids,
    share_person,
)

TODAY = today_in_paris()
TOMORROW = (TODAY + timedelta(days=1)).isoformat()
LONG = "x" * 10_000

HOUSEHOLD = {
    "address_line": "1 rue de l'Exemple",
    "address_extra": "",
    "postcode": "49290",
    "city": "Chalonnes-sur-Loire",
    "family_quotient": "850",
    "paperless_invoices": "y",
}
ADULT = {
    "civility": "Mme",
    "first_name": "Alex",
    "last_name": "Durand",
    "birth_date": "1985-06-01",
    "email": "alex.durand@example.org",
    "mobile_phone": "06 12 34 56 78",
    "home_phone": "",
    "work_phone": "",
    "address_line": "",
    "postcode": "",
    "city": "",
}
CHILD = {
    "first_name": "Léa",
    "last_name": "Martin",
    "birth_date": "2017-09-03",
    "sex": "F",
    "school_id": "",
    "class_level": "CE1",
    "diet": "",
    "allergies": "",
    "doctor_name": "",
    "doctor_phone": "",
}
CONTACT = {
    "first_name": "Mamie",
    "last_name": "Martin",
    "relationship_label": "Grand-mère",
    "mobile_phone": "",
    "home_phone": "02 61 91 00 02",
    "can_pick_up": "y",
    "emergency_contact": "y",
}
FORMS = {"adulte": ADULT, "enfant": CHILD, "contact": CONTACT}


def years_ago(years: int, days: int = 0) -> str:
    return (
        date(TODAY.year - years, TODAY.month, min(TODAY.day, 28)) - timedelta(days=days)
    ).isoformat()


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def staff(app):
    """The back office account of these tests: an administrator, who sees every family.
    What an agent sees is checked in tests/test_staff_scope.py."""
    return make_user(app, role="admin")


@pytest.fixture
def family(client, auth, parent):
    """A logged-in parent (household with the parent and two children)."""
    auth.login(parent)
    return parent


# --- Rules, without HTTP -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored", "shown"),
    [
        ("06 12 34 56 78", "+33612345678", "06 12 34 56 78"),
        ("0612345678", "+33612345678", "06 12 34 56 78"),
        ("+33 6 12 34 56 78", "+33612345678", "06 12 34 56 78"),
        ("0033612345678", "+33612345678", "06 12 34 56 78"),
        ("02.61.91.00.02", "+33261910002", "02 61 91 00 02"),
        ("+44 20 7946 0958", "+442079460958", "+44 20 7946 0958"),
    ],
)
def test_phone_numbers_are_stored_e164_and_shown_french_style(typed, stored, shown):
    assert normalize_phone(typed) == stored
    assert format_phone(stored) == shown


@pytest.mark.parametrize("typed", ["12", "0000000000", "06 12 34", "abc", "+33 6", "0" * 60, ""])
def test_invalid_phone_numbers_are_refused(typed):
    with pytest.raises(ValueError, match="numéro de téléphone valide"):
        normalize_phone(typed)


def test_checklist_of_a_new_household_is_empty(app, parent):
    with app.app_context():
        assert rules.checklist(parent.household_id) == {
            "civil_status_checked": False,
            "entourage_complete": False,
        }


def test_checklist_adult_with_phone_and_emergency_contact(app, parent):
    adult_id = account_person_id(app, parent.id)
    add_member(
        app, parent.household_id, "contact", home_phone="+33261910002", emergency_contact=True
    )
    with app.app_context():
        assert rules.checklist(parent.household_id)["entourage_complete"] is False  # no phone yet
        db.session.get(Person, adult_id).mobile_phone = "+33612345678"
        db.session.commit()
        assert rules.checklist(parent.household_id)["entourage_complete"] is True


def test_checklist_second_adult_is_a_backup(app, parent):
    with app.app_context():
        db.session.get(Person, account_person_id(app, parent.id)).mobile_phone = "+33612345678"
        db.session.commit()
    add_member(app, parent.household_id, "adult")
    with app.app_context():
        assert rules.checklist(parent.household_id)["entourage_complete"] is True


def test_checklist_emergency_contact_needs_a_phone_and_to_be_current(app, parent):
    with app.app_context():
        db.session.get(Person, account_person_id(app, parent.id)).mobile_phone = "+33612345678"
        db.session.commit()
    add_member(app, parent.household_id, "contact", emergency_contact=True)
    with app.app_context():
        assert rules.checklist(parent.household_id)["entourage_complete"] is False
    add_member(
        app,
        parent.household_id,
        "contact",
        home_phone="+33261910002",
        emergency_contact=True,
        left_at=db_now(),
    )
    with app.app_context():
        assert rules.checklist(parent.household_id)["entourage_complete"] is False


def test_checklist_civil_status_checked(app, parent):
    from citoyens.households import operations as ops

    with app.app_context():
        household = db.session.get(Household, parent.household_id)
        ops.confirm_civil_status(household, actor=None)
        db.session.commit()
        assert rules.checklist(parent.household_id)["civil_status_checked"] is True


def db_now():
    from citoyens.database import utcnow

    return utcnow()


def test_overview_skips_members_who_left(app, parent):
    add_member(app, parent.household_id, "child", first_name="Parti", left_at=db_now())
    with app.app_context():
        overview = rules.household_overview(parent.household_id)
    assert len(overview.children) == 2
    assert "Parti" not in [p.first_name for p in overview.children]


# --- The page ------------------------------------------------------------------------------------


def test_household_page_groups_members(app, client, family):
    add_member(app, family.household_id, "contact", first_name="Mamie", home_phone="+33261910002")
    body = text(client.get("/mon-foyer"))
    assert "<h1>Mon foyer</h1>" in body
    responsables, rest = body.split('id="responsables"')[1].split('id="enfants"')
    enfants, contacts = rest.split('id="contacts"')
    assert "Parent" in responsables
    assert "Enfant0 Test" in enfants and "Enfant1 Test" in enfants
    assert "Mamie Test" in contacts and "02 61 91 00 02" in contacts
    assert "Facture en ligne" in body and "Oui" in body  # paperless on by default
    assert "J&#39;ai vérifié l&#39;état civil" in body or "J'ai vérifié l'état civil" in body


def test_household_page_hides_members_who_left(app, client, family):
    add_member(app, family.household_id, "child", first_name="Partie", left_at=db_now())
    assert "Partie" not in text(client.get("/mon-foyer"))


def test_household_page_runs_a_constant_number_of_queries(app, client, family):
    def queries_for_page() -> int:
        with counted_queries(app) as statements:
            assert client.get("/mon-foyer").status_code == 200
        return len(statements)

    school = make_school(app)
    while len(person_ids(app, family.household_id)) < 2:
        add_member(app, family.household_id, "contact", home_phone="+33261910002")
    with app.app_context():  # start with exactly two members
        extra = person_ids(app, family.household_id)[2:]
        db.session.execute(
            HouseholdMember.__table__.delete().where(HouseholdMember.person_id.in_(extra))
        )
        db.session.commit()
    assert len(person_ids(app, family.household_id)) == 2
    with_two = queries_for_page()
    for _ in range(3):
        add_member(app, family.household_id, "child", school_id=school, allergies="arachide")
        add_member(app, family.household_id, "contact", home_phone="+33261910002", can_pick_up=True)
    assert len(person_ids(app, family.household_id)) == 8
    assert queries_for_page() == with_two
    # 9: the commune's settings (core.settings) once; 10: the unread messages of the navigation
    assert 0 < with_two <= 10, with_two


def test_civil_status_check_by_htmx_returns_the_block(app, client, family):
    response = post(client, "/mon-foyer/etat-civil-verifie", headers={"HX-Request": "true"})
    assert response.status_code == 200
    body = text(response)
    assert "<html" not in body and 'id="etat-civil"' in body and "Vérifié le" in body
    with app.app_context():
        assert db.session.get(Household, family.household_id).civil_status_checked_at
    assert changes(app, family.household_id)[-1][0] == "civil_status_checked"


def test_civil_status_check_without_javascript_redirects(app, client, family):
    response = post(client, "/mon-foyer/etat-civil-verifie")
    assert response.status_code == 303
    assert "Vérifié le" in text(client.get("/mon-foyer"))


# --- Access -------------------------------------------------------------------------------------

FAMILY_PAGES = [
    "/mon-foyer",
    "/mon-foyer/modifier",
    "/mon-foyer/ajouter/enfant",
    "/mon-foyer/inviter",
    "/mon-foyer/membres/1/modifier",
    "/mon-foyer/membres/1/retrait",
]


@pytest.mark.parametrize("path", FAMILY_PAGES)
def test_anonymous_is_sent_to_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/connexion")


@pytest.mark.parametrize("path", FAMILY_PAGES[:4])
def test_staff_gets_403_on_family_pages(client, auth, staff, path):
    auth.login(staff)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/admin/familles", "/admin/familles/1"])
def test_parent_gets_403_on_staff_pages(client, family, path):
    assert client.get(path).status_code == 403
    assert post(client, "/admin/familles/1/quotient", {"family_quotient": "1"}).status_code == 403


def test_anonymous_is_sent_to_login_from_staff_pages(client):
    response = client.get("/admin/familles")
    assert response.status_code == 302 and response.headers["Location"].startswith("/connexion")


def test_another_households_member_is_404(app, client, family):
    other = make_user(app, children=1)
    child = person_ids(app, other.household_id, "child")[0]
    before = counts(app)
    assert client.get(f"/mon-foyer/membres/{child}/modifier").status_code == 404
    assert client.get(f"/mon-foyer/membres/{child}/retrait").status_code == 404
    assert post(client, f"/mon-foyer/membres/{child}/modifier", CHILD).status_code == 404
    assert post(client, f"/mon-foyer/membres/{child}/retrait", {"reason": "x"}).status_code == 404
    assert client.get("/mon-foyer/membres/999999/modifier").status_code == 404
    assert counts(app) == before
    with app.app_context():
        assert db.session.get(Person, child).first_name == "Enfant0"


def test_member_who_left_is_404(app, client, family):
    gone = add_member(app, family.household_id, "child", left_at=db_now())
    assert client.get(f"/mon-foyer/membres/{gone}/modifier").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/mon-foyer/modifier",
        "/mon-foyer/ajouter/enfant",
        "/mon-foyer/etat-civil-verifie",
        "/mon-foyer/inviter",
        "/mon-foyer/valider/enfant?champ=first_name",
    ],
)
def test_post_without_csrf_token_is_400(app, client, family, path):
    before = counts(app)
    response = client.post(path, data={**CHILD, **HOUSEHOLD, "email": "x@example.org"})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in text(response)
    assert counts(app) == before


def test_posted_household_role_and_ids_are_ignored(app, client, family):
    other = make_user(app)
    response = post(
        client,
        "/mon-foyer/ajouter/enfant",
        {
            **CHILD,
            "first_name": "Intrus",
            "household_id": str(other.household_id),
            "role": "adult",
            "person_id": "1",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        member = db.session.scalar(
            select(HouseholdMember).join(Person).where(Person.first_name == "Intrus")
        )
        assert member.household_id == family.household_id
        assert member.role == "child"
    assert person_ids(app, other.household_id) == person_ids(app, other.household_id, "adult")


def test_unknown_role_slug_is_404(client, family):
    assert client.get("/mon-foyer/ajouter/admin").status_code == 404


def test_shared_child_is_editable_from_both_households(app, client, auth, family):
    other = make_user(app)
    child = person_ids(app, family.household_id, "child")[0]
    share_person(app, child, other.household_id)
    auth.logout()
    auth.login(other)
    response = post(client, f"/mon-foyer/membres/{child}/modifier", {**CHILD, "first_name": "Zoé"})
    assert response.status_code == 303
    assert "Zoé" in text(client.get("/mon-foyer"))
    auth.logout()
    auth.login(family)
    assert "Zoé" in text(client.get("/mon-foyer"))
    # The change is in both households' history.
    expected = ("updated", "first_name,last_name,birth_date,sex,class_level")
    assert changes(app, family.household_id)[-1][:2] == expected
    assert changes(app, other.household_id)[-1][:2] == expected


# --- Forms: good and bad inputs -----------------------------------------------------------------


def test_add_child_saves_and_records_the_field_names(app, client, family):
    school = make_school(app, "École privée test", kind="private")
    data = {**CHILD, "school_id": str(school), "diet": "sans-porc", "pai": "y"}
    response = post(client, "/mon-foyer/ajouter/enfant", data)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/mon-foyer#membre-")
    with app.app_context():
        person = db.session.scalar(
            select(Person).where(Person.first_name == "Léa", Person.school_id == school)
        )
        assert (person.birth_date, person.sex, person.class_level) == (date(2017, 9, 3), "F", "CE1")
        assert (person.diet, person.pai) == ("sans-porc", True)
    action, fields, person_id, actor = changes(app, family.household_id)[-1]
    assert (action, person_id, actor) == ("created", person.id, family.id)
    assert fields == "first_name,last_name,birth_date,sex,school_id,class_level,diet,pai"
    body = text(client.get("/mon-foyer"))
    assert "Née le" in body and "03/09/2017" in body and "OGEC" in body


def test_add_adult_stores_phones_e164_and_shows_them_french_style(app, client, family):
    response = post(client, "/mon-foyer/ajouter/adulte", {**ADULT, "work_phone": "02.61.91.00.01"})
    assert response.status_code == 303
    with app.app_context():
        person = db.session.scalar(select(Person).where(Person.last_name == "Durand"))
        assert (person.mobile_phone, person.work_phone) == ("+33612345678", "+33261910001")
        assert person.civility == "Mme"
    body = text(client.get("/mon-foyer"))
    assert "06 12 34 56 78" in body and "02 61 91 00 01" in body
    edit = text(client.get(f"/mon-foyer/membres/{person.id}/modifier"))
    assert 'value="06 12 34 56 78"' in edit


def test_add_contact_sets_pick_up_and_emergency(app, client, family):
    assert post(client, "/mon-foyer/ajouter/contact", CONTACT).status_code == 303
    with app.app_context():
        member = db.session.scalar(
            select(HouseholdMember).join(Person).where(Person.first_name == "Mamie")
        )
        assert member.role == "contact"
        assert (member.can_pick_up, member.emergency_contact) == (True, True)
        assert member.relationship_label == "Grand-mère"
        assert member.person.home_phone == "+33261910002"


BAD_INPUTS = [
    ("adulte", {"first_name": ""}, "Le prénom est obligatoire."),
    ("adulte", {"last_name": "   "}, "Le nom est obligatoire."),
    ("adulte", {"first_name": LONG}, "Le prénom ne peut pas dépasser 100 caractères."),
    ("adulte", {"birth_date": TOMORROW}, "La date de naissance ne peut pas être dans le futur."),
    ("adulte", {"birth_date": years_ago(121)}, "ne peut pas remonter à plus de 120 ans"),
    ("adulte", {"birth_date": "31/02/2000"}, "Saisissez une date valide"),
    ("adulte", {"mobile_phone": "12"}, "Saisissez un numéro de téléphone valide"),
    ("adulte", {"work_phone": LONG}, "Le téléphone professionnel ne peut pas dépasser 40"),
    ("adulte", {"email": "pas-une-adresse"}, "Saisissez une adresse e-mail valide"),
    ("adulte", {"civility": "Dr"}, "Choisissez la civilité."),
    ("adulte", {"postcode": "4929"}, "Le code postal doit comporter 5 chiffres"),
    ("adulte", {"city": LONG}, "La commune ne peut pas dépasser 100 caractères."),
    ("enfant", {"first_name": ""}, "Le prénom est obligatoire."),
    ("enfant", {"last_name": LONG}, "Le nom ne peut pas dépasser 100 caractères."),
    ("enfant", {"birth_date": ""}, "La date de naissance est obligatoire."),
    ("enfant", {"birth_date": TOMORROW}, "La date de naissance ne peut pas être dans le futur."),
    ("enfant", {"birth_date": years_ago(26)}, "Un enfant doit être né il y a moins de 25 ans"),
    ("enfant", {"allergies": LONG}, "Le champ allergies ne peut pas dépasser 1000 caractères."),
    ("enfant", {"doctor_name": LONG}, "Le nom du médecin ne peut pas dépasser 120 caractères."),
    ("enfant", {"doctor_phone": "06 12"}, "Saisissez un numéro de téléphone valide"),
    ("enfant", {"school_id": "999999"}, "Choisissez une école de la liste."),
    ("enfant", {"school_id": "abc"}, "Choisissez une école de la liste."),
    ("enfant", {"class_level": "6e"}, "Choisissez une classe de la liste."),
    ("enfant", {"diet": "carnivore"}, "Choisissez un régime de la liste."),
    ("enfant", {"sex": "X"}, "Choisissez « Fille » ou « Garçon »."),
    ("enfant", {"first_name": "Lé\x00a"}, "Le prénom contient des caractères non autorisés."),
    ("contact", {"first_name": ""}, "Le prénom est obligatoire."),
    ("contact", {"home_phone": ""}, "Indiquez au moins un numéro de téléphone pour ce contact."),
    ("contact", {"home_phone": "0000000000"}, "Saisissez un numéro de téléphone valide"),
    ("contact", {"relationship_label": LONG}, "Le lien avec la famille ne peut pas dépasser 60"),
]


@pytest.mark.parametrize(("role_slug", "bad", "message"), BAD_INPUTS)
def test_add_member_refuses_bad_input_and_saves_nothing(
    app, client, family, role_slug, bad, message
):
    before = counts(app)
    response = post(client, f"/mon-foyer/ajouter/{role_slug}", {**FORMS[role_slug], **bad})
    assert response.status_code == 422
    body = text(response)
    assert message.replace("'", "&#39;") in body or message in body
    assert "Le formulaire contient" in body  # the error summary
    assert counts(app) == before


@pytest.mark.parametrize(
    ("role", "bad", "message"),
    [
        ("child", {"birth_date": TOMORROW}, "ne peut pas être dans le futur"),
        ("child", {"first_name": ""}, "Le prénom est obligatoire."),
        ("child", {"allergies": LONG}, "ne peut pas dépasser 1000 caractères"),
        ("contact", {"mobile_phone": "123"}, "numéro de téléphone valide"),
    ],
)
def test_edit_member_refuses_bad_input_and_changes_nothing(app, client, family, role, bad, message):
    if role == "child":
        person = person_ids(app, family.household_id, "child")[0]
        data = {**CHILD, **bad}
    else:
        person = add_member(app, family.household_id, "contact", home_phone="+33261910002")
        data = {**CONTACT, **bad}
    with app.app_context():
        snapshot = {
            c.name: getattr(db.session.get(Person, person), c.name)
            for c in Person.__table__.columns
        }
    before = counts(app)
    response = post(client, f"/mon-foyer/membres/{person}/modifier", data)
    assert response.status_code == 422
    assert message in text(response)
    assert counts(app) == before
    with app.app_context():
        after = db.session.get(Person, person)
        assert {c.name: getattr(after, c.name) for c in Person.__table__.columns} == snapshot


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"postcode": "ABCDE"}, "Le code postal doit comporter 5 chiffres"),
        ({"postcode": "٤٩٢٩٠"}, "Le code postal doit comporter 5 chiffres"),
        ({"address_line": LONG}, "L'adresse ne peut pas dépasser 200 caractères."),
        ({"city": "Chalonnes\x00"}, "La commune contient des caractères non autorisés."),
    ],
)
def test_household_form_refuses_bad_input_and_saves_nothing(app, client, family, bad, message):
    before = counts(app)
    response = post(client, "/mon-foyer/modifier", {**HOUSEHOLD, **bad})
    assert response.status_code == 422
    assert message.replace("'", "&#39;") in text(response)
    assert counts(app) == before
    with app.app_context():
        household = db.session.get(Household, family.household_id)
        assert (household.address_line, household.family_quotient) == (None, None)


def test_household_form_saves_and_unticks_paperless(app, client, family):
    data = {**HOUSEHOLD}
    del data["paperless_invoices"]  # an unticked box is not posted
    assert post(client, "/mon-foyer/modifier", data).status_code == 303
    with app.app_context():
        household = db.session.get(Household, family.household_id)
        # The QF posted with the form is ignored: a family declares it with its attestation.
        assert (household.postcode, household.family_quotient) == ("49290", None)
        assert household.paperless_invoices is False
    assert changes(app, family.household_id)[-1][:2] == (
        "updated",
        "address_line,postcode,city,paperless_invoices",
    )
    assert "vous recevez vos factures sur papier" in text(client.get("/mon-foyer"))
    # The same form again changes nothing and records nothing.
    before = counts(app)
    assert post(client, "/mon-foyer/modifier", data).status_code == 303
    assert counts(app) == before


def test_history_keeps_field_names_never_health_values(app, client, family):
    child = person_ids(app, family.household_id, "child")[0]
    secret = "allergie-secrete-arachide-kiwi"
    data = {**CHILD, "allergies": secret, "doctor_name": "Dr Secret", "diet": "vegetarien"}
    assert post(client, f"/mon-foyer/membres/{child}/modifier", data).status_code == 303
    data = {**data, "allergies": secret + " et lait"}
    assert post(client, f"/mon-foyer/membres/{child}/modifier", data).status_code == 303
    history = changes(app, family.household_id)
    assert (
        history[-2][1]
        == "first_name,last_name,birth_date,sex,class_level,allergies,diet,doctor_name"
    )
    assert history[-1][1] == "allergies"
    written = history_text(app)
    assert secret not in written and "Dr Secret" not in written and "vegetarien" not in written


def test_staff_see_the_history(app, client, auth, family, staff):
    child = person_ids(app, family.household_id, "child")[0]
    post(client, f"/mon-foyer/membres/{child}/modifier", {**CHILD, "allergies": "kiwi"})
    auth.logout()
    auth.login(staff)
    body = text(client.get(f"/admin/familles/{family.household_id}"))
    assert "Historique des modifications" in body
    assert "allergies" in body and "Modification" in body and "Léa Martin" in body
    assert "kiwi" not in body


# --- Inline validation (htmx) ------------------------------------------------------------------


def test_inline_validation_returns_only_the_field_with_its_error(client, family):
    response = post(
        client,
        "/mon-foyer/valider/enfant?champ=birth_date",
        {**CHILD, "birth_date": TOMORROW},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    body = text(response)
    assert "<html" not in body and "<form" not in body
    assert 'id="birth_date"' in body and 'aria-invalid="true"' in body
    assert "La date de naissance ne peut pas être dans le futur." in body
    assert 'id="annonce-validation" data-hx-swap-oob="innerHTML"' in body
    assert 'id="first_name"' not in body  # only the one field
    assert "HX-Request" in response.headers["Vary"]


def test_inline_validation_of_a_valid_field_has_no_error(client, family):
    response = post(
        client,
        "/mon-foyer/valider/contact?champ=mobile_phone",
        {**CONTACT, "mobile_phone": "0612345678"},
        headers={"HX-Request": "true"},
    )
    body = text(response)
    assert "has-error" not in body and 'value="06 12 34 56 78"' in body


def test_forms_carry_inline_validation_attributes(client, family):
    body = text(client.get("/mon-foyer/ajouter/enfant"))
    assert 'data-hx-post="/mon-foyer/valider/enfant?champ=first_name"' in body
    assert 'data-hx-target="closest .field"' in body and 'aria-live="polite"' in body


@pytest.mark.parametrize(
    "path",
    ["/mon-foyer/valider/inconnu?champ=first_name", "/mon-foyer/valider/enfant?champ=csrf_token"],
)
def test_inline_validation_of_unknown_form_or_field_is_404(client, family, path):
    assert post(client, path, CHILD, headers={"HX-Request": "true"}).status_code == 404


# --- Removal requests --------------------------------------------------------------------------


def removal_request(app, person_id: int) -> Request | None:
    with app.app_context():
        return db.session.scalar(
            select(Request).where(Request.kind == "member_removal", Request.person_id == person_id)
        )


def test_removal_request_opens_a_request_and_mails_the_mailboxes(app, client, family, outbox):
    make_commune(app)
    child = person_ids(app, family.household_id, "child")[0]
    response = post(client, f"/mon-foyer/membres/{child}/retrait", {"reason": "Déménagement"})
    assert response.status_code == 303
    with app.app_context():
        request = db.session.scalar(
            select(Request).where(Request.kind == "member_removal", Request.person_id == child)
        )
        assert request.household_id == family.household_id
        assert request.status == "sent"
        assert request.title == "Retirer Enfant0 Test du foyer"
        assert request.created_by_id == family.id
        assert request.events[0].body == "Déménagement"
    assert [m.recipients for m in outbox] == [[TOWN_HALL]]
    assert "Enfant0 Test" in outbox[0].body and "Déménagement" not in outbox[0].body
    assert changes(app, family.household_id)[-1][:3] == ("removal_requested", None, child)
    assert "Retrait demandé" in text(client.get("/mon-foyer"))


def test_second_removal_request_for_the_same_person_is_refused(app, client, family, outbox):
    make_commune(app)
    child = person_ids(app, family.household_id, "child")[0]
    assert post(client, f"/mon-foyer/membres/{child}/retrait").status_code == 303
    before = counts(app)
    response = post(client, f"/mon-foyer/membres/{child}/retrait", {"reason": "encore"})
    assert response.status_code == 422
    assert "Une demande de retrait de Enfant0 Test est déjà en cours" in text(response)
    assert counts(app) == before
    assert len(outbox) == 1


def test_account_holder_cannot_ask_for_their_own_removal(app, client, family):
    me = account_person_id(app, family.id)
    page = text(client.get(f"/mon-foyer/membres/{me}/retrait"))
    assert "vous ne pouvez pas demander votre propre retrait" in page
    before = counts(app)
    response = post(client, f"/mon-foyer/membres/{me}/retrait")
    assert response.status_code == 422
    assert "titulaire de cet espace" in text(response)
    assert counts(app) == before


def test_removal_reason_too_long_is_refused(app, client, family):
    child = person_ids(app, family.household_id, "child")[0]
    before = counts(app)
    response = post(client, f"/mon-foyer/membres/{child}/retrait", {"reason": LONG})
    assert response.status_code == 422
    assert "Le motif ne peut pas dépasser 1000 caractères." in text(response)
    assert counts(app) == before


def test_staff_acceptance_ends_the_membership_and_keeps_history(app, client, auth, family, staff):
    make_commune(app)
    child = person_ids(app, family.household_id, "child")[0]
    post(client, f"/mon-foyer/membres/{child}/retrait")
    with app.app_context():
        request = db.session.scalar(select(Request).where(Request.person_id == child))
        change_status(request, "accepted", actor=db.session.get(User, staff.id))
        db.session.commit()
        member = db.session.scalar(
            select(HouseholdMember).where(
                HouseholdMember.household_id == family.household_id,
                HouseholdMember.person_id == child,
            )
        )
        assert member.left_at is not None
        assert db.session.get(Person, child) is not None  # nobody is deleted
    assert changes(app, family.household_id)[-1][:4] == ("removed", None, child, staff.id)
    client.get("/mon-foyer")  # shows (and consumes) the flash message of the request
    page = text(client.get("/mon-foyer"))
    assert "Enfant0 Test" not in page and "Enfant1 Test" in page
    assert f'id="membre-{child}"' not in page
    assert client.get(f"/mon-foyer/membres/{child}/modifier").status_code == 404
    auth.logout()
    auth.login(staff)
    body = text(client.get(f"/admin/familles/{family.household_id}"))
    assert "Enfant0 Test" in body and "A quitté le foyer le" in body and "Retrait du foyer" in body


def test_staff_refusal_changes_nothing(app, client, family, staff):
    make_commune(app)
    child = person_ids(app, family.household_id, "child")[0]
    post(client, f"/mon-foyer/membres/{child}/retrait")
    with app.app_context():
        request = db.session.scalar(select(Request).where(Request.person_id == child))
        change_status(request, "refused", actor=db.session.get(User, staff.id), message="Non")
        db.session.commit()
    assert "Enfant0 Test" in text(client.get("/mon-foyer"))
    assert changes(app, family.household_id)[-1][0] == "removal_requested"
    # Once refused, a new request may be made.
    assert post(client, f"/mon-foyer/membres/{child}/retrait").status_code == 303


def test_removed_adult_loses_access_to_the_household(app, client, auth, family, staff):
    make_commune(app)
    second = make_user(app)
    with app.app_context():  # move the second account's adult into the family's household
        user = db.session.get(User, second.id)
        db.session.add(
            HouseholdMember(
                household_id=family.household_id, person_id=user.person_id, role="adult"
            )
        )
        user.household_id = family.household_id
        db.session.commit()
        person = user.person_id
    post(client, f"/mon-foyer/membres/{person}/retrait")
    with app.app_context():
        request = db.session.scalar(select(Request).where(Request.person_id == person))
        change_status(request, "accepted", actor=db.session.get(User, staff.id))
        db.session.commit()
        assert db.session.get(User, second.id).household_id is None


# --- Invitations -------------------------------------------------------------------------------

LINK = re.compile(r"http://localhost(/invitation/[A-Za-z0-9_.\-]+)")


def invite(client, email="autre.parent@example.org", **extra):
    return post(
        client,
        "/mon-foyer/inviter",
        {"first_name": "Sam", "last_name": "Martin", "email": email, "person_id": "", **extra},
    )


def test_invitation_full_flow(app, client, auth, family, outbox):
    response = invite(client)
    assert response.status_code == 303
    assert [m.recipients for m in outbox] == [["autre.parent@example.org"]]
    path = LINK.search(outbox[0].body).group(1)
    with app.app_context():
        invitation = db.session.scalar(select(Invitation))
        person = db.session.get(Person, invitation.person_id)
        assert (person.first_name, person.email) == ("Sam", "autre.parent@example.org")
        assert invitation.household_id == family.household_id
    assert "Sam Martin" in text(client.get("/mon-foyer"))
    assert "autre.parent@example.org" in text(client.get("/mon-foyer"))  # pending invitation
    assert changes(app, family.household_id)[-1][0] == "invited"
    auth.logout()

    before = counts(app)
    for _ in range(2):  # GET shows the form and changes nothing
        page = client.get(path)
        assert page.status_code == 200 and "Créer mon espace" in text(page)
    assert counts(app) == before
    weak = post(client, path, {"password": "court"})
    assert weak.status_code == 422 and "au moins 12 caractères" in text(weak)
    assert counts(app) == before
    response = post(client, path, {"password": "une autre phrase assez longue"})
    assert response.status_code == 303 and response.headers["Location"] == "/connexion"
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "autre.parent@example.org"))
        assert (user.role, user.household_id, user.person_id) == (
            "parent",
            family.household_id,
            person.id,
        )
        assert user.confirmed_at is not None
        assert db.session.get(Invitation, invitation.id).accepted_at is not None
    login = post(
        client,
        "/connexion",
        {"email": "autre.parent@example.org", "password": "une autre phrase assez longue"},
    )
    assert login.status_code == 303
    page = text(client.get("/mon-foyer"))
    assert "Enfant0 Test" in page and "Vous" in page


def test_invitation_link_works_once(app, client, auth, family, outbox):
    invite(client)
    path = LINK.search(outbox[0].body).group(1)
    auth.logout()
    assert post(client, path, {"password": "une autre phrase assez longue"}).status_code == 303
    before = counts(app)
    again = client.get(path)
    assert again.status_code == 404 and "Lien d'invitation invalide" in text(again)
    assert post(client, path, {"password": "encore une autre phrase"}).status_code == 404
    assert counts(app) == before


def test_expired_invitation_link_is_refused(app, client, auth, family, outbox, monkeypatch):
    invite(client)
    path = LINK.search(outbox[0].body).group(1)
    auth.logout()
    monkeypatch.setitem(app.config, "INVITATION_TOKEN_MAX_AGE", timedelta(seconds=-1))
    before = counts(app)
    assert client.get(path).status_code == 404
    assert post(client, path, {"password": "une autre phrase assez longue"}).status_code == 404
    assert counts(app) == before


@pytest.mark.parametrize("token", ["x", "eyJpIjoxfQ.forged.signature"])
def test_forged_invitation_link_is_refused(client, token):
    assert client.get(f"/invitation/{token}").status_code == 404


def test_invitation_to_an_existing_account_answers_the_same_but_sends_no_link(
    app, client, family, outbox
):
    # The form must not tell whether an address has an account (enumeration).
    other = make_user(app)
    known = invite(client, email=other.email.upper())
    assert known.status_code == 303
    assert f"Invitation envoyée à {other.email}." in text(client.get(known.headers["Location"]))
    new = invite(client, email="personne.inconnue@example.org")
    assert new.status_code == 303 and known.headers["Location"] == new.headers["Location"]
    assert "Invitation envoyée à personne.inconnue@example.org." in text(
        client.get(new.headers["Location"])
    )
    to_known = next(m for m in outbox if m.recipients == [other.email])
    assert "déjà un espace" in to_known.body and not LINK.search(to_known.body)


def test_invitation_of_an_adult_already_in_the_household(app, client, family, outbox):
    adult = add_member(app, family.household_id, "adult", first_name="Dominique")
    page = text(client.get("/mon-foyer/inviter"))
    assert f'<option value="{adult}">Dominique Test</option>' in page
    before = counts(app)
    assert invite(client, person_id=str(adult), first_name="", last_name="").status_code == 303
    after = counts(app)
    assert after["people"] == before["people"] and after["invitations"] == before["invitations"] + 1
    with app.app_context():
        assert db.session.scalar(select(Invitation.person_id)) == adult


def test_invitation_of_someone_outside_the_household_is_refused(app, client, family):
    other = make_user(app)
    stranger = account_person_id(app, other.id)
    before = counts(app)
    response = invite(client, person_id=str(stranger))
    assert response.status_code == 422
    assert "Choisissez une personne de la liste." in text(response)
    assert counts(app) == before


def test_invitation_needs_a_name_for_a_new_adult(app, client, family):
    before = counts(app)
    response = invite(client, first_name="", last_name="")
    assert response.status_code == 422
    assert "Le prénom est obligatoire pour un nouvel adulte." in text(response)
    assert counts(app) == before


def test_at_most_five_open_invitations(app, client, family, outbox):
    for i in range(5):
        assert invite(client, email=f"invite{i}@example.org").status_code == 303
    before = counts(app)
    response = invite(client, email="sixieme@example.org")
    assert response.status_code == 422
    assert "5 invitations en attente" in text(response)
    assert counts(app) == before
    assert len(outbox) == 5


# --- Back office -------------------------------------------------------------------------------


def test_staff_list_and_search_families(app, client, auth, family, staff):
    add_member(app, family.household_id, "adult", last_name="Zorglub")
    other = make_user(app, email="recherche.unique@example.org")
    auth.logout()
    auth.login(staff)
    listing = text(client.get("/admin/familles"))
    assert "Familles" in listing and "Zorglub" in listing
    found = text(client.get("/admin/familles", query_string={"q": "zorg"}))
    assert f"/admin/familles/{family.household_id}" in found
    assert f'/admin/familles/{other.household_id}"' not in found
    by_mail = text(client.get("/admin/familles", query_string={"q": "recherche.unique"}))
    assert f"/admin/familles/{other.household_id}" in by_mail
    assert f'/admin/familles/{family.household_id}"' not in by_mail
    none = text(client.get("/admin/familles", query_string={"q": "100%_introuvable"}))
    assert "Aucune famille ne correspond" in none


def test_staff_search_by_htmx_returns_the_results_block(client, auth, staff):
    auth.login(staff)
    response = client.get("/admin/familles", headers={"HX-Request": "true"})
    body = text(response)
    assert response.status_code == 200
    assert "<html" not in body and 'id="resultats"' in body


def test_staff_family_list_is_paginated_with_constant_queries(app, client, auth, staff):
    with app.app_context():
        for i in range(30):
            household = Household(city="Pagination-ville")
            household.memberships.append(
                HouseholdMember(person=Person(first_name=f"P{i}", last_name="Page"), role="adult")
            )
            db.session.add(household)
        db.session.commit()
    auth.login(staff)

    def queries(path, **params) -> tuple[int, str]:
        with counted_queries(app) as statements:
            response = client.get(path, query_string=params)
        assert response.status_code == 200
        return len(statements), text(response)

    few, _ = queries("/admin/familles", q="P1 Page")  # P1, P10…P19: 11 families
    many, first = queries("/admin/familles", q="Pagination-ville")
    assert few == many
    assert "30 familles" in first and "page 1 sur 2" in first
    _, second = queries("/admin/familles", q="Pagination-ville", page=2)
    assert "page 2 sur 2" in second and "Page précédente" in second
    # Issue 15: the search runs once, its page and total together (a window count)...
    with counted_queries(app) as statements:
        client.get("/admin/familles", query_string={"q": "pagination-VILLE"})
    assert sum(" LIKE " in s.upper() for s in statements) == 1
    # ...and a page past the end shows the last one.
    _, past = queries("/admin/familles", q="Pagination-ville", page=9)
    assert "page 2 sur 2" in past


def test_a_word_found_everywhere_asks_staff_for_a_closer_search(
    app, client, auth, staff, monkeypatch
):
    """Issue 15: a word of every address is not counted through 100,000 households: past
    SEARCH_LIMIT places, the first ones are shown and staff asked for another word; a
    rarer word beside it still finds every family it names, exactly."""
    from citoyens.formatting import number_fr
    from citoyens.households import directory

    monkeypatch.setattr(directory, "SEARCH_LIMIT", 5)
    with app.app_context():
        for i in range(12):
            household = Household(city="Grande-ville")
            household.memberships.append(
                HouseholdMember(
                    person=Person(
                        first_name=f"Q{i}", last_name="Rare" if i in (2, 9) else "Commun"
                    ),
                    role="adult",
                )
            )
            db.session.add(household)
        db.session.commit()
    auth.login(staff)

    everywhere = text(client.get("/admin/familles", query_string={"q": "grande-ville"}))
    assert "Au moins 6 familles pour « grande-ville »" in everywhere
    assert "ajoutez un mot" in everywhere and everywhere.count("Grande-ville</td>") == 6
    assert number_fr(12345) == "12\u202f345"  # French grouping for « Au moins … »

    both = text(client.get("/admin/familles", query_string={"q": "Grande-ville rare"}))
    assert "2 familles pour" in both and "Au moins" not in both
    assert "Q2 Rare" in both and "Q9 Rare" in both
    # Two common words: the first word's first places, each checked for the second.
    two = text(client.get("/admin/familles", query_string={"q": "commun grande"}))
    assert "Au moins" in two and "Rare" not in two
    none = text(client.get("/admin/familles", query_string={"q": "grande-ville introuvable"}))
    assert "Aucune famille ne correspond" in none


def test_staff_edit_the_family_quotient(app, client, auth, family, staff):
    auth.logout()
    auth.login(staff)
    response = post(
        client, f"/admin/familles/{family.household_id}/quotient", {"family_quotient": "1200"}
    )
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Household, family.household_id).family_quotient == 1200
    assert changes(app, family.household_id)[-1] == ("updated", "family_quotient", None, staff.id)
    bad = post(client, f"/admin/familles/{family.household_id}/quotient", {"family_quotient": "x"})
    assert bad.status_code == 422 and "en chiffres" in text(bad)
    assert client.get("/admin/familles/999999").status_code == 404


# --- Demo data ---------------------------------------------------------------------------------


def test_demo_family_is_complete_and_seeding_is_idempotent(app):
    from citoyens.demo import seed
    from citoyens.services.models import School

    with app.app_context():
        seed()
        db.session.commit()
        assert seed() == 0
        household = db.session.scalar(
            select(Household).where(Household.external_ref == "DEMO-0001")
        )
        assert (household.postcode, household.city, household.family_quotient) == (
            "49290",
            "Chalonnes-sur-Loire",
            850,
        )
        people = {
            m.person.first_name: (m, m.person) for m in household.memberships if m.left_at is None
        }
        lea, hugo = people["Léa"][1], people["Hugo"][1]
        assert (lea.birth_date.year, lea.class_level, lea.school.kind) == (2017, "CE1", "public")
        assert (hugo.birth_date.year, hugo.class_level) == (2020, "MS")
        mamie, _ = people["Mamie"]
        assert (mamie.role, mamie.can_pick_up, mamie.emergency_contact) == ("contact", True, True)
        private = db.session.scalar(select(School).where(School.kind == "private"))
        assert "ogec@example.org" in private.canteen_contact
        emails = [p.email for _, p in people.values() if p.email]
        assert emails and all(e.endswith("@example.org") for e in emails)
        assert rules.checklist(household.id)["entourage_complete"] is True


def test_staff_search_with_control_characters_is_not_a_500(client, auth, staff):
    auth.login(staff)
    for q in ["%", "_", "\\", "é" * 500]:
        assert client.get("/admin/familles", query_string={"q": q, "page": "x"}).status_code == 200
    for q in ["Mart\x00in", "\x00", "a\x1fb"]:  # refused before the search (issue 12)
        response = client.get("/admin/familles", query_string={"q": q})
        assert response.status_code == 400 and "caractères non autorisés" in response.text
    assert client.get("/admin/familles", query_string={"page": str(10**30)}).status_code == 200


def test_second_invitation_for_the_same_person_is_refused(app, client, family, outbox):
    adult = add_member(app, family.household_id, "adult", first_name="Dominique")
    assert invite(client, person_id=str(adult), email="un@example.org").status_code == 303
    response = invite(client, person_id=str(adult), email="deux@example.org")
    assert response.status_code == 422
    assert "Dominique Test a déjà une invitation en attente" in text(response)
    assert len(outbox) == 1


# --- Random input never breaks a form (SECURITY.md "Input and files") ---------------------------

FUZZ = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
fuzz_text = st.one_of(
    st.just(""),
    st.text(max_size=30),
    st.text(min_size=1, max_size=3).map(lambda s: (s * 4000)[:10_000]),
    st.text(max_size=10).map(lambda s: f"{s}\x00{s}"),
    st.sampled_from(
        ["2017-09-03", TOMORROW, "1900-01-01", "06 12 34 56 78", "+999", "y", "F", "Mme", "1", "-1"]
    ),
)
FUZZED_FORMS = {
    "/mon-foyer/modifier": list(HOUSEHOLD),
    "/mon-foyer/ajouter/adulte": list(ADULT),
    "/mon-foyer/ajouter/enfant": [*CHILD, "pai", "image_rights", "outing_consent"],
    "/mon-foyer/ajouter/contact": list(CONTACT),
    "/mon-foyer/inviter": ["person_id", "first_name", "last_name", "email"],
    "/mon-foyer/valider/enfant?champ=birth_date": list(CHILD),
}


@pytest.mark.parametrize("path", list(FUZZED_FORMS))
@FUZZ
@given(data=st.data())
def test_household_forms_never_fail_on_random_input(app, client, family, path, data):
    limiter.reset()
    fields = FUZZED_FORMS[path]
    body = data.draw(
        st.fixed_dictionaries({}, optional=dict.fromkeys(fields, fuzz_text)), label="form"
    )
    body["household_id"] = data.draw(fuzz_text, label="household_id")
    before = counts(app)
    response = post(client, path, body)
    assert response.status_code < 500
    assert "Traceback" not in text(response)
    if response.status_code != 303:
        assert counts(app) == before
