"""Staff accounts managed by administrators in /admin/equipe (issue 13): create with a
welcome e-mail, attach to services, make admin, deactivate (sessions end), resend the link."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.services.models import StaffService
from tests.conftest import counted_queries, csrf_token, post
from tests.factories import PASSWORD, make_user
from tests.requests_factories import assign_staff, make_service
from tests.test_accounts_security import remember_cookie, with_stolen

NEW_PASSWORD = "la Loire coule sous le pont de Chalonnes"


def login(app, account, password=None):
    client = app.test_client()
    response = post(
        client, "/connexion", {"email": account.email, "password": password or account.password}
    )
    assert response.status_code == 303, "could not log in"
    return client


def link_in(message) -> str:
    match = re.search(r"http://localhost(/\S+)", message.body)
    assert match, message.body
    return match.group(1)


def user_by_email(app, email) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


def services_of(app, user_id) -> set[int]:
    with app.app_context():
        return set(
            db.session.scalars(
                select(StaffService.service_id).where(StaffService.user_id == user_id)
            )
        )


def count_users(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(User.id)))


def audit_of(app, target) -> list[tuple[str, int | None]]:
    with app.app_context():
        return list(
            db.session.execute(
                select(AuditEvent.action, AuditEvent.actor_id)
                .where(AuditEvent.target == target)
                .order_by(AuditEvent.id)
            )
        )


def form(first="Léa", last="Martin", email="lea.martin@example.org", services=(), admin=False):
    data = {"first_name": first, "last_name": last, "email": email}
    data["service_ids"] = [str(s) for s in services]
    if admin:
        data["admin"] = "y"
    return data


@pytest.fixture
def world(app):
    admin = make_user(app, role="admin")
    canteen = make_service(app, name="Restauration scolaire")
    leisure = make_service(app, name="Accueil de loisirs")
    return {"admin": admin, "canteen": canteen, "leisure": leisure}


def test_created_agent_sets_password_logs_in_and_sees_its_services(app, world, outbox):
    client = login(app, world["admin"])
    response = post(client, "/admin/equipe/nouveau", form(services=[world["canteen"]]))
    assert response.status_code == 303
    user = user_by_email(app, "lea.martin@example.org")
    assert user.role == "staff" and user.password_hash is None and user.active
    assert services_of(app, user.id) == {world["canteen"]}
    assert ("staff.created", world["admin"].id) in audit_of(app, f"user:{user.id}")

    [mail] = outbox
    assert mail.recipients == ["lea.martin@example.org"]
    assert "Votre compte agent" in mail.body and "mot de passe" in mail.subject
    assert "7 jours" in mail.body
    link = link_in(mail)
    assert post(app.test_client(), link, {"password": NEW_PASSWORD}).status_code == 303
    agent = login(app, user, NEW_PASSWORD)
    assert agent.get("/admin/").status_code == 200
    html = agent.get("/admin/reservations").text
    assert "Restauration scolaire" in html and "Accueil de loisirs" not in html
    # The link served once.
    assert "Lien expiré" in app.test_client().get(link).text

    # Attached to the leisure centre instead: what the agent sees follows.
    response = post(
        client,
        f"/admin/equipe/{user.id}",
        {"first_name": "Léa", "last_name": "Martin", "service_ids": [str(world["leisure"])]},
    )
    assert response.status_code == 303
    assert services_of(app, user.id) == {world["leisure"]}
    html = agent.get("/admin/reservations").text
    assert "Accueil de loisirs" in html and "Restauration scolaire" not in html
    assert "staff.updated" in [a for a, _ in audit_of(app, f"user:{user.id}")]

    listing = client.get("/admin/equipe").text
    assert "Léa Martin" in listing and "Accueil de loisirs" in listing and "Jamais" not in listing


def test_the_list_shows_pending_invitations_in_constant_queries(app, world):
    client = login(app, world["admin"])
    for _ in range(2):
        user = make_user(app, role="staff", password=None)
        assign_staff(app, user.id, world["canteen"], world["leisure"])
    with counted_queries(app) as few:
        html = client.get("/admin/equipe").text
    assert "Invitation en attente" in html and "Restauration scolaire" in html
    for _ in range(4):
        user = make_user(app, role="staff")
        assign_staff(app, user.id, world["leisure"])
    with counted_queries(app) as many:
        assert client.get("/admin/equipe").status_code == 200
    assert len(many) == len(few)


def test_an_administrator_needs_no_service_and_sees_everything(app, world, outbox):
    client = login(app, world["admin"])
    response = post(client, "/admin/equipe/nouveau", form(email="chef@example.org", admin=True))
    assert response.status_code == 303
    user = user_by_email(app, "chef@example.org")
    assert user.role == "admin"
    post(app.test_client(), link_in(outbox[0]), {"password": NEW_PASSWORD})
    html = login(app, user, NEW_PASSWORD).get("/admin/reservations").text
    assert "Restauration scolaire" in html and "Accueil de loisirs" in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (form(email="pas-une-adresse"), "Saisissez une adresse e-mail valide"),
        (form(first=""), "Le prénom est obligatoire"),
        (form(last="x" * 101), "Le nom ne peut pas dépasser 100 caractères"),
        (form(services=()), "Choisissez au moins un service pour un agent"),
        (form(services=[99999]), "Choisissez des services de la liste"),
    ],
)
def test_bad_input_is_a_french_422_and_saves_nothing(app, world, outbox, data, message):
    client = login(app, world["admin"])
    before = count_users(app)
    response = post(client, "/admin/equipe/nouveau", data)
    assert response.status_code == 422
    assert message in response.text
    assert count_users(app) == before and not outbox


@pytest.mark.parametrize("role", ["parent", "staff"])
def test_an_existing_address_is_refused_and_never_turned_into_staff(app, world, outbox, role):
    existing = make_user(app, role=role)
    client = login(app, world["admin"])
    data = form(email=existing.email.upper(), services=[world["canteen"]])
    response = post(client, "/admin/equipe/nouveau", data)
    assert response.status_code == 422
    expected = "compte famille" if role == "parent" else "Un compte agent existe déjà"
    assert expected in response.text
    assert user_by_email(app, existing.email).role == role
    assert services_of(app, existing.id) == set() and not outbox


def test_deactivation_ends_sessions_and_remember_cookies(app, world, outbox):
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, world["canteen"])
    session = login(app, agent)
    cookie = remember_cookie(app, agent)
    assert with_stolen(app, cookie).get("/admin/").status_code == 200
    client = login(app, world["admin"])

    response = post(client, f"/admin/equipe/{agent.id}/activation", {"active": "0"})
    assert response.status_code == 303
    assert not user_by_email(app, agent.email).active
    assert session.get("/admin/").status_code == 302  # logged out on the next request
    assert with_stolen(app, cookie).get("/admin/").status_code == 302
    refused = post(app.test_client(), "/connexion", {"email": agent.email, "password": PASSWORD})
    assert refused.status_code == 200 and "Identifiant ou mot de passe incorrect" in refused.text
    assert ("staff.deactivated", world["admin"].id) in audit_of(app, f"user:{agent.id}")
    # Resending a link to a deactivated account sends nothing.
    post(client, f"/admin/equipe/{agent.id}/lien")
    assert not outbox

    assert post(client, f"/admin/equipe/{agent.id}/activation", {"active": "1"}).status_code == 303
    assert login(app, agent).get("/admin/").status_code == 200
    assert not outbox  # the password is set: no new link needed


def test_deactivation_kills_a_pending_link_and_reactivation_sends_a_new_one(app, world, outbox):
    client = login(app, world["admin"])
    post(client, "/admin/equipe/nouveau", form(services=[world["canteen"]]))
    user = user_by_email(app, "lea.martin@example.org")
    old_link = link_in(outbox[0])
    post(client, f"/admin/equipe/{user.id}/activation", {"active": "0"})
    assert "Lien expiré" in app.test_client().get(old_link).text
    post(client, f"/admin/equipe/{user.id}/activation", {"active": "1"})
    assert len(outbox) == 2
    assert "Lien expiré" in app.test_client().get(old_link).text
    assert (
        post(app.test_client(), link_in(outbox[1]), {"password": NEW_PASSWORD}).status_code == 303
    )
    assert login(app, user, NEW_PASSWORD).get("/admin/").status_code == 200


def test_resend_link_welcome_then_reset(app, world, outbox):
    client = login(app, world["admin"])
    post(client, "/admin/equipe/nouveau", form(services=[world["canteen"]]))
    user = user_by_email(app, "lea.martin@example.org")
    assert post(client, f"/admin/equipe/{user.id}/lien").status_code == 303
    assert len(outbox) == 2 and "Votre compte agent" in outbox[1].body
    post(app.test_client(), link_in(outbox[1]), {"password": NEW_PASSWORD})
    # With a password set, the administrator sends the usual reset link.
    post(client, f"/admin/equipe/{user.id}/lien")
    assert outbox[2].subject == "Choisissez un nouveau mot de passe"
    assert [a for a, _ in audit_of(app, f"user:{user.id}")].count("staff.link-sent") == 2


def test_welcome_link_expires_after_seven_days(app, world, outbox, monkeypatch):
    import time

    client = login(app, world["admin"])
    post(client, "/admin/equipe/nouveau", form(services=[world["canteen"]]))
    link = link_in(outbox[0])
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 6 * 86400)
    assert "Lien expiré" not in app.test_client().get(link).text
    monkeypatch.setattr(time, "time", lambda: now + 8 * 86400)
    assert "Lien expiré" in app.test_client().get(link).text


def test_an_administrator_cannot_demote_or_deactivate_themselves(app, world):
    make_user(app, role="admin")  # not the last one: the refusal is about oneself
    me = world["admin"]
    client = login(app, me)
    response = post(client, f"/admin/equipe/{me.id}", {"first_name": "A", "last_name": "B"})
    assert response.status_code == 422
    assert "retirer vos propres droits" in response.text
    response = post(
        client, f"/admin/equipe/{me.id}/activation", {"active": "0"}, follow_redirects=True
    )
    assert "votre propre compte" in response.text
    assert user_by_email(app, me.email).role == "admin" and user_by_email(app, me.email).active


def test_the_last_active_administrator_stays_one(app, world):
    # The other administrator (deactivated) does not count.
    other = make_user(app, role="admin", active=False)
    me = world["admin"]
    client = login(app, me)
    response = post(
        client,
        f"/admin/equipe/{other.id}",
        {"first_name": "A", "last_name": "B", "service_ids": [str(world["canteen"])]},
    )
    assert response.status_code == 303  # demoting an inactive administrator is fine
    second = make_user(app, role="admin")
    with app.app_context():
        from citoyens.accounts import staff as rules

        actor = db.session.get(User, second.id)
        # `me` is the only other active administrator: `second` may demote them once...
        rules.update_staff_account(
            me.id, actor=actor, first_name="A", last_name="B", service_ids=[], admin=True
        )
        db.session.get(User, second.id).active = False
        db.session.flush()
        # ...but once alone, nobody can demote or deactivate the last one.
        lone = db.session.get(User, me.id)
        with pytest.raises(rules.StaffAccountError, match="dernier administrateur"):
            rules.update_staff_account(
                me.id,
                actor=actor,
                first_name="A",
                last_name="B",
                service_ids=[world["canteen"]],
                admin=False,
            )
        with pytest.raises(rules.StaffAccountError, match="dernier administrateur"):
            rules.set_staff_active(me.id, False, actor=actor)
        assert lone.role == "admin" and lone.active
        db.session.rollback()


def test_the_edit_page_keeps_services_and_changes_the_name(app, world):
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, world["canteen"])
    client = login(app, world["admin"])
    page = client.get(f"/admin/equipe/{agent.id}").text
    assert re.search(rf'<input checked[^>]*value="{world["canteen"]}"', page)
    assert not re.search(rf'<input checked[^>]*value="{world["leisure"]}"', page)
    response = post(
        client,
        f"/admin/equipe/{agent.id}",
        {"first_name": "Zoé", "last_name": "Leroy", "service_ids": [str(world["canteen"])]},
    )
    assert response.status_code == 303
    assert user_by_email(app, agent.email).full_name == "Zoé Leroy"
    assert services_of(app, agent.id) == {world["canteen"]}
    # Removing every service of an agent is refused.
    response = post(
        client, f"/admin/equipe/{agent.id}", {"first_name": "Zoé", "last_name": "Leroy"}
    )
    assert response.status_code == 422 and "au moins un service" in response.text
    assert services_of(app, agent.id) == {world["canteen"]}


def test_promotion_to_administrator(app, world):
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, world["canteen"])
    client = login(app, world["admin"])
    data = {"first_name": "A", "last_name": "B", "admin": "y"}
    assert post(client, f"/admin/equipe/{agent.id}", data).status_code == 303
    assert user_by_email(app, agent.email).role == "admin"
    assert login(app, agent).get("/admin/equipe").status_code == 200


def test_agents_get_403_and_parents_404_as_targets(app, world, outbox):
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, world["canteen"])
    client = login(app, agent)
    target = world["admin"].id
    assert client.get("/admin/equipe").status_code == 403
    assert client.get("/admin/equipe/nouveau").status_code == 403
    assert client.get(f"/admin/equipe/{target}").status_code == 403
    assert (
        post(client, "/admin/equipe/nouveau", form(services=[world["canteen"]])).status_code == 403
    )
    assert post(client, f"/admin/equipe/{target}", {"first_name": "x"}).status_code == 403
    assert post(client, f"/admin/equipe/{target}/activation", {"active": "0"}).status_code == 403
    assert post(client, f"/admin/equipe/{target}/lien").status_code == 403
    assert user_by_email(app, "lea.martin@example.org") is None
    assert user_by_email(app, world["admin"].email).active and not outbox

    parent = make_user(app, role="parent")
    admin = login(app, world["admin"])
    assert admin.get(f"/admin/equipe/{parent.id}").status_code == 404
    assert post(admin, f"/admin/equipe/{parent.id}/activation", {"active": "0"}).status_code == 404
    assert admin.get(f"/admin/equipe/{2**40}").status_code == 404


def test_changes_need_a_csrf_token(app, world):
    agent = make_user(app, role="staff")
    client = login(app, world["admin"])
    csrf_token(client)
    data = form(services=[world["canteen"]])
    assert client.post("/admin/equipe/nouveau", data=data).status_code == 400
    assert (
        client.post(f"/admin/equipe/{agent.id}/activation", data={"active": "0"}).status_code == 400
    )
    assert user_by_email(app, "lea.martin@example.org") is None
    assert user_by_email(app, agent.email).active


def test_the_staff_home_links_the_team_page_for_administrators_only(app, world):
    assert "/admin/equipe" in login(app, world["admin"]).get("/admin/").text
    agent = make_user(app, role="staff")
    assert "/admin/equipe" not in login(app, agent).get("/admin/").text


def test_the_cli_still_creates_the_first_administrator(app, runner):
    result = runner.invoke(
        args=[
            "users",
            "create-staff",
            "premier@example.org",
            "--first-name",
            "Paul",
            "--last-name",
            "Premier",
            "--admin",
            "--password",
            NEW_PASSWORD,
        ]
    )
    assert result.exit_code == 0, result.output
    user = user_by_email(app, "premier@example.org")
    assert user.role == "admin" and user.password_hash
