"""« Fermer mon compte »: the family asks (password again), an administrator decides;
closing ends the household's accounts and sessions and keeps what is due."""

from __future__ import annotations

from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.billing.models import Invoice
from citoyens.core.models import MailMessage
from citoyens.extensions import db
from citoyens.households.models import Household
from citoyens.requests.models import Request, RequestEvent
from tests.billing_factories import make_invoice
from tests.conftest import post
from tests.factories import PASSWORD
from tests.households_factories import make_commune
from tests.privacy_factories import logged_in

PAGE = "/mon-compte/mes-donnees"
ASK = f"{PAGE}/fermeture"


def ask(client, password: str = PASSWORD, **data):
    return post(client, ASK, {"confirm": "y", "current_password": password, "message": "", **data})


def closure_requests(app, household_id: int) -> list[Request]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                select(Request).where(
                    Request.household_id == household_id, Request.kind == "account_closure"
                )
            )
        )
        db.session.expunge_all()
        return rows


def test_the_page_says_invoices_are_kept_ten_years_and_links_the_privacy_notice(app, parent):
    client = logged_in(app, parent)
    page = client.get(PAGE).get_data(as_text=True)
    assert "conservés 10 ans" in page
    assert 'href="/donnees-personnelles"' in page
    assert PAGE in client.get("/mon-compte").get_data(as_text=True)
    assert PAGE in app.test_client().get("/donnees-personnelles").get_data(as_text=True)


def test_a_wrong_password_or_no_confirmation_asks_nothing(app, parent):
    client = logged_in(app, parent)
    response = ask(client, password="pas le bon mot de passe")
    assert response.status_code == 422
    assert "Le mot de passe actuel est incorrect." in response.get_data(as_text=True)
    response = post(client, ASK, {"current_password": PASSWORD})
    assert response.status_code == 422
    assert "Cochez la case" in response.get_data(as_text=True)
    assert client.post(ASK, data={"confirm": "y", "current_password": PASSWORD}).status_code == 400
    assert closure_requests(app, parent.household_id) == []


def test_the_request_goes_to_administrators_with_what_is_still_due(app, parent, staff, admin):
    make_commune(app)
    make_invoice(app, parent.household_id, lines=[("Repas du midi", 350, 4)])
    client = logged_in(app, parent)
    response = ask(client, message="Nous déménageons.")
    assert response.status_code == 303
    [request] = closure_requests(app, parent.household_id)
    assert response.headers["Location"].endswith(f"/mes-demandes/{request.id}")
    assert (request.status, request.service_id) == ("sent", None)
    # Asked twice: still one.
    assert ask(client).status_code == 303
    assert len(closure_requests(app, parent.household_id)) == 1
    with app.app_context():
        assert db.session.scalar(
            select(func.count(MailMessage.id)).where(
                MailMessage.kind == "account-closure-requested"
            )
        )

    agent = logged_in(app, staff)
    assert agent.get(f"/admin/demandes/{request.id}").status_code == 404
    assert f"/admin/demandes/{request.id}" not in agent.get("/admin/demandes").get_data(
        as_text=True
    )
    boss = logged_in(app, admin)
    page = boss.get(f"/admin/demandes/{request.id}").get_data(as_text=True)
    assert "Restent dus : 14,00" in page
    assert f"/admin/demandes/{request.id}" in boss.get("/admin/demandes").get_data(as_text=True)
    # The family does not see the internal note.
    family_page = client.get(f"/mes-demandes/{request.id}").get_data(as_text=True)
    assert "Restent dus" not in family_page


def test_an_agent_cannot_decide_a_closure(app, parent, staff):
    client = logged_in(app, parent)
    ask(client)
    [request] = closure_requests(app, parent.household_id)
    agent = logged_in(app, staff)
    response = post(agent, f"/admin/demandes/{request.id}/statut", {"accept": "y"})
    assert response.status_code == 404
    with app.app_context():
        assert db.session.get(Household, parent.household_id).closed_at is None


def test_accepting_closes_the_household_ends_sessions_and_keeps_invoices(app, parent, admin):
    make_commune(app)
    invoice_id = make_invoice(app, parent.household_id, lines=[("Repas du midi", 350, 4)])
    with app.app_context():  # a second account on the household
        second = User(
            email="second@example.org",
            first_name="Deux",
            last_name="Test",
            household_id=parent.household_id,
        )
        db.session.add(second)
        db.session.commit()
    client = logged_in(app, parent)
    ask(client)
    [request] = closure_requests(app, parent.household_id)
    boss = logged_in(app, admin)
    response = post(boss, f"/admin/demandes/{request.id}/statut", {"accept": "y"})
    assert response.status_code == 303

    with app.app_context():
        household = db.session.get(Household, parent.household_id)
        assert household.closed_at is not None
        users = list(db.session.scalars(select(User).where(User.household_id == household.id)))
        assert len(users) == 2 and not any(user.active for user in users)
        assert db.session.get(Invoice, invoice_id).status == "issued"  # still due, kept
        # Each account of the household is told (no order between the two rows).
        closed_mails = db.session.scalars(
            select(MailMessage).where(MailMessage.kind == "account-closed")
        ).all()
        assert sorted(m.recipient for m in closed_mails) == sorted(
            [parent.email, "second@example.org"]
        )
        [mail] = [m for m in closed_mails if m.recipient == parent.email]
        assert "14,00" in mail.body_text and "restent à payer" in mail.body_text
        assert "10 ans" in mail.body_text
        note = db.session.scalar(
            select(RequestEvent.body)
            .where(RequestEvent.request_id == request.id, RequestEvent.internal.is_(True))
            .order_by(RequestEvent.id.desc())
            .limit(1)
        )
        assert note.startswith("Compte fermé : 2 accès désactivé(s)")
    # The parent's session is over, and the account cannot log in again.
    assert client.get("/mon-foyer").status_code in (302, 303)
    again = post(app.test_client(), "/connexion", {"email": parent.email, "password": PASSWORD})
    assert again.status_code == 200  # the login form again: no session


def test_refusing_keeps_the_account_open(app, parent, admin):
    client = logged_in(app, parent)
    ask(client)
    [request] = closure_requests(app, parent.household_id)
    boss = logged_in(app, admin)
    post(boss, f"/admin/demandes/{request.id}/statut", {"refuse": "y", "message": "Erreur"})
    with app.app_context():
        assert db.session.get(Household, parent.household_id).closed_at is None
    assert client.get(PAGE).status_code == 200


def test_closing_a_household_twice_is_refused(app, parent, admin):
    from citoyens.privacy.closure import close_household
    from citoyens.requests.operations import RequestError

    with app.test_request_context():
        actor = db.session.get(User, admin.id)
        close_household(parent.household_id, actor=actor)
        try:
            close_household(parent.household_id, actor=actor)
        except RequestError as error:
            assert "déjà fermé" in str(error)
        else:
            raise AssertionError("a second closure went through")
        db.session.rollback()
