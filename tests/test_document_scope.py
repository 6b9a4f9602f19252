"""Who may see a family's documents in the back office (DOMAIN.md, "Documents and personal
data": downloaded only by the household and staff of a service concerned).

An administrator sees every document. An agent sees a household's documents while it has
a live enrolment (pending, accepted, waiting list) or an open request in one of the agent's
services ("Staff and scope"); a request tied to no service opens nothing to agents.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.core.models import AuditEvent
from citoyens.documents.models import Document
from citoyens.documents.storage import get_storage
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.requests.models import Request
from citoyens.services.rules import households_visible_to, staff_can_see_household
from tests.admin_enrolments_factories import make_year
from tests.conftest import counted_queries, csrf_token, post
from tests.documents_factories import PDF, children_of, make_document, make_type, png
from tests.factories import make_user
from tests.requests_factories import assign_staff, make_request, make_service


@pytest.fixture(autouse=True)
def upload_folder(app, tmp_path, monkeypatch):
    folder = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(folder))
    monkeypatch.setitem(app.config, "UPLOAD_STORAGE", "filesystem")
    return folder


def logged_in(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303, "test account could not log in"
    return client


def stored_document(app, household_id: int, type_id: int, *, image: bool = False) -> int:
    """A pending document with its file in the store, and no review request (so the
    household is not in the general queue)."""
    document_id = make_document(
        app,
        household_id=household_id,
        type_id=type_id,
        content_type="image/png" if image else "application/pdf",
    )
    with app.app_context():
        document = db.session.get(Document, document_id)
        get_storage().save(document.storage_key, png() if image else PDF)
    return document_id


def enrol(app, household_id: int, service_id: int, status: str = "pending") -> int:
    """An enrolment row alone (no request), so only the enrolment makes the link."""
    child_id = children_of(app, household_id)[0]
    year_id = make_year(app)
    with app.app_context():
        enrolment = Enrolment(
            household_id=household_id,
            child_id=child_id,
            service_id=service_id,
            school_year_id=year_id,
            status=status,
        )
        db.session.add(enrolment)
        db.session.commit()
        return enrolment.id


def denials(app, target: str) -> list[int | None]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent.actor_id)
                .where(AuditEvent.action == "access.denied", AuditEvent.target == target)
                .order_by(AuditEvent.id)
            )
        )


@dataclass
class Scene:
    service_a: int
    service_b: int
    household_a: int  # enrolled in A
    household_b: int  # enrolled in B only
    doc_a: int
    image_b: int
    doc_b: int


@pytest.fixture
def scene(app, staff) -> Scene:
    service_a, service_b = make_service(app), make_service(app)
    assign_staff(app, staff.id, service_a)
    family_a = make_user(app, role="parent", children=1)
    family_b = make_user(app, role="parent", children=1)
    enrol(app, family_a.household_id, service_a)
    enrol(app, family_b.household_id, service_b)
    doc_type = make_type(app, scope="household", label="Justificatif de domicile")
    photo_type = make_type(app, scope="household", label="Photo")
    return Scene(
        service_a=service_a,
        service_b=service_b,
        household_a=family_a.household_id,
        household_b=family_b.household_id,
        doc_a=stored_document(app, family_a.household_id, doc_type),
        image_b=stored_document(app, family_b.household_id, photo_type, image=True),
        doc_b=stored_document(app, family_b.household_id, doc_type),
    )


def in_queue(text: str, document_id: int) -> bool:
    return f'href="/admin/documents/{document_id}"' in text


# --- Agents ---------------------------------------------------------------------------------


def test_agent_opens_the_documents_of_a_household_enrolled_in_their_service(app, staff, scene):
    agent = logged_in(app, staff)
    assert agent.get(f"/admin/documents/{scene.doc_a}").status_code == 200
    download = agent.get(f"/admin/documents/{scene.doc_a}/fichier")
    assert download.status_code == 200 and download.data == PDF
    assert in_queue(agent.get("/admin/documents").get_data(as_text=True), scene.doc_a)
    assert denials(app, f"document:{scene.doc_a}") == []


def test_agent_gets_404_on_a_household_of_another_service_and_it_is_audited(app, staff, scene):
    agent = logged_in(app, staff)
    queue = agent.get("/admin/documents").get_data(as_text=True)
    assert not in_queue(queue, scene.doc_b) and not in_queue(queue, scene.image_b)
    assert agent.get(f"/admin/documents/{scene.doc_b}").status_code == 404
    assert agent.get(f"/admin/documents/{scene.doc_b}/fichier").status_code == 404
    assert agent.get(f"/admin/documents/{scene.image_b}/apercu").status_code == 404
    decision = post(agent, f"/admin/documents/{scene.doc_b}/decision", {"decision": "accepted"})
    assert decision.status_code == 404
    assert denials(app, f"document:{scene.doc_b}") == [staff.id] * 3
    assert denials(app, f"document:{scene.image_b}") == [staff.id]
    with app.app_context():
        assert db.session.get(Document, scene.doc_b).status == "pending"


def test_a_missing_document_stays_a_404(app, staff, scene):
    agent = logged_in(app, staff)
    assert agent.get("/admin/documents/999999").status_code == 404
    assert agent.get("/admin/documents/999999/fichier").status_code == 404


@pytest.mark.parametrize(
    ("status", "visible"),
    [
        ("pending", True),
        ("accepted", True),
        ("waiting_list", True),
        ("refused", False),
        ("cancelled", False),
    ],
)
def test_a_live_enrolment_concerns_the_service(app, staff, scene, status, visible):
    enrol(app, scene.household_b, scene.service_a, status=status)
    agent = logged_in(app, staff)
    expected = 200 if visible else 404
    assert agent.get(f"/admin/documents/{scene.doc_b}/fichier").status_code == expected


def test_an_open_request_filed_with_the_service_concerns_it_until_closed(app, staff, scene):
    request_id = make_request(app, scene.household_b, service_id=scene.service_a)
    agent = logged_in(app, staff)
    assert agent.get(f"/admin/documents/{scene.doc_b}").status_code == 200
    assert in_queue(agent.get("/admin/documents").get_data(as_text=True), scene.doc_b)
    with app.app_context():
        db.session.get(Request, request_id).status = "refused"
        db.session.commit()
    assert agent.get(f"/admin/documents/{scene.doc_b}").status_code == 404


def test_a_request_tied_to_no_service_opens_nothing_to_agents(app, staff, scene):
    loner = make_user(app, role="staff")  # works for no service at all
    make_request(app, scene.household_b)  # member removal: no service
    for account in (loner, staff):
        agent = logged_in(app, account)
        assert agent.get(f"/admin/documents/{scene.doc_b}").status_code == 404
        assert not in_queue(agent.get("/admin/documents").get_data(as_text=True), scene.doc_b)


def test_an_uploaded_document_is_reviewable_by_the_services_of_the_family_only(app, scene):
    """The upload opens a review tied to no service: an agent without a link to the family
    neither sees nor decides it; an administrator does."""
    family = make_user(app, role="parent", children=1)
    doc_type = make_type(app, scope="household")
    parent = logged_in(app, family)
    form = {
        "type_id": str(doc_type),
        "file": (io.BytesIO(PDF), "a.pdf"),
        "csrf_token": csrf_token(parent),
    }
    upload = parent.post("/mes-documents/envoyer", data=form, content_type="multipart/form-data")
    assert upload.status_code == 303
    with app.app_context():
        document_id = db.session.scalar(
            select(Document.id).where(Document.household_id == family.household_id)
        )
    agent = logged_in(app, make_user(app, role="staff"))
    assert agent.get(f"/admin/documents/{document_id}").status_code == 404
    assert not in_queue(agent.get("/admin/documents").get_data(as_text=True), document_id)
    manager = logged_in(app, make_user(app, role="admin"))
    assert manager.get(f"/admin/documents/{document_id}").status_code == 200
    assert in_queue(manager.get("/admin/documents").get_data(as_text=True), document_id)


# --- Administrators and the rules -----------------------------------------------------------


def test_admin_sees_every_document(app, admin, scene):
    manager = logged_in(app, admin)
    queue = manager.get("/admin/documents").get_data(as_text=True)
    assert all(in_queue(queue, d) for d in (scene.doc_a, scene.doc_b, scene.image_b))
    assert manager.get(f"/admin/documents/{scene.doc_b}").status_code == 200
    assert manager.get(f"/admin/documents/{scene.doc_b}/fichier").status_code == 200
    assert manager.get(f"/admin/documents/{scene.image_b}/apercu").status_code == 200


def test_rules_answer_in_one_query(app, staff, admin, scene):
    with app.app_context():
        agent, manager = db.session.get(User, staff.id), db.session.get(User, admin.id)
        assert households_visible_to(manager) is None
        with counted_queries(app) as queries:
            assert staff_can_see_household(manager, scene.household_b)
        assert queries == []
        with counted_queries(app) as queries:
            assert staff_can_see_household(agent, scene.household_a)
        assert len(queries) == 1
        assert not staff_can_see_household(agent, scene.household_b)
        visible = set(db.session.scalars(select(households_visible_to(agent).subquery())))
        assert scene.household_a in visible and scene.household_b not in visible
