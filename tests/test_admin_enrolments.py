"""Back office: the enrolment queue, an enrolment's file, decisions, staff enrolling a child.

CSRF stays on: every POST goes through `post()` with the page's token, except the one
test that checks a missing token is refused.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from citoyens.core.models import AuditEvent
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.requests import operations as request_ops
from tests.admin_enrolments_factories import (
    configure_service,
    enrolment_state,
    make_activity,
    make_enrolment,
    make_year,
    request_of,
)
from tests.conftest import counted_queries, post
from tests.documents_factories import add_child, children_of, make_document, make_type
from tests.factories import make_user
from tests.requests_factories import assign_staff, make_request, make_service

try:
    from citoyens.enrolments import operations as enrolment_ops
except ImportError:  # the parent flow is not in this build yet
    enrolment_ops = None

HX = {"HX-Request": "true"}


def login(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303
    return client


@pytest.fixture(autouse=True)
def mirror_handlers():
    """The enrolments domain mirrors a request's status onto its enrolment. Should its
    handlers not be registered in this build, register stand-ins for these tests only."""
    added = []
    for kind in ("enrolment", "place_request"):
        if kind not in request_ops._decision_handlers:
            request_ops._decision_handlers[kind] = _decide
            added.append((request_ops._decision_handlers, kind))
        if kind not in request_ops._status_handlers:
            request_ops._status_handlers[kind] = _mirror
            added.append((request_ops._status_handlers, kind))
    yield
    for registry, kind in added:
        registry.pop(kind, None)


def _decide(request, accepted, actor):
    enrolment = db.session.scalar(select(Enrolment).where(Enrolment.request_id == request.id))
    enrolment.status = "accepted" if accepted else "refused"


def _mirror(request, from_status, to_status, actor):
    if to_status in ("waiting_list", "cancelled"):
        enrolment = db.session.scalar(select(Enrolment).where(Enrolment.request_id == request.id))
        enrolment.status = to_status


@pytest.fixture
def world(app):
    """Two services (A, B), a school year, a family with two children, an agent of A."""
    service_a = make_service(app, name="Accueil périscolaire")
    service_b = make_service(app, name="Restauration scolaire")
    activity_a = make_activity(app, service_a, "APS matin")
    activity_b = make_activity(app, service_b, "Repas du midi")
    year = make_year(app)
    family = make_user(app, role="parent", children=2)
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, service_a)
    children = children_of(app, family.household_id)
    return {
        "a": service_a,
        "b": service_b,
        "activity_a": activity_a,
        "activity_b": activity_b,
        "year": year,
        "family": family,
        "children": children,
        "agent": agent,
    }


def enrol_in(app, world, service_key="a", child=0, **kwargs):
    activity = world[f"activity_{service_key}"]
    return make_enrolment(
        app,
        world["family"].household_id,
        world["children"][child],
        world[service_key],
        world["year"],
        activity_ids=(activity,),
        by=world["family"].id,
        **kwargs,
    )


def audit_actions(app, target: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(select(AuditEvent.action).where(AuditEvent.target == target))
        )


# --- The queue ------------------------------------------------------------------------------


def test_agent_sees_only_their_services_pending_enrolments(app, world):
    enrol_in(app, world, "a")
    enrol_in(app, world, "b", child=1)
    page = login(app, world["agent"]).get("/admin/inscriptions").get_data(as_text=True)
    assert "1 inscription" in page
    assert "Accueil périscolaire" in page and "APS matin" in page
    assert "Repas du midi" not in page
    assert "Parent" in page  # the household's name


def test_admin_sees_every_service_and_filters_by_service(app, world):
    enrol_in(app, world, "a")
    enrol_in(app, world, "b", child=1)
    client = login(app, make_user(app, role="admin"))
    assert "2 inscriptions" in client.get("/admin/inscriptions").get_data(as_text=True)
    page = client.get(f"/admin/inscriptions?service={world['b']}").get_data(as_text=True)
    assert "1 inscription" in page and "Repas du midi" in page and "APS matin" not in page


def test_queue_filters_by_status_and_school_year(app, world):
    accepted = enrol_in(app, world, "a")
    other_year = make_year(app)
    make_enrolment(
        app,
        world["family"].household_id,
        world["children"][1],
        world["a"],
        other_year,
        by=world["family"].id,
    )
    client = login(app, world["agent"])
    post(client, f"/admin/inscriptions/{accepted}/decision", {"accept": "y"})

    pending = client.get("/admin/inscriptions").get_data(as_text=True)
    assert "1 inscription" in pending and "Enfant1" in pending
    assert "Enfant0" not in pending
    done = client.get("/admin/inscriptions?status=accepted").get_data(as_text=True)
    assert "1 inscription" in done and "Enfant0" in done
    everything = client.get("/admin/inscriptions?status=all").get_data(as_text=True)
    assert "2 inscriptions" in everything
    by_year = client.get(f"/admin/inscriptions?status=all&year={other_year}")
    assert "1 inscription" in by_year.get_data(as_text=True)


@pytest.mark.parametrize(
    "query", ["?status=nimporte", "?service=abc", "?year=x", "?page=-3", "?page=9999"]
)
def test_queue_ignores_unknown_filter_values(app, world, query):
    enrol_in(app, world, "a")
    assert login(app, world["agent"]).get(f"/admin/inscriptions{query}").status_code == 200


def test_agent_cannot_widen_the_queue_to_another_service(app, world):
    enrol_in(app, world, "b")
    page = login(app, world["agent"]).get(f"/admin/inscriptions?service={world['b']}")
    assert "0 inscription" in page.get_data(as_text=True)


def test_queue_is_paginated_by_30(app, world):
    household = world["family"].household_id
    for n in range(31):
        child = add_child(app, household, f"Enfant{n:02d}x")
        make_enrolment(app, household, child, world["a"], world["year"])
    client = login(app, world["agent"])
    first = client.get("/admin/inscriptions").get_data(as_text=True)
    assert "31 inscriptions" in first and "page 1 sur 2" in first
    second = client.get("/admin/inscriptions?page=2").get_data(as_text=True)
    assert "Enfant30x" in second and "Enfant00x" not in second


def count_queries(app, client, path) -> int:
    with counted_queries(app) as statements:
        assert client.get(path).status_code == 200
    return len(statements)


def test_queue_takes_a_constant_number_of_queries(app, world):
    household = world["family"].household_id
    client = login(app, world["agent"])
    for _ in range(3):
        make_enrolment(app, household, add_child(app, household), world["a"], world["year"])
    with_three = count_queries(app, client, "/admin/inscriptions")
    for _ in range(9):
        other = make_user(app, role="parent", children=1)
        child = children_of(app, other.household_id)[0]
        activity = make_activity(app, world["a"])
        make_enrolment(
            app, other.household_id, child, world["a"], world["year"], activity_ids=(activity,)
        )
    with_twelve = count_queries(app, client, "/admin/inscriptions")
    assert with_three == with_twelve


# --- The file -------------------------------------------------------------------------------


def test_file_shows_child_household_documents_and_history(app, world):
    household = world["family"].household_id
    child = world["children"][0]
    vaccines = make_type(app, scope="child", label="Carnet de vaccinations", health=True)
    insurance = make_type(app, scope="household", label="Responsabilité civile")
    configure_service(app, world["a"], document_type_ids=(vaccines, insurance))
    document = make_document(
        app,
        household_id=household,
        type_id=vaccines,
        person_id=child,
        status="accepted",
        valid_until=date(2099, 1, 1),
    )
    with app.app_context():
        from citoyens.households.models import Household, Person

        db.session.get(Household, household).family_quotient = 812
        person = db.session.get(Person, child)
        person.allergies = "Arachide"
        person.pai = True
        db.session.commit()
    enrolment = enrol_in(app, world, "a")

    response = login(app, world["agent"]).get(f"/admin/inscriptions/{enrolment}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enfant0 Test" in page and "01/01/2018" in page
    assert "Arachide" in page and "projet d'accueil individualisé" in page
    assert "812 €" in page
    assert "Carnet de vaccinations" in page and "Accepté" in page
    assert "expire avant la fin de l'année scolaire" in page  # 2099 < the year's end
    assert f"/admin/documents/{document}/fichier" in page
    assert "Responsabilité civile" in page and "Manquant" in page
    assert "APS matin" in page
    assert "Demande envoyée" in page  # the request's history
    assert 'name="accept"' in page and 'name="refuse"' in page
    assert 'name="wait"' not in page  # not a place request
    assert "enrolment.viewed" in audit_actions(app, f"enrolment:{enrolment}")


def test_place_request_file_shows_its_details(app, world):
    configure_service(app, world["a"], place_request=True)
    enrolment = enrol_in(app, world, "a", place=True)
    page = login(app, world["agent"]).get(f"/admin/inscriptions/{enrolment}")
    text = page.get_data(as_text=True)
    assert "Demande de place" in text and "05/01/2100" in text and "24" in text
    assert "Le mardi de préférence" in text


def test_agent_of_another_service_gets_404_and_it_is_logged(app, world):
    enrolment = enrol_in(app, world, "b")
    client = login(app, world["agent"])
    assert client.get(f"/admin/inscriptions/{enrolment}").status_code == 404
    response = post(client, f"/admin/inscriptions/{enrolment}/decision", {"accept": "y"})
    assert response.status_code == 404
    assert enrolment_state(app, enrolment) == ("pending", "sent")
    assert audit_actions(app, f"enrolment:{enrolment}").count("access.denied") == 2


def test_unknown_enrolment_is_404(app, world):
    assert login(app, world["agent"]).get("/admin/inscriptions/999999").status_code == 404


def test_parent_gets_403_and_anonymous_goes_to_login(app, world):
    enrolment = enrol_in(app, world, "a")
    family = login(app, world["family"])
    assert family.get("/admin/inscriptions").status_code == 403
    assert family.get(f"/admin/inscriptions/{enrolment}").status_code == 403
    response = app.test_client().get(f"/admin/inscriptions/{enrolment}")
    assert response.status_code in (302, 303) and "/connexion" in response.headers["Location"]


# --- Decisions ------------------------------------------------------------------------------


def test_accepting_mirrors_onto_the_enrolment_and_emails_the_family(app, world, outbox):
    enrolment = enrol_in(app, world, "a")
    client = login(app, world["agent"])
    response = post(
        client,
        f"/admin/inscriptions/{enrolment}/decision",
        {"accept": "y", "message": "Bienvenue à l'APS !"},
    )
    assert response.status_code == 303
    assert enrolment_state(app, enrolment) == ("accepted", "accepted")
    [mail] = [m for m in outbox if world["family"].email in m.recipients]
    assert "acceptée" in mail.subject and "Enfant0" in mail.subject
    assert "Bienvenue à l'APS !" in mail.body and "APS matin" in mail.body
    page = client.get(f"/admin/inscriptions/{enrolment}").get_data(as_text=True)
    assert "Inscription acceptée. La famille est prévenue" in page
    assert 'name="accept"' not in page  # decided: no more buttons
    actions = audit_actions(app, f"enrolment:{enrolment}")
    assert "enrolment.accepted" in actions


def test_refusing_needs_a_reason_and_saves_nothing_without_it(app, world, outbox):
    enrolment = enrol_in(app, world, "a")
    client = login(app, world["agent"])
    response = post(client, f"/admin/inscriptions/{enrolment}/decision", {"refuse": "y"})
    assert response.status_code == 422
    assert "Indiquez le motif du refus" in response.get_data(as_text=True)
    assert enrolment_state(app, enrolment) == ("pending", "sent")
    assert not outbox

    response = post(
        client,
        f"/admin/inscriptions/{enrolment}/decision",
        {"refuse": "y", "message": "Plus de place le matin."},
    )
    assert response.status_code == 303
    assert enrolment_state(app, enrolment) == ("refused", "refused")
    [mail] = outbox
    assert "refusée" in mail.subject.lower() or "n'est pas acceptée" in mail.body
    assert "Plus de place le matin." in mail.body


def test_htmx_decision_swaps_the_block_with_an_announcement(app, world, outbox):
    enrolment = enrol_in(app, world, "a")
    client = login(app, world["agent"])
    response = post(
        client, f"/admin/inscriptions/{enrolment}/decision", {"accept": "y"}, headers=HX
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" not in body and 'id="inscription-suivi"' in body
    assert 'id="annonce-inscription" data-hx-swap-oob="innerHTML"' in body
    assert "Inscription acceptée" in body
    assert response.headers["Vary"] == "HX-Request" or "HX-Request" in response.headers["Vary"]


def test_htmx_refusal_without_reason_answers_the_form_with_its_error(app, world):
    enrolment = enrol_in(app, world, "a")
    client = login(app, world["agent"])
    response = post(
        client, f"/admin/inscriptions/{enrolment}/decision", {"refuse": "y"}, headers=HX
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Indiquez le motif du refus" in body
    assert "a été enregistré : corrigez" in body
    assert enrolment_state(app, enrolment) == ("pending", "sent")


def test_a_decided_enrolment_cannot_be_decided_again(app, world, outbox):
    enrolment = enrol_in(app, world, "a")
    client = login(app, world["agent"])
    post(client, f"/admin/inscriptions/{enrolment}/decision", {"accept": "y"})
    outbox.clear()
    response = post(
        client,
        f"/admin/inscriptions/{enrolment}/decision",
        {"refuse": "y", "message": "Changement d'avis"},
        follow_redirects=True,
    )
    assert "ne peut plus changer de statut" in response.get_data(as_text=True)
    assert enrolment_state(app, enrolment) == ("accepted", "accepted")
    assert not outbox


def test_waiting_list_for_place_requests_only(app, world, outbox):
    plain = enrol_in(app, world, "a")
    client = login(app, world["agent"])
    response = post(client, f"/admin/inscriptions/{plain}/decision", {"wait": "y"})
    assert response.status_code == 303
    assert enrolment_state(app, plain) == ("pending", "sent")
    assert not outbox

    configure_service(app, world["a"], place_request=True)
    place = enrol_in(app, world, "a", child=1, place=True)
    assert 'name="wait"' in client.get(f"/admin/inscriptions/{place}").get_data(as_text=True)
    response = post(client, f"/admin/inscriptions/{place}/decision", {"wait": "y"})
    assert response.status_code == 303
    assert enrolment_state(app, place) == ("waiting_list", "waiting_list")
    [mail] = outbox
    assert "liste d'attente" in mail.subject and "Demande de place" in mail.subject
    queue = client.get("/admin/inscriptions?status=waiting_list").get_data(as_text=True)
    assert "1 inscription" in queue

    # From the waiting list, the commission accepts later.
    post(client, f"/admin/inscriptions/{place}/decision", {"accept": "y"})
    assert enrolment_state(app, place) == ("accepted", "accepted")


def test_decision_without_a_csrf_token_is_refused(app, world):
    enrolment = enrol_in(app, world, "a")
    client = login(app, world["agent"])
    response = client.post(f"/admin/inscriptions/{enrolment}/decision", data={"accept": "y"})
    assert response.status_code == 400
    assert enrolment_state(app, enrolment) == ("pending", "sent")


def test_posted_status_and_ids_are_ignored(app, world):
    """Only the button pressed counts: a forged `status` or `enrolment_id` changes nothing."""
    enrolment = enrol_in(app, world, "a")
    other = enrol_in(app, world, "b", child=1)
    client = login(app, world["agent"])
    post(
        client,
        f"/admin/inscriptions/{enrolment}/decision",
        {"accept": "y", "status": "refused", "enrolment_id": str(other)},
    )
    assert enrolment_state(app, enrolment) == ("accepted", "accepted")
    assert enrolment_state(app, other) == ("pending", "sent")


# --- Staff enrolling a child ----------------------------------------------------------------

needs_enrol = pytest.mark.skipif(
    enrolment_ops is None or not hasattr(enrolment_ops, "enrol"),
    reason="citoyens.enrolments.operations.enrol (parent flow) is not in this build yet",
)


def in_touch_with(app, world, service_key="a"):
    """The family has an open request in the service: its agents see it (services.scope)."""
    make_request(app, world["family"].household_id, service_id=world[service_key])


def test_new_enrolment_starts_by_finding_the_family(app, world):
    client = login(app, world["agent"])
    assert client.get("/admin/inscriptions/nouvelle").status_code == 200
    page = client.get("/admin/inscriptions/nouvelle?q=Parent").get_data(as_text=True)
    # Only the families the agent already sees are found: enrolling is never a way in.
    assert f"foyer={world['family'].household_id}" not in page
    in_touch_with(app, world)
    page = client.get("/admin/inscriptions/nouvelle?q=Parent").get_data(as_text=True)
    assert f"foyer={world['family'].household_id}" in page
    assert client.get("/admin/inscriptions/nouvelle?foyer=999999").status_code == 404


@needs_enrol
def test_staff_enrol_a_child_accepted_at_once_and_the_family_is_emailed(app, world, outbox):
    in_touch_with(app, world)
    client = login(app, world["agent"])
    household = world["family"].household_id
    page = client.get(f"/admin/inscriptions/nouvelle?foyer={household}").get_data(as_text=True)
    assert "Enfant0 Test" in page and "Accueil périscolaire" in page
    assert "Restauration scolaire" not in page  # not the agent's service
    response = post(
        client,
        f"/admin/inscriptions/nouvelle?foyer={household}",
        {
            "child": str(world["children"][0]),
            "service": str(world["a"]),
            "school_year": str(world["year"]),
            "activities": str(world["activity_a"]),
        },
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    enrolment_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert enrolment_state(app, enrolment_id) == ("accepted", "accepted")
    family_mails = [m for m in outbox if world["family"].email in m.recipients]
    assert len(family_mails) == 1 and "acceptée" in family_mails[0].subject
    assert "Inscription faite par le service" in family_mails[0].body
    actions = audit_actions(app, f"enrolment:{enrolment_id}")
    assert "enrolment.staff_created" in actions and "enrolment.accepted" in actions
    assert request_of(app, enrolment_id) is not None


@needs_enrol
def test_staff_enrol_refuses_another_service_and_foreign_child(app, world, outbox):
    in_touch_with(app, world)
    client = login(app, world["agent"])
    household = world["family"].household_id
    stranger = children_of(app, make_user(app, role="parent", children=1).household_id)[0]
    for data in (
        {"child": str(world["children"][0]), "service": str(world["b"])},
        {"child": str(stranger), "service": str(world["a"])},
        {"child": str(world["children"][0]), "service": str(world["a"]), "activities": "x"},
    ):
        response = post(
            client,
            f"/admin/inscriptions/nouvelle?foyer={household}",
            {"school_year": str(world["year"]), "activities": str(world["activity_a"]), **data},
        )
        assert response.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(Enrolment.id)) is None
    assert not outbox


@needs_enrol
def test_staff_enrol_shows_the_rules_problems(app, world, outbox):
    """A duplicate: the enrolments domain says why, nothing is saved."""
    enrol_in(app, world, "a")
    client = login(app, world["agent"])
    household = world["family"].household_id
    response = post(
        client,
        f"/admin/inscriptions/nouvelle?foyer={household}",
        {
            "child": str(world["children"][0]),
            "service": str(world["a"]),
            "school_year": str(world["year"]),
            "activities": str(world["activity_a"]),
        },
    )
    assert response.status_code == 422
    assert "a déjà une inscription" in response.get_data(as_text=True)
    with app.app_context():
        assert len(db.session.scalars(select(Enrolment.id)).all()) == 1
    assert not outbox
