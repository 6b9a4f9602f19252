"""Staff create and edit a family at the counter: same validation as the portal, every
change in the family's history with the agent as actor, scope for agents."""

from __future__ import annotations

from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person
from tests.conftest import post
from tests.factories import make_user
from tests.households_factories import changes, counts, make_school, person_ids
from tests.requests_factories import assign_staff
from tests.reservations_factories import enrol_accepted, make_bookable_offer, text_of

NEW = "/admin/familles/nouvelle"

FAMILY = {
    "foyer-address_line": "3 rue des Lilas",
    "foyer-postcode": "49290",
    "foyer-city": "Chalonnes-sur-Loire",
    "foyer-paperless_invoices": "",
    "adulte-civility": "Mme",
    "adulte-first_name": "Rose",
    "adulte-last_name": "Guichet",
    "adulte-mobile_phone": "06 12 34 56 78",
    "adulte-email": "",
}


def _household_of(app, last_name: str) -> int | None:
    with app.app_context():
        return db.session.scalar(
            select(HouseholdMember.household_id)
            .join(Person, Person.id == HouseholdMember.person_id)
            .where(Person.last_name == last_name)
        )


def test_admin_creates_a_family_without_account_and_a_child(app, client, auth, admin):
    school = make_school(app, "École Saint-Exupéry")
    auth.login(admin)
    assert "Nouvelle famille" in text_of(client.get("/admin/familles"))
    assert client.get(NEW).status_code == 200
    before = counts(app)
    data = {
        **FAMILY,
        "with_child": "y",
        "enfant-first_name": "Léo",
        "enfant-last_name": "Guichet",
        "enfant-birth_date": "03/09/2019",
        "enfant-sex": "M",
        "enfant-school_id": str(school),
        "enfant-class_level": "CP",
        "enfant-diet": "",
    }
    response = post(client, NEW, data)
    assert response.status_code == 303, text_of(response)
    household_id = _household_of(app, "Guichet")
    assert response.headers["Location"].endswith(f"/admin/familles/{household_id}")
    after = counts(app)
    assert after["users"] == before["users"]  # no account: a family without internet
    assert after["people"] == before["people"] + 2
    with app.app_context():
        household = db.session.get(Household, household_id)
        assert (household.postcode, household.paperless_invoices) == ("49290", False)
        child = db.session.scalar(select(Person).where(Person.first_name == "Léo"))
        assert (child.school_id, child.class_level) == (school, "CP")
        adult = db.session.scalar(select(Person).where(Person.first_name == "Rose"))
        assert adult.mobile_phone == "+33612345678"  # the portal's phone validation
    history = changes(app, household_id)
    assert [row[0] for row in history] == ["created", "created", "created"]
    assert {row[3] for row in history} == {admin.id}
    page = text_of(client.get(f"/admin/familles/{household_id}"))
    assert "Léo Guichet" in page and "École Saint-Exupéry · CP" in page


def test_account_without_password_is_activated_through_forgotten_password(
    app, client, auth, admin, outbox
):
    auth.login(admin)
    data = {**FAMILY, "adulte-email": "Rose.Guichet@example.org", "open_account": "y"}
    assert post(client, NEW, data).status_code == 303
    household_id = _household_of(app, "Guichet")
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == "rose.guichet@example.org"))
        assert (user.household_id, user.role, user.password_hash) == (household_id, "parent", None)
    assert changes(app, household_id)[-1][0] == "account_opened"
    auth.logout()
    post(client, "/mot-de-passe-oublie", {"email": "rose.guichet@example.org"})
    assert any("Activez votre espace" in m.subject for m in outbox)


def test_account_for_a_known_address_is_refused_and_nothing_saved(app, client, auth, admin):
    existing = make_user(app, role="parent")
    auth.login(admin)
    before = counts(app)
    data = {**FAMILY, "adulte-email": existing.email, "open_account": "y"}
    response = post(client, NEW, data)
    assert response.status_code == 422
    assert "existe déjà" in text_of(response)
    assert counts(app) == before


def test_bad_inputs_get_french_messages_and_save_nothing(app, client, auth, admin):
    auth.login(admin)
    before = counts(app)
    data = {
        **FAMILY,
        "foyer-postcode": "4929",
        "adulte-first_name": "",
        "adulte-mobile_phone": "12",
        "with_child": "y",
        "enfant-first_name": "Léo",
        "enfant-last_name": "Guichet",
        "enfant-birth_date": "31/02/2019",
    }
    response = post(client, NEW, data)
    assert response.status_code == 422
    page = text_of(response)
    assert "Le code postal doit comporter 5 chiffres" in page
    assert "Le prénom" in page
    assert "La date de naissance est obligatoire" in page  # 31/02 is no date
    assert "Choisissez « Fille » ou « Garçon »" in page
    assert counts(app) == before


def test_staff_edit_a_child_s_class_with_history(app, client, auth, admin, parent):
    child = person_ids(app, parent.household_id, "child")[0]
    auth.login(admin)
    path = f"/admin/familles/{parent.household_id}/membres/{child}/modifier"
    assert client.get(path).status_code == 200
    response = post(
        client,
        path,
        {
            "first_name": "Enfant0",
            "last_name": "Test",
            "birth_date": "01/01/2018",
            "sex": "F",
            "class_level": "CE2",
            "diet": "",
        },
    )
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Person, child).class_level == "CE2"
    assert changes(app, parent.household_id)[-1] == ("updated", "sex,class_level", child, admin.id)
    bad = post(client, path, {"first_name": "", "last_name": "Test", "class_level": "X"})
    assert bad.status_code == 422
    assert "Choisissez une classe de la liste" in text_of(bad)
    with app.app_context():
        assert db.session.get(Person, child).class_level == "CE2"


def test_staff_edit_the_household_and_add_a_contact(app, client, auth, admin, parent):
    auth.login(admin)
    base = f"/admin/familles/{parent.household_id}"
    response = post(
        client,
        f"{base}/modifier",
        {"address_line": "1 quai", "postcode": "49290", "city": "Chalonnes"},
    )
    assert response.status_code == 303
    response = post(
        client,
        f"{base}/ajouter/contact",
        {"first_name": "Mamie", "last_name": "Test", "mobile_phone": "0612345679"},
    )
    assert response.status_code == 303
    no_phone = post(client, f"{base}/ajouter/contact", {"first_name": "X", "last_name": "Y"})
    assert no_phone.status_code == 422
    assert "au moins un numéro" in text_of(no_phone)
    assert client.get(f"{base}/ajouter/inconnu").status_code == 404
    actions = [(row[0], row[3]) for row in changes(app, parent.household_id)[-2:]]
    assert actions == [("updated", admin.id), ("created", admin.id)]
    page = text_of(client.get(base))
    assert "Mamie Test" in page and "adresse" in page


def test_agent_edits_only_the_families_of_their_services(app, client, auth, parent):
    offer = make_bookable_offer(app)
    child = person_ids(app, parent.household_id, "child")[0]
    enrol_accepted(app, parent.household_id, child, offer)
    agent = make_user(app, role="staff")
    other = make_user(app, role="staff")
    assign_staff(app, agent.id, offer.service_id)
    path = f"/admin/familles/{parent.household_id}/modifier"
    auth.login(other)
    assert client.get(path).status_code == 404
    assert post(client, path, {"city": "Ailleurs"}).status_code == 404
    auth.logout()
    auth.login(agent)
    assert post(client, path, {"city": "Chalonnes"}).status_code == 303


def test_agent_creating_a_family_is_sent_to_enrol_it(app, client, auth):
    agent = make_user(app, role="staff")
    auth.login(agent)
    response = post(client, NEW, FAMILY)
    assert response.status_code == 303
    assert "/admin/inscriptions/nouvelle?foyer=" in response.headers["Location"]


def test_access(app, client, auth, parent):
    assert client.get(NEW).status_code == 302  # anonymous → login
    auth.login(parent)
    assert client.get(NEW).status_code == 403
    assert post(client, NEW, FAMILY).status_code == 403
    path = f"/admin/familles/{parent.household_id}/modifier"
    assert post(client, path, {"city": "X"}).status_code == 403


def test_post_without_csrf_is_refused(app, client, auth, admin):
    auth.login(admin)
    before = counts(app)
    assert client.post(NEW, data=FAMILY).status_code == 400
    assert counts(app) == before
