"""Accounts: sign-up, confirmation, login, logout, reset, activation, sessions."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import func, select

from citoyens.accounts import tokens
from citoyens.accounts.models import User
from citoyens.accounts.passwords import hash_password, password_problem, verify_password
from citoyens.core.models import AuditEvent, MailMessage
from citoyens.extensions import db
from citoyens.households.models import HouseholdMember
from tests.conftest import post
from tests.factories import PASSWORD, make_user

SIGNUP = {
    "first_name": "Camille",
    "last_name": "Durand",
    "email": "camille.durand@example.org",
    "password": "le chat dort sur la Loire",
}


def link_in(message) -> str:
    match = re.search(r"http://localhost(/\S+)", message.body)
    assert match, message.body
    return match.group(1)


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def user_by_email(app, email):
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        db.session.expunge_all()
        return user


# --- sign-up and confirmation ---------------------------------------------------------


def test_signup_creates_account_household_and_adult_then_confirmation_logs_in(
    app, client, auth, outbox
):
    response = post(client, "/creer-mon-espace", SIGNUP)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/verifiez-vos-mails")

    user = user_by_email(app, SIGNUP["email"])
    assert user.role == "parent" and user.confirmed_at is None
    assert user.password_hash.startswith("$argon2id$")
    with app.app_context():
        roles = db.session.scalars(
            select(HouseholdMember.role).where(HouseholdMember.household_id == user.household_id)
        ).all()
    assert roles == ["adult"]

    # Not confirmed yet: the right password says so, without logging in.
    response = auth.login(email=SIGNUP["email"], password=SIGNUP["password"])
    assert response.status_code == 200
    assert "pas encore confirmée" in response.get_data(as_text=True)
    assert client.get("/tableau-de-bord").status_code == 302

    assert len(outbox) == 1
    assert outbox[0].recipients == [SIGNUP["email"]]
    link = link_in(outbox[0])
    page = client.get(link)
    assert "Confirmer mon adresse" in page.get_data(as_text=True)
    assert user_by_email(app, SIGNUP["email"]).confirmed_at is None  # GET changes nothing

    response = post(client, link)
    assert response.status_code == 303
    assert user_by_email(app, SIGNUP["email"]).confirmed_at is not None
    # The login form that follows has the address filled in.
    assert f'value="{SIGNUP["email"]}"' in client.get("/connexion").get_data(as_text=True)

    response = auth.login(email=SIGNUP["email"], password=SIGNUP["password"])
    assert response.status_code == 303
    assert "Bonjour Camille" in client.get("/tableau-de-bord").get_data(as_text=True)


def test_confirmation_link_is_single_use_and_expires(app, client, outbox, monkeypatch):
    post(client, "/creer-mon-espace", SIGNUP)
    link = link_in(outbox[0])
    assert post(client, link).status_code == 303
    reused = post(client, link)
    assert reused.status_code == 200
    assert "n'est plus valable" in reused.get_data(as_text=True)

    account = make_user(app, confirmed=False)
    with app.app_context():
        token = tokens.make_token(db.session.get(User, account.id), tokens.CONFIRM)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 49 * 3600)
    expired = post(client, f"/confirmer/{token}")
    monkeypatch.undo()
    assert "n'est plus valable" in expired.get_data(as_text=True)
    assert user_by_email(app, account.email).confirmed_at is None


def test_forged_confirmation_token_is_refused(client):
    response = post(client, "/confirmer/not-a-token")
    assert "n'est plus valable" in response.get_data(as_text=True)


def test_unconfirmed_account_can_ask_for_a_new_link(app, client, outbox):
    account = make_user(app, confirmed=False)
    response = post(client, "/renvoyer-le-lien", {"email": account.email})
    assert response.status_code == 303
    assert len(outbox) == 1
    assert post(client, link_in(outbox[0])).status_code == 303
    assert user_by_email(app, account.email).confirmed_at is not None


def test_signup_with_an_existing_email_answers_the_same_and_warns_the_owner(
    app, client, parent, outbox
):
    fresh = post(client, "/creer-mon-espace", SIGNUP)
    taken = post(client, "/creer-mon-espace", {**SIGNUP, "email": parent.email.upper()})
    assert (fresh.status_code, fresh.headers["Location"]) == (
        taken.status_code,
        taken.headers["Location"],
    )
    assert count(app, User) == 2  # the parent and Camille, nothing more
    assert [m.subject for m in outbox] == [
        "Confirmez votre adresse e-mail",
        "Votre espace existe déjà",
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("first_name", "", "Le prénom est obligatoire."),
        ("last_name", "   ", "Le nom est obligatoire."),
        ("first_name", "x" * 10_000, "ne peut pas dépasser 100 caractères"),
        ("email", "pas-une-adresse", "Saisissez une adresse e-mail valide"),
        ("email", "a" * 250 + "@example.org", "trop longue"),
        ("password", "court", "au moins 12 caractères"),
        ("password", "x" * 129, "ne peut pas dépasser 128 caractères"),
        ("password", "azertyuiopqsdf", "trop courant"),
        ("password", "aaaaaaaaaaaaaaaa", "trop courant"),
        ("password", "camille.durand@example.org", "adresse e-mail"),
    ],
)
def test_signup_bad_input_says_why_in_french_and_saves_nothing(
    app, client, outbox, field, value, message
):
    before = count(app, User)
    response = post(client, "/creer-mon-espace", {**SIGNUP, field: value})
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(app, User) == before
    assert outbox == []


def test_password_policy_rules():
    assert password_problem("une phrase de passe correcte") is None
    assert password_problem("é" * 12) is not None  # two distinct characters at most
    assert password_problem("Qwerty123456") is not None  # common, whatever the case


# --- login and logout -----------------------------------------------------------------


def test_login_with_wrong_password_or_unknown_email_answers_the_same(client, auth, parent):
    wrong = auth.login(email=parent.email, password="pas le bon mot de passe")
    unknown = auth.login(email="personne@example.org", password="pas le bon mot de passe")
    assert wrong.status_code == unknown.status_code == 200
    strip = re.compile(r'name="csrf-token" content="[^"]+"|value="[^"]*"')
    assert strip.sub("", wrong.get_data(as_text=True)) == strip.sub(
        "", unknown.get_data(as_text=True)
    )
    assert "Identifiant ou mot de passe incorrect." in wrong.get_data(as_text=True)


def test_login_is_case_insensitive_and_lands_on_the_dashboard(client, auth, parent):
    response = auth.login(email=parent.email.upper(), password=parent.password)
    assert response.status_code == 303
    assert response.headers["Location"] == "/tableau-de-bord"


def test_staff_login_lands_on_the_back_office(client, auth, staff):
    assert auth.login(staff).headers["Location"] == "/admin/"


def test_login_follows_a_safe_next_only(client, auth, parent):
    response = post(
        client, "/connexion?next=/mon-compte", {"email": parent.email, "password": PASSWORD}
    )
    assert response.headers["Location"] == "/mon-compte"
    post(client, "/deconnexion")
    for evil in ("https://evil.example", "//evil.example", "/\\evil.example"):
        response = post(
            client, f"/connexion?next={evil}", {"email": parent.email, "password": PASSWORD}
        )
        assert response.headers["Location"] == "/tableau-de-bord", evil
        post(client, "/deconnexion")


def test_sixth_failed_login_within_15_minutes_is_429(client, auth, parent):
    for _ in range(5):
        assert auth.login(email=parent.email, password="mauvais mot de passe").status_code == 200
    blocked = auth.login(email=parent.email, password=parent.password)
    assert blocked.status_code == 429
    assert "Trop de tentatives" in blocked.get_data(as_text=True)


def test_failed_logins_on_unknown_email_are_throttled_too(client, auth):
    for _ in range(5):
        auth.login(email="inconnu@example.org", password="mauvais mot de passe")
    assert auth.login(email="inconnu@example.org", password="x" * 12).status_code == 429


def test_inactive_account_cannot_log_in(app, client, auth):
    account = make_user(app, active=False)
    assert auth.login(account).status_code == 200
    assert client.get("/tableau-de-bord").status_code == 302


def test_login_renews_the_session(client, auth, parent):
    client.get("/connexion")
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    auth.login(parent)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert session["_user_id"]


def test_logout_is_a_post_and_ends_every_session_of_the_account(app, parent):
    phone, desktop = app.test_client(), app.test_client()
    for browser in (phone, desktop):
        post(browser, "/connexion", {"email": parent.email, "password": parent.password})
        assert browser.get("/tableau-de-bord").status_code == 200
    assert phone.get("/deconnexion").status_code == 405
    response = post(phone, "/deconnexion")
    assert response.status_code == 303
    assert response.headers["Clear-Site-Data"] == '"cache"'
    assert phone.get("/tableau-de-bord").status_code == 302
    assert desktop.get("/tableau-de-bord").status_code == 302


def test_remember_me_cookie_lasts_30_days_and_dies_at_logout(app, client, auth, parent):
    response = auth.login(parent, remember=True)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if "remember" in c)
    assert "Max-Age=2592000" in cookie or "Expires=" in cookie
    # A new browser session (session cookie gone) is restored by the remember-me cookie.
    client.delete_cookie("session")
    assert client.get("/tableau-de-bord").status_code == 200
    auth.logout()
    assert client.get("/tableau-de-bord").status_code == 302


def test_idle_and_absolute_timeouts_end_the_session(app, client, auth, parent):
    auth.login(parent)
    with client.session_transaction() as session:
        session["seen_at"] = int(time.time()) - 3 * 3600
    response = client.get("/tableau-de-bord")
    assert response.status_code == 303
    assert "/connexion" in response.headers["Location"]

    auth.login(parent)
    with client.session_transaction() as session:
        session["auth_at"] = int(time.time()) - 13 * 3600
    assert client.get("/tableau-de-bord").status_code == 303


def test_login_and_failures_are_audited_without_secrets(app, client, auth, parent):
    auth.login(email=parent.email, password="mauvais mot de passe")
    auth.login(parent)
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        actions = [e.action for e in events]
        assert "login.failed" in actions and "login" in actions
        assert all(parent.password not in (e.details or "") for e in events)


# --- password reset and activation ----------------------------------------------------


def test_forgotten_password_link_sets_a_new_one_once(app, client, auth, parent, outbox):
    response = post(client, "/mot-de-passe-oublie", {"email": parent.email})
    assert response.status_code == 303
    link = link_in(outbox[0])
    new = "une toute nouvelle phrase de passe"
    form = client.get(link)
    assert "Choisir un nouveau mot de passe" in form.get_data(as_text=True)
    assert post(client, link, {"password": new}).status_code == 303
    assert "n'est plus valable" in client.get(link).get_data(as_text=True)
    assert auth.login(parent).status_code == 200  # old password refused
    assert auth.login(email=parent.email, password=new).status_code == 303


def test_reset_answers_the_same_for_unknown_addresses(client, parent, outbox):
    known = post(client, "/mot-de-passe-oublie", {"email": parent.email})
    unknown = post(client, "/mot-de-passe-oublie", {"email": "inconnu@example.org"})
    assert (known.status_code, known.headers["Location"]) == (
        unknown.status_code,
        unknown.headers["Location"],
    )
    assert len(outbox) == 1


def test_reset_link_expires(app, client, parent, outbox, monkeypatch):
    post(client, "/mot-de-passe-oublie", {"email": parent.email})
    link = link_in(outbox[0])
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3 * 3600)
    assert "n'est plus valable" in client.get(link).get_data(as_text=True)


def test_reset_ends_sessions_open_elsewhere(app, client, parent, outbox):
    other = app.test_client()
    post(other, "/connexion", {"email": parent.email, "password": parent.password})
    post(client, "/mot-de-passe-oublie", {"email": parent.email})
    post(client, link_in(outbox[0]), {"password": "une toute nouvelle phrase de passe"})
    assert other.get("/tableau-de-bord").status_code == 302


def test_reset_refuses_a_weak_password_and_keeps_the_old_one(app, client, auth, parent, outbox):
    post(client, "/mot-de-passe-oublie", {"email": parent.email})
    response = post(client, link_in(outbox[0]), {"password": "trop court"})
    assert "au moins 12 caractères" in response.get_data(as_text=True)
    assert auth.login(parent).status_code == 303


def test_imported_family_activates_its_account_through_the_reset_flow(app, client, auth, outbox):
    imported = make_user(app, password=None, confirmed=False)
    assert auth.login(email=imported.email, password="n'importe quoi du tout").status_code == 200
    post(client, "/mot-de-passe-oublie", {"email": imported.email})
    assert outbox[0].subject == "Activez votre espace"
    link = link_in(outbox[0])
    assert "Activer mon espace" in client.get(link).get_data(as_text=True)
    assert post(client, link, {"password": "ma phrase de passe choisie"}).status_code == 303
    user = user_by_email(app, imported.email)
    assert user.confirmed_at is not None
    response = auth.login(email=imported.email, password="ma phrase de passe choisie")
    assert response.status_code == 303


def test_token_messages_keep_no_body(app, client, parent, outbox):
    post(client, "/mot-de-passe-oublie", {"email": parent.email})
    with app.app_context():
        message = db.session.scalar(select(MailMessage))
        assert message.kind == "reset-password" and message.status == "sent"
        assert message.sensitive and message.body_text is None and message.body_html is None


# --- password change ------------------------------------------------------------------


def test_change_password_needs_the_current_one_and_ends_other_sessions(app, client, auth, parent):
    other = app.test_client()
    post(other, "/connexion", {"email": parent.email, "password": parent.password})
    auth.login(parent)
    new = "encore une autre phrase de passe"
    refused = post(
        client, "/mon-compte/mot-de-passe", {"current_password": "faux faux faux", "password": new}
    )
    assert "Le mot de passe actuel est incorrect." in refused.get_data(as_text=True)
    with app.app_context():
        user = db.session.get(User, parent.id)
        assert verify_password(user.password_hash, parent.password)

    ok = post(
        client, "/mon-compte/mot-de-passe", {"current_password": parent.password, "password": new}
    )
    assert ok.status_code == 303
    assert client.get("/mon-compte").status_code == 200  # this device stays in
    assert other.get("/tableau-de-bord").status_code == 302  # the others are out


def test_old_argon2_parameters_are_upgraded_at_login(app, client, auth, parent):
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(parent.password)
    with app.app_context():
        db.session.get(User, parent.id).password_hash = weak
        db.session.commit()
    auth.login(parent)
    with app.app_context():
        assert db.session.get(User, parent.id).password_hash != weak


def test_hash_is_argon2id():
    assert hash_password("une phrase de passe").startswith("$argon2id$")


# --- e-mail change ----------------------------------------------------------------------


def test_changing_email_needs_the_password_and_the_new_address_confirmed(
    app, client, auth, parent, outbox
):
    auth.login(parent)
    new = "nouvelle.adresse@example.org"
    refused = post(
        client, "/mon-compte/adresse", {"email": new, "current_password": "pas le bon du tout"}
    )
    assert "Le mot de passe actuel est incorrect." in refused.get_data(as_text=True)
    assert outbox == []

    ok = post(client, "/mon-compte/adresse", {"email": new, "current_password": parent.password})
    assert ok.status_code == 303
    assert user_by_email(app, parent.email) is not None  # nothing changes before the link
    assert outbox[0].recipients == [new]
    link = link_in(outbox[0])
    assert post(client, link).status_code == 303
    assert user_by_email(app, new).id == parent.id
    assert outbox[1].recipients == [parent.email]  # the old address is told
    assert "n'est plus valable" in post(client, link).get_data(as_text=True)
    assert client.get("/mon-compte").status_code == 302  # sessions ended
    assert auth.login(email=new, password=parent.password).status_code == 303


def test_changing_to_an_address_already_taken_sends_nothing_and_says_the_same(
    app, client, auth, parent, staff, outbox
):
    auth.login(parent)
    response = post(
        client,
        "/mon-compte/adresse",
        {"email": staff.email, "current_password": parent.password},
    )
    assert response.status_code == 303
    assert outbox == []
    assert user_by_email(app, parent.email) is not None


def test_after_a_reset_the_login_form_has_the_address_filled_in(app, client, parent, outbox):
    post(client, "/mot-de-passe-oublie", {"email": parent.email})
    post(client, link_in(outbox[0]), {"password": "une toute nouvelle phrase de passe"})
    page = client.get("/connexion").get_data(as_text=True)
    assert f'value="{parent.email}"' in page
    # Another visitor's login form stays empty.
    assert parent.email not in app.test_client().get("/connexion").get_data(as_text=True)


def test_no_link_is_received_after_a_reset_request_leads_back_to_the_reset_form(client):
    page = client.get("/verifiez-vos-mails?motif=mot-de-passe").get_data(as_text=True)
    assert 'href="/mot-de-passe-oublie">demandez un nouveau lien' in page
    page = client.get("/verifiez-vos-mails").get_data(as_text=True)
    assert 'href="/renvoyer-le-lien">demandez un nouveau lien' in page


def test_account_page_ids_are_unique(client, auth, parent):
    auth.login(parent)
    page = client.get("/mon-compte").get_data(as_text=True)
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
