"""Requests ("Mes demandes"): the rules, the family's pages and the staff queue (issue 3)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from citoyens.accounts.models import User
from citoyens.core.models import AuditEvent, MailMessage
from citoyens.extensions import db
from citoyens.formatting import date_fr, datetime_fr, since_fr
from citoyens.requests import operations as ops
from citoyens.requests import rules
from citoyens.requests.models import Request
from tests.conftest import counted_queries, csrf_token, post
from tests.factories import make_user
from tests.requests_factories import assign_staff, make_request, make_service, request_state

TEST_KIND = "test_kind"


def logged_in(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303, "test account could not log in"
    return client


def htmx_post(client, path, data=None):
    """POST as htmx does: the token in the X-CSRFToken header, HX-Request set."""
    token = csrf_token(client)
    return client.post(path, data=data or {}, headers={"HX-Request": "true", "X-CSRFToken": token})


def mails_to(outbox, address):
    return [m for m in outbox if address in m.recipients]


@pytest.fixture
def staff(app):
    """Who handles the requests below: they are tied to no service, so they go to the
    administrators (DOMAIN.md "Staff and scope"); the agents' scope has its own tests."""
    return make_user(app, role="admin")


@pytest.fixture
def decisions():
    """A kind of request whose decisions are recorded; removed from the registry afterwards."""
    calls = []

    @ops.on_decision(TEST_KIND)
    def record(request, accepted, actor):
        calls.append((request.id, accepted, actor.id))

    yield calls
    ops._decision_handlers.pop(TEST_KIND, None)


@pytest.fixture
def failing_decision():
    @ops.on_decision(TEST_KIND)
    def refuse(request, accepted, actor):
        raise ops.RequestError("Le membre a déjà quitté le foyer.")

    yield
    ops._decision_handlers.pop(TEST_KIND, None)


# --- Rules, without HTTP ------------------------------------------------------------------


def test_transitions_lead_from_sent_to_a_decision(app, parent, staff):
    request_id = make_request(app, parent.household_id, by=parent.id)
    with app.app_context():
        agent = db.session.get(User, staff.id)
        request = db.session.get(Request, request_id)
        event_ = ops.change_status(request, "in_review", actor=agent)
        assert (event_.from_status, event_.to_status) == ("sent", "in_review")
        assert request.is_open and request.closed_at is None
        ops.change_status(request, "accepted", actor=agent, message="C'est fait.")
        db.session.commit()
        request = db.session.get(Request, request_id)
        assert request.status == "accepted"
        assert request.closed_at is not None
        assert [e.kind for e in request.events] == ["created", "status", "status"]


@pytest.mark.parametrize("closed", ["accepted", "refused", "cancelled"])
@pytest.mark.parametrize("target", ["sent", "in_review", "accepted", "refused", "cancelled"])
def test_a_closed_request_cannot_change_status(app, parent, staff, closed, target):
    request_id = make_request(app, parent.household_id, status=closed, staff_id=staff.id)
    with app.app_context():
        request = db.session.get(Request, request_id)
        with pytest.raises(ops.RequestError, match="ne peut plus changer de statut"):
            ops.change_status(request, target, actor=None)


def test_an_open_request_cannot_go_back_to_sent(app, parent):
    request_id = make_request(app, parent.household_id)
    with app.app_context():
        with pytest.raises(ops.RequestError):
            ops.change_status(db.session.get(Request, request_id), "sent", actor=None)
        with pytest.raises(ops.RequestError):
            ops.change_status(db.session.get(Request, request_id), "archived", actor=None)


def test_a_request_decided_meanwhile_is_not_decided_twice(app, parent, staff, decisions):
    """Two agents on the same request: the second one's copy is stale and is refused."""
    request_id = make_request(app, parent.household_id, kind=TEST_KIND)
    with app.app_context():
        request = db.session.get(Request, request_id)
        assert request.status == "sent"
        # Another agent accepted it in the meantime (this session's object does not know).
        db.session.execute(
            update(Request)
            .where(Request.id == request_id)
            .values(status="accepted")
            .execution_options(synchronize_session=False)
        )
        with pytest.raises(ops.RequestError, match="modifiée par quelqu'un d'autre"):
            ops.change_status(request, "refused", actor=db.session.get(User, staff.id))
    assert decisions == []


def test_decision_handler_runs_on_accept_and_refuse_only(app, parent, staff, decisions):
    accepted = make_request(app, parent.household_id, kind=TEST_KIND)
    refused = make_request(app, parent.household_id, kind=TEST_KIND)
    cancelled = make_request(app, parent.household_id, kind=TEST_KIND)
    with app.app_context():
        agent = db.session.get(User, staff.id)
        ops.change_status(db.session.get(Request, accepted), "in_review", actor=agent)
        ops.change_status(db.session.get(Request, accepted), "accepted", actor=agent)
        ops.change_status(db.session.get(Request, refused), "refused", actor=agent)
        ops.change_status(db.session.get(Request, cancelled), "cancelled", actor=agent)
    assert decisions == [(accepted, True, staff.id), (refused, False, staff.id)]


def test_family_never_sees_internal_notes(app, parent, staff):
    request_id = make_request(
        app,
        parent.household_id,
        by=parent.id,
        staff_id=staff.id,
        messages=("Pouvez-vous préciser la date ?",),
        notes=("Famille connue du service, rien à signaler.",),
    )
    with app.app_context():
        request = db.session.get(Request, request_id)
        family = rules.visible_events(request, for_staff=False)
        agents = rules.visible_events(request, for_staff=True)
        assert [e.kind for e in family] == ["created", "message"]
        assert [e.kind for e in agents] == ["created", "message", "note"]
        lines = rules.history(request, db.session.get(User, staff.id), for_staff=True)
        assert lines[-1].internal
        assert lines[-1].summary == "Note interne — non visible par la famille"


def test_staff_refusal_needs_a_reason(app, parent, staff):
    request_id = make_request(app, parent.household_id)
    with app.app_context():
        request = db.session.get(Request, request_id)
        with pytest.raises(ops.RequestError, match="motif du refus"):
            ops.staff_change_status(
                request, "refused", actor=db.session.get(User, staff.id), message="   "
            )
        assert request.status == "sent"
        with pytest.raises(ops.RequestError):
            ops.staff_change_status(request, "cancelled", actor=db.session.get(User, staff.id))


def test_family_cannot_reply_to_or_cancel_a_closed_request(app, parent, staff):
    request_id = make_request(app, parent.household_id, status="accepted", staff_id=staff.id)
    with app.app_context():
        request = db.session.get(Request, request_id)
        user = db.session.get(User, parent.id)
        with pytest.raises(ops.RequestError, match="close"):
            ops.family_reply(request, "Merci !", actor=user)
        with pytest.raises(ops.RequestError, match="ne peut plus être annulée"):
            ops.family_cancel(request, actor=user)


def test_an_empty_message_is_refused(app, parent):
    request_id = make_request(app, parent.household_id)
    with app.app_context(), pytest.raises(ops.RequestError):
        ops.add_message(db.session.get(Request, request_id), " \n ", actor=None)


def test_open_requests_for_household_lists_only_its_open_ones(app, parent, staff):
    other = make_user(app, role="parent")
    sent = make_request(app, parent.household_id)
    in_review = make_request(app, parent.household_id, status="in_review", staff_id=staff.id)
    make_request(app, parent.household_id, status="refused", staff_id=staff.id)
    make_request(app, other.household_id)
    with app.app_context():
        found = rules.open_requests_for_household(parent.household_id)
        assert {r.id for r in found} == {sent, in_review}
        assert all(r.is_open for r in found)


def test_household_requests_lists_open_ones_first(app, parent, staff):
    first_closed = make_request(app, parent.household_id, status="accepted", staff_id=staff.id)
    open_one = make_request(app, parent.household_id)
    last_closed = make_request(app, parent.household_id, status="cancelled", staff_id=staff.id)
    with app.app_context():
        ids = [r.id for r in rules.household_requests(parent.household_id)]
    assert ids == [open_one, last_closed, first_closed]


def test_household_names_come_from_the_adults(app, parent):
    with app.app_context():
        names = rules.household_names({parent.household_id})
    assert names[parent.household_id].startswith("Parent")
    assert names[parent.household_id].endswith(" Test")


def test_dates_are_shown_in_paris_time():
    winter = datetime(2026, 11, 26, 13, 5, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert datetime_fr(winter) == "26/11/2026 à 14:05"
    assert datetime_fr(summer) == "01/07/2026 à 14:00"
    assert date_fr(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == "01/01/2027"
    assert datetime_fr(None) == date_fr(None) == ""
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert since_fr(datetime(2026, 11, 26, 11, 55, tzinfo=UTC), now) == "il y a 5 min"
    assert since_fr(datetime(2026, 11, 26, 9, 0, tzinfo=UTC), now) == "il y a 3 h"
    assert since_fr(datetime(2026, 11, 25, 9, 0, tzinfo=UTC), now) == "hier"
    assert since_fr(datetime(2026, 11, 20, 9, 0, tzinfo=UTC), now) == "il y a 6 jours"


def test_staff_queue_is_scoped_to_the_agents_services(app, parent, admin):
    staff = make_user(app, role="staff")
    mine = make_service(app)
    theirs = make_service(app)
    assign_staff(app, staff.id, mine)
    in_mine = make_request(app, parent.household_id, service_id=mine)
    in_theirs = make_request(app, parent.household_id, service_id=theirs)
    general = make_request(app, parent.household_id)
    with app.app_context():
        agent = db.session.get(User, staff.id)
        administrator = db.session.get(User, admin.id)
        seen = {r.id for r in rules.staff_queue(agent, rules.QueueFilters()).items}
        assert in_mine in seen
        # Another service's request, and one tied to no service (administrators'), are not.
        assert in_theirs not in seen and general not in seen
        assert rules.staff_queue(agent, rules.QueueFilters(service="general")).items == []
        # Asking for the other service's queue does not widen the scope.
        asked = rules.staff_queue(agent, rules.QueueFilters(service=str(theirs))).items
        assert asked == []
        everything = {r.id for r in rules.staff_queue(administrator, rules.QueueFilters()).items}
        assert {in_mine, in_theirs, general} <= everything
        only_general = rules.staff_queue(administrator, rules.QueueFilters(service="general"))
        assert all(r.service_id is None for r in only_general.items)


# --- Family pages -------------------------------------------------------------------------


def test_family_sees_its_requests_open_first(app, parent, staff):
    client = logged_in(app, parent)
    make_request(
        app, parent.household_id, title="Suppression de Jules", status="refused", staff_id=staff.id
    )
    make_request(app, parent.household_id, title="Vérification du carnet de vaccination")
    other = make_user(app, role="parent")
    make_request(app, other.household_id, title="Demande d'une autre famille")
    response = client.get("/mes-demandes")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert page.index("Vérification du carnet de vaccination") < page.index("Suppression de Jules")
    assert "Envoyée" in page and "Refusée" in page
    assert "Suppression d&#39;un membre du foyer" in page
    assert "Demande d&#39;une autre famille" not in page
    assert response.headers["Cache-Control"] == "no-store"


def test_family_sees_the_dated_history_without_internal_notes(app, parent, staff):
    request_id = make_request(
        app,
        parent.household_id,
        by=parent.id,
        staff_id=staff.id,
        messages=("Merci de nous envoyer le jugement.",),
        notes=("Dossier signalé par l'école : prudence.",),
        status="accepted",
    )
    client = logged_in(app, parent)
    page = client.get(f"/mes-demandes/{request_id}").get_data(as_text=True)
    assert "Merci de nous envoyer le jugement." in page
    assert "Envoyée → Acceptée" in page
    assert "Demande envoyée" in page
    assert "prudence" not in page
    assert "Note interne" not in page
    # Closed: no reply form, no cancel button.
    assert "Écrire au service" not in page
    assert "Confirmer l&#39;annulation" not in page


def test_another_households_request_is_404(app, parent):
    other = make_user(app, role="parent")
    request_id = make_request(app, other.household_id, by=other.id)
    client = logged_in(app, parent)
    assert client.get(f"/mes-demandes/{request_id}").status_code == 404
    assert (
        post(client, f"/mes-demandes/{request_id}/message", {"body": "Bonjour"}).status_code == 404
    )
    assert post(client, f"/mes-demandes/{request_id}/annuler").status_code == 404
    assert client.get("/mes-demandes/999999").status_code == 404
    assert request_state(app, request_id) == ("sent", [("created", None)])


def test_anonymous_visitors_are_sent_to_the_login_page(app, client, parent):
    request_id = make_request(app, parent.household_id)
    for path in (
        "/mes-demandes",
        f"/mes-demandes/{request_id}",
        "/admin/demandes",
        f"/admin/demandes/{request_id}",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/connexion"), path


def test_a_parent_gets_403_on_the_staff_queue(app, parent):
    request_id = make_request(app, parent.household_id)
    client = logged_in(app, parent)
    assert client.get("/admin/demandes").status_code == 403
    assert client.get(f"/admin/demandes/{request_id}").status_code == 403
    response = post(client, f"/admin/demandes/{request_id}/statut", {"accept": "y"})
    assert response.status_code == 403
    assert request_state(app, request_id)[0] == "sent"


def test_staff_get_403_on_family_pages(app, staff):
    client = logged_in(app, staff)
    assert client.get("/mes-demandes").status_code == 403


def test_posts_without_csrf_token_are_refused(app, parent, staff):
    request_id = make_request(app, parent.household_id)
    family = logged_in(app, parent)
    agent = logged_in(app, staff)
    assert family.post(f"/mes-demandes/{request_id}/annuler").status_code == 400
    assert family.post(f"/mes-demandes/{request_id}/message", data={"body": "x"}).status_code == 400
    response = agent.post(f"/admin/demandes/{request_id}/statut", data={"accept": "y"})
    assert response.status_code == 400
    assert "Le formulaire a expiré" in response.get_data(as_text=True)
    assert request_state(app, request_id) == ("sent", [("created", None)])


def test_family_replies_and_the_service_is_told(app, parent, outbox):
    service_id = make_service(app, mailbox="aps@example.org")
    request_id = make_request(app, parent.household_id, service_id=service_id)
    client = logged_in(app, parent)
    response = post(client, f"/mes-demandes/{request_id}/message", {"body": "  Voici le RIB.  "})
    assert response.status_code == 303
    assert request_state(app, request_id)[1][-1] == ("message", "Voici le RIB.")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Votre message a été envoyé au service." in page
    assert "Message de la famille" in page
    (mail_,) = mails_to(outbox, "aps@example.org")
    assert f"/admin/demandes/{request_id}" in mail_.body
    assert "Voici le RIB" not in mail_.body  # the content stays in the portal


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("", "Le message est obligatoire."),
        ("   \n  ", "Le message est obligatoire."),
        ("x" * 10_000, "ne peut pas dépasser"),
        ("x" * 2001, "ne peut pas dépasser"),
        ("avant\x00après", "caractères non autorisés"),
    ],
)
def test_family_message_is_validated_and_nothing_saved(app, parent, outbox, body, error):
    request_id = make_request(app, parent.household_id)
    client = logged_in(app, parent)
    response = post(client, f"/mes-demandes/{request_id}/message", {"body": body})
    assert response.status_code == 422
    assert error in response.get_data(as_text=True)
    assert request_state(app, request_id) == ("sent", [("created", None)])
    assert outbox == []


def test_a_message_of_2000_characters_with_newlines_is_accepted(app, parent):
    request_id = make_request(app, parent.household_id)
    client = logged_in(app, parent)
    body = ("ligne\r\n" * 285) + "fin"  # 2,000 characters once CRLF counts as one
    response = post(client, f"/mes-demandes/{request_id}/message", {"body": body})
    assert response.status_code == 303


def test_family_cancels_an_open_request(app, parent, outbox):
    service_id = make_service(app, mailbox="goulidons@example.org")
    request_id = make_request(app, parent.household_id, service_id=service_id)
    client = logged_in(app, parent)
    response = post(client, f"/mes-demandes/{request_id}/annuler")
    assert response.status_code == 303
    status, events = request_state(app, request_id)
    assert status == "cancelled"
    assert events[-1] == ("status", None)
    assert len(mails_to(outbox, "goulidons@example.org")) == 1
    assert mails_to(outbox, parent.email) == []
    # Twice: a French error, nothing more saved.
    response = post(client, f"/mes-demandes/{request_id}/annuler", follow_redirects=True)
    assert "ne peut plus être annulée" in response.get_data(as_text=True)
    assert len(request_state(app, request_id)[1]) == 2
    response = post(
        client,
        f"/mes-demandes/{request_id}/message",
        {"body": "Et maintenant ?"},
        follow_redirects=True,
    )
    assert "Cette demande est close" in response.get_data(as_text=True)
    assert len(request_state(app, request_id)[1]) == 2


def test_family_reply_by_htmx_returns_the_history_fragment(app, parent):
    request_id = make_request(app, parent.household_id)
    client = logged_in(app, parent)
    response = htmx_post(client, f"/mes-demandes/{request_id}/message", {"body": "Merci"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert 'id="suivi"' in body
    assert 'data-hx-swap-oob="innerHTML"' in body
    assert "Votre message a été envoyé au service." in body
    assert "HX-Request" in response.headers["Vary"]


# --- Staff --------------------------------------------------------------------------------


def test_staff_of_another_service_gets_404(app, parent):
    staff = make_user(app, role="staff")
    mine = make_service(app)
    theirs = make_service(app)
    assign_staff(app, staff.id, mine)
    request_id = make_request(app, parent.household_id, service_id=theirs)
    client = logged_in(app, staff)
    assert client.get(f"/admin/demandes/{request_id}").status_code == 404
    assert post(client, f"/admin/demandes/{request_id}/statut", {"accept": "y"}).status_code == 404
    response = post(client, f"/admin/demandes/{request_id}/message", {"body": "x", "send": "y"})
    assert response.status_code == 404
    assert request_state(app, request_id) == ("sent", [("created", None)])
    with app.app_context():
        denied = db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "access.denied", AuditEvent.target == f"request:{request_id}"
            )
        ).all()
        assert denied and all(e.actor_id == staff.id for e in denied)
    # Their own service is fine; a request tied to no service is for administrators.
    assert (
        client.get(
            f"/admin/demandes/{make_request(app, parent.household_id, service_id=mine)}"
        ).status_code
        == 200
    )
    assert (
        client.get(f"/admin/demandes/{make_request(app, parent.household_id)}").status_code == 404
    )


def test_an_administrator_sees_every_service(app, parent, admin):
    request_id = make_request(app, parent.household_id, service_id=make_service(app))
    client = logged_in(app, admin)
    assert client.get(f"/admin/demandes/{request_id}").status_code == 200
    assert f"/admin/demandes/{request_id}" in client.get("/admin/demandes").get_data(as_text=True)


def test_staff_sees_internal_notes_marked_as_such(app, parent, staff):
    request_id = make_request(
        app, parent.household_id, staff_id=staff.id, notes=("Vérifier avec l'école.",)
    )
    page = logged_in(app, staff).get(f"/admin/demandes/{request_id}").get_data(as_text=True)
    assert "Vérifier avec l&#39;école." in page
    assert "Note interne — non visible par la famille" in page


def test_staff_accept_runs_the_domain_handler_and_tells_the_family(
    app, parent, staff, decisions, outbox
):
    request_id = make_request(app, parent.household_id, kind=TEST_KIND, title="Retrait de Léo")
    client = logged_in(app, staff)
    response = post(
        client,
        f"/admin/demandes/{request_id}/statut",
        {"accept": "y", "message": "Bonne continuation."},
    )
    assert response.status_code == 303
    assert decisions == [(request_id, True, staff.id)]
    status, events = request_state(app, request_id)
    assert status == "accepted"
    assert events[-1] == ("status", "Bonne continuation.")
    (mail_,) = mails_to(outbox, parent.email)
    assert "acceptée" in mail_.subject
    assert "Bonne continuation." in mail_.body
    assert f"/mes-demandes/{request_id}" in mail_.body
    with app.app_context():
        audited = db.session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.target == f"request:{request_id}", AuditEvent.actor_id == staff.id
            )
        ).all()
        assert "request.status" in audited
        assert (
            db.session.scalar(select(MailMessage.kind).where(MailMessage.recipient == parent.email))
            == "request-update"
        )
    # The family sees the decision in its history.
    page = logged_in(app, parent).get(f"/mes-demandes/{request_id}").get_data(as_text=True)
    assert "Envoyée → Acceptée" in page
    assert "Bonne continuation." in page


def test_take_in_charge_then_refuse(app, parent, staff, decisions, outbox):
    request_id = make_request(app, parent.household_id, kind=TEST_KIND)
    client = logged_in(app, staff)
    assert post(client, f"/admin/demandes/{request_id}/statut", {"take": "y"}).status_code == 303
    assert request_state(app, request_id)[0] == "in_review"
    response = post(
        client,
        f"/admin/demandes/{request_id}/statut",
        {"refuse": "y", "message": "Pièce manquante."},
    )
    assert response.status_code == 303
    assert request_state(app, request_id)[0] == "refused"
    assert decisions == [(request_id, False, staff.id)]
    assert len(mails_to(outbox, parent.email)) == 2


def test_refusal_without_a_message_is_refused(app, parent, staff, decisions, outbox):
    request_id = make_request(app, parent.household_id, kind=TEST_KIND)
    client = logged_in(app, staff)
    for message in ("", "   "):
        response = post(
            client, f"/admin/demandes/{request_id}/statut", {"refuse": "y", "message": message}
        )
        assert response.status_code == 422
        assert "Indiquez le motif du refus" in response.get_data(as_text=True)
    assert request_state(app, request_id) == ("sent", [("created", None)])
    assert decisions == []
    assert outbox == []


def test_a_decision_needs_exactly_one_action(app, parent, staff):
    request_id = make_request(app, parent.household_id)
    client = logged_in(app, staff)
    for data in ({}, {"accept": "y", "refuse": "y", "message": "Les deux ?"}):
        response = post(client, f"/admin/demandes/{request_id}/statut", data)
        assert response.status_code == 422
        assert "Choisissez une action" in response.get_data(as_text=True)
    assert request_state(app, request_id)[0] == "sent"


def test_hidden_fields_cannot_pick_another_status(app, parent, staff):
    request_id = make_request(app, parent.household_id)
    client = logged_in(app, staff)
    response = post(
        client,
        f"/admin/demandes/{request_id}/statut",
        {"take": "y", "status": "accepted", "to_status": "accepted"},
    )
    assert response.status_code == 303
    assert request_state(app, request_id)[0] == "in_review"


def test_staff_message_is_mailed_but_an_internal_note_is_not(app, parent, staff, outbox):
    request_id = make_request(app, parent.household_id)
    client = logged_in(app, staff)
    response = post(
        client,
        f"/admin/demandes/{request_id}/message",
        {"body": "Nous avons besoin d'un justificatif.", "send": "y"},
    )
    assert response.status_code == 303
    (mail_,) = mails_to(outbox, parent.email)
    assert "Nouveau message" in mail_.subject
    assert "Nous avons besoin d'un justificatif." in mail_.body
    response = post(
        client,
        f"/admin/demandes/{request_id}/message",
        {"body": "Appelé la mère, elle l'envoie lundi.", "note": "y"},
    )
    assert response.status_code == 303
    assert len(outbox) == 1
    events = request_state(app, request_id)[1]
    assert events[-2:] == [
        ("message", "Nous avons besoin d'un justificatif."),
        ("note", "Appelé la mère, elle l'envoie lundi."),
    ]
    with app.app_context():
        actions = set(
            db.session.scalars(
                select(AuditEvent.action).where(AuditEvent.target == f"request:{request_id}")
            )
        )
    assert {"request.message", "request.note"} <= actions


@pytest.mark.parametrize("body", ["", "x" * 10_000])
def test_staff_message_is_validated(app, parent, staff, outbox, body):
    request_id = make_request(app, parent.household_id)
    client = logged_in(app, staff)
    response = post(client, f"/admin/demandes/{request_id}/message", {"body": body, "send": "y"})
    assert response.status_code == 422
    assert request_state(app, request_id) == ("sent", [("created", None)])
    assert outbox == []


def test_deciding_a_closed_request_shows_a_french_error(app, parent, staff, outbox):
    request_id = make_request(app, parent.household_id, status="cancelled", staff_id=staff.id)
    client = logged_in(app, staff)
    response = post(
        client, f"/admin/demandes/{request_id}/statut", {"accept": "y"}, follow_redirects=True
    )
    assert response.status_code == 200
    assert "ne peut plus changer de statut" in response.get_data(as_text=True)
    assert request_state(app, request_id)[0] == "cancelled"
    assert outbox == []


def test_a_failing_domain_handler_saves_nothing(app, parent, staff, failing_decision, outbox):
    request_id = make_request(app, parent.household_id, kind=TEST_KIND)
    client = logged_in(app, staff)
    response = htmx_post(client, f"/admin/demandes/{request_id}/statut", {"accept": "y"})
    assert response.status_code == 200
    assert "Le membre a déjà quitté le foyer." in response.get_data(as_text=True)
    assert request_state(app, request_id) == ("sent", [("created", None)])
    assert outbox == []


def test_htmx_staff_action_returns_the_fragment(app, parent, staff, outbox):
    request_id = make_request(app, parent.household_id)
    client = logged_in(app, staff)
    response = htmx_post(client, f"/admin/demandes/{request_id}/statut", {"take": "y"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert 'id="suivi"' in body
    assert "Demande prise en charge" in body
    assert "Envoyée → En cours d&#39;examen" in body
    assert "HX-Request" in response.headers["Vary"]
    assert request_state(app, request_id)[0] == "in_review"
    # An invalid htmx action answers 200 (htmx swaps it) with the error inline.
    response = htmx_post(client, f"/admin/demandes/{request_id}/statut", {"refuse": "y"})
    assert response.status_code == 200
    assert "Indiquez le motif du refus" in response.get_data(as_text=True)
    assert "<html" not in response.get_data(as_text=True)


# --- The queue ----------------------------------------------------------------------------


def test_queue_lists_open_requests_newest_first_with_the_family_name(app, parent, staff):
    old = make_request(app, parent.household_id, title="Ancienne demande")
    new = make_request(app, parent.household_id, title="Nouvelle demande")
    make_request(
        app, parent.household_id, title="Demande close", status="accepted", staff_id=staff.id
    )
    page = logged_in(app, staff).get("/admin/demandes").get_data(as_text=True)
    assert page.index(f"/admin/demandes/{new}") < page.index(f"/admin/demandes/{old}")
    assert "Demande close" not in page
    assert "Parent" in page  # the household's adult
    assert "à l&#39;instant" in page  # the age of the request
    all_page = logged_in(app, staff).get("/admin/demandes?status=all").get_data(as_text=True)
    assert "Demande close" in all_page


def test_queue_filters_by_service_status_and_kind(app, parent, admin):
    aps = make_service(app, name="APS test")
    make_request(app, parent.household_id, service_id=aps, title="Pour l'APS")
    make_request(app, parent.household_id, title="Pour tout le monde")
    make_request(app, parent.household_id, kind="document_review", title="Un document")
    client = logged_in(app, admin)
    page = client.get(f"/admin/demandes?service={aps}").get_data(as_text=True)
    assert "Pour l&#39;APS" in page and "Pour tout le monde" not in page
    page = client.get("/admin/demandes?service=general&kind=member_removal").get_data(as_text=True)
    assert "Pour tout le monde" in page
    assert "Pour l&#39;APS" not in page and "Un document" not in page
    page = client.get("/admin/demandes?status=refused").get_data(as_text=True)
    assert "Aucune demande ne correspond" in page


@pytest.mark.parametrize(
    "query",
    [
        "service=999999",
        "service=abc",
        "status=nope",
        "kind=<script>",
        "page=-4",
        "page=abc",
        "page=999999999999999999999",
    ],
)
def test_queue_ignores_unknown_filter_values(app, staff, query):
    assert logged_in(app, staff).get(f"/admin/demandes?{query}").status_code == 200


def test_queue_is_paginated_by_30(app, parent, admin):
    ids = [make_request(app, parent.household_id, title=f"Pagination {i}") for i in range(33)]
    client = logged_in(app, admin)
    first = client.get("/admin/demandes?kind=member_removal").get_data(as_text=True)
    assert f'/admin/demandes/{ids[-1]}"' in first
    assert f'/admin/demandes/{ids[2]}"' not in first
    assert "Page suivante" in first
    second = client.get("/admin/demandes?kind=member_removal&page=2").get_data(as_text=True)
    assert f'/admin/demandes/{ids[0]}"' in second
    assert f'/admin/demandes/{ids[-1]}"' not in second
    assert "Page précédente" in second


def count_queries(app, client, path) -> int:
    with counted_queries(app) as statements:
        assert client.get(path).status_code == 200
    return len(statements)


def test_queue_and_family_list_take_a_constant_number_of_queries(app, staff, admin):
    services = [make_service(app) for _ in range(3)]
    assign_staff(app, staff.id, *services)

    def make_families(count):
        for i in range(count):
            family = make_user(app, role="parent")
            make_request(app, family.household_id, service_id=services[i % 3], by=family.id)

    agent = logged_in(app, staff)
    make_families(3)
    with_three = count_queries(app, agent, "/admin/demandes")
    make_families(9)
    with_twelve = count_queries(app, agent, "/admin/demandes")
    assert with_three == with_twelve
    assert with_three >= 4  # the listener does see the page's queries

    parent = make_user(app, role="parent")
    family = logged_in(app, parent)
    make_request(app, parent.household_id)
    one = count_queries(app, family, "/mes-demandes")
    for _ in range(5):
        make_request(app, parent.household_id, messages=("Bonjour",))
    six = count_queries(app, family, "/mes-demandes")
    assert one == six


# --- Random input -------------------------------------------------------------------------

FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=60)
fuzz_text = st.one_of(
    st.just(""),
    any_text,
    st.sampled_from(["a" * 2000, "a" * 2001, "é" * 2000, "😀" * 2001, " " * 3000, "x" * 10_000]),
    any_text.map(lambda s: f"{s}\x00{s}"),
)
buttons = st.lists(st.sampled_from(["take", "accept", "refuse", "send", "note"]), max_size=3)


@pytest.fixture
def family_and_agent(app, parent, staff):
    """Logged in once per test, not once per example (hashing passwords takes time)."""
    return logged_in(app, parent), logged_in(app, staff)


@FUZZ
@given(body=fuzz_text, pressed=buttons)
def test_random_messages_never_break_a_page_and_invalid_ones_save_nothing(
    app, parent, family_and_agent, body, pressed
):
    request_id = make_request(app, parent.household_id)
    family, agent = family_and_agent
    extra = dict.fromkeys(pressed, "y")
    for client, path, data in (
        (family, f"/mes-demandes/{request_id}/message", {"body": body}),
        (agent, f"/admin/demandes/{request_id}/message", {"body": body, **extra}),
        (agent, f"/admin/demandes/{request_id}/statut", {"message": body, **extra}),
    ):
        before = request_state(app, request_id)
        response = post(client, path, data)
        assert response.status_code in (303, 422), (path, response.status_code)
        if response.status_code == 422:
            assert request_state(app, request_id) == before


def test_dashboard_partial_lists_open_requests(app, parent, staff):
    """requests/_open_requests.html is what the dashboard includes."""
    from flask import render_template_string

    open_id = make_request(app, parent.household_id, title="Demande ouverte")
    make_request(
        app, parent.household_id, title="Demande close", status="accepted", staff_id=staff.id
    )
    with app.test_request_context():
        html = render_template_string(
            '{% include "requests/_open_requests.html" %}',
            open_requests=rules.open_requests_for_household(parent.household_id),
        )
        empty = render_template_string(
            '{% include "requests/_open_requests.html" %}', open_requests=[]
        )
    assert f"/mes-demandes/{open_id}" in html
    assert "Envoyée" in html
    assert "Demande close" not in html
    assert "aucune demande en cours" in empty


def test_family_cannot_cancel_a_document_review(app, client, auth, parent):
    with app.test_request_context():
        user = db.session.get(User, parent.id)
        request_id = ops.open_request(
            "document_review", parent.household_id, "Vérification : attestation", actor=user
        ).id
        db.session.commit()
    auth.login(parent)
    page = client.get(f"/mes-demandes/{request_id}").get_data(as_text=True)
    assert "Annuler ma demande" not in page
    response = post(client, f"/mes-demandes/{request_id}/annuler", follow_redirects=True)
    assert "annule pas" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Request, request_id).status == "sent"
