"""Mail volume (issue 16): a new family's journey, counting e-mails and staff requests.

One e-mail per parent action, one "documents to check" request per enrolment: a family
signs up, confirms, completes its household, adds two children, uploads the four
documents an enrolment requires, sends the enrolment; an agent reviews the documents
on the request's page and accepts the enrolment. Every step's e-mails to the family and
the household's requests are counted.
"""

from __future__ import annotations

import html
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from citoyens.accounts.models import User
from citoyens.database import utcnow
from citoyens.documents.models import Document
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.requests.models import Request
from tests.conftest import csrf_token, post
from tests.documents_factories import make_type, png
from tests.enrolments_factories import make_offer
from tests.factories import make_user
from tests.requests_factories import assign_staff
from tests.test_app import empty_database_url  # noqa: F401 (fixture)

SIGNUP = {
    "first_name": "Camille",
    "last_name": "Durand",
    "email": "camille.volume@example.org",
    "password": "le chat dort sur la Loire",
}
HOUSEHOLD = {
    "address_line": "1 rue de l'Exemple",
    "address_extra": "",
    "postcode": "49290",
    "city": "Chalonnes-sur-Loire",
    "paperless_invoices": "y",
}


def child_form(first_name: str) -> dict:
    return {
        "first_name": first_name,
        "last_name": "Durand",
        "birth_date": "2018-09-03",
        "sex": "F",
        "school_id": "",
        "class_level": "CE1",
        "diet": "",
        "allergies": "",
    }


@pytest.fixture
def upload_folder(app, tmp_path, monkeypatch):
    folder = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(folder))
    monkeypatch.setitem(app.config, "UPLOAD_STORAGE", "filesystem")
    return folder


def upload(client, type_id, person_id, filename: str):
    form = {
        "csrf_token": csrf_token(client),
        "type_id": str(type_id),
        "file": (io.BytesIO(png()), filename),
    }
    if person_id is not None:
        form["person_id"] = str(person_id)
    return client.post("/mes-documents/envoyer", data=form, content_type="multipart/form-data")


def family_mails(outbox, email: str) -> list:
    return [m for m in outbox if email in m.recipients]


def requests_of(app, household_id: int) -> list[tuple[str, str]]:
    with app.app_context():
        return [
            (r.kind, r.status)
            for r in db.session.scalars(
                select(Request).where(Request.household_id == household_id).order_by(Request.id)
            )
        ]


def flush_notices(app):
    """What the queue does a few minutes after the last decision: the grouped notices."""
    from citoyens.documents.notices import send_due_notices

    with app.app_context():
        return send_due_notices(now=utcnow() + timedelta(hours=1))


def test_a_new_familys_journey_sends_one_mail_per_action(app, client, outbox, upload_folder):
    email = SIGNUP["email"]
    mails: dict[str, int] = {}
    seen = 0

    def step(name: str) -> None:
        nonlocal seen
        now = len(family_mails(outbox, email))
        mails[name] = now - seen
        seen = now

    # The commune's offer: a service asking for four documents (one for the household).
    types = {
        "domicile": make_type(app, scope="household", label="Justificatif de domicile"),
        "assurance": make_type(app, scope="child", label="Assurance scolaire"),
        "fiche": make_type(app, scope="child", label="Fiche sanitaire"),
        "vaccins": make_type(app, scope="child", label="Vaccins", health=True),
    }
    offer = make_offer(app, name="Accueil du soir", document_type_ids=tuple(types.values()))
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, offer.service_id)

    # Sign-up and confirmation.
    assert post(client, "/creer-mon-espace", SIGNUP).status_code == 303
    step("signup")
    link = re.search(r"http://localhost(/\S+)", family_mails(outbox, email)[-1].body).group(1)
    assert post(client, link).status_code == 303
    step("confirmation")
    response = post(client, "/connexion", {"email": email, "password": SIGNUP["password"]})
    assert response.status_code == 303
    with app.app_context():
        household_id = db.session.scalar(select(User.household_id).where(User.email == email))

    # The household, then two children.
    assert post(client, "/mon-foyer/modifier", HOUSEHOLD).status_code == 303
    step("household")
    for name in ("Emma", "Léo"):
        assert post(client, "/mon-foyer/ajouter/enfant", child_form(name)).status_code == 303
    step("children")
    with app.app_context():
        emma = db.session.execute(
            db.text(
                "SELECT p.id FROM people p JOIN household_members m ON m.person_id = p.id "
                "WHERE m.household_id = :h AND p.first_name = 'Emma'"
            ),
            {"h": household_id},
        ).scalar_one()

    # The four documents, sent one by one from the enrolment form's lines.
    assert upload(client, types["domicile"], None, "domicile.png").status_code == 303
    for code in ("assurance", "fiche", "vaccins"):
        assert upload(client, types[code], emma, f"{code}.png").status_code == 303
    step("uploads")
    before_enrolment = requests_of(app, household_id)

    # The enrolment.
    data = {
        "csrf_token": csrf_token(client),
        "enfant": str(emma),
        "service": str(offer.service_id),
        "annee": str(offer.year_id),
        "activities": [str(i) for i in offer.activity_ids],
    }
    assert client.post("/inscriptions/nouvelle", data=data).status_code == 303
    step("enrolment")
    after_enrolment = requests_of(app, household_id)

    # The agent reviews the four documents on the request's page, then accepts the enrolment.
    staff = app.test_client()
    assert post(staff, "/connexion", {"email": agent.email, "password": agent.password})
    with app.app_context():
        documents = {
            d.type_id: d.id
            for d in db.session.scalars(
                select(Document).where(Document.household_id == household_id)
            )
        }
        enrolment = db.session.scalar(
            select(Enrolment).where(Enrolment.household_id == household_id)
        )
        enrolment_request_id = enrolment.request_id
    for code, type_id in types.items():
        decision = {"decision": "accepted"}
        if code == "vaccins":
            decision = {"decision": "refused", "reason": "Page des rappels illisible."}
        response = post(staff, f"/admin/documents/{documents[type_id]}/decision", decision)
        assert response.status_code == 303
    flush_notices(app)
    step("document review")
    response = post(staff, f"/admin/demandes/{enrolment_request_id}/statut", {"accept": "Accepter"})
    step("enrolment decision")

    assert response.status_code == 303

    # Before: 1, 0, 0, 0, 0, 1, 4 (one per document), 1 — and four review requests
    # beside the enrolment's. Now one e-mail per action, one review per enrolment.
    assert mails == {
        "signup": 1,
        "confirmation": 0,
        "household": 0,
        "children": 0,
        "uploads": 0,
        "enrolment": 1,
        "document review": 1,
        "enrolment decision": 1,
    }
    assert before_enrolment == [("document_review", "sent")]
    assert after_enrolment == [("enrolment", "sent"), ("document_review", "sent")]
    assert requests_of(app, household_id) == [
        ("enrolment", "accepted"),
        ("document_review", "refused"),
    ]
    decisions = family_mails(outbox, email)[-2]
    assert decisions.subject == "Vérification de vos documents : 3 acceptés, 1 refusé"
    for label in ("Justificatif de domicile", "Assurance scolaire", "Fiche sanitaire"):
        assert f"{label}" in decisions.body
    assert "Vaccins — Emma Durand : refusé" in decisions.body
    assert "Page des rappels illisible." in decisions.body
    with app.app_context():
        review = db.session.scalar(
            select(Request).where(
                Request.household_id == household_id, Request.kind == "document_review"
            )
        )
        assert review.for_request_id == enrolment_request_id
        assert review.service_id == offer.service_id and review.person_id == emma
        held = db.session.scalars(
            select(Document.id).where(Document.review_request_id == review.id)
        ).all()
        assert sorted(held) == sorted(documents.values())


def test_staff_review_a_request_document_by_document(app, upload_folder, outbox):
    """The review request's page lists its documents, each decided with its reason; the
    request closes with the last decision; a refusal without a reason saves nothing."""
    from tests.documents_factories import children_of

    parent = make_user(app, role="parent", children=1)
    child = children_of(app, parent.household_id)[0]
    household_type = make_type(app, scope="household", label="Justificatif de domicile")
    child_type = make_type(app, scope="child", label="Assurance scolaire")
    family = app.test_client()
    assert post(family, "/connexion", {"email": parent.email, "password": parent.password})
    assert upload(family, household_type, None, "domicile.png").status_code == 303
    assert upload(family, child_type, child, "assurance.png").status_code == 303
    with app.app_context():
        [review] = db.session.scalars(
            select(Request).where(Request.household_id == parent.household_id)
        ).all()
        review_id = review.id
        ids = db.session.scalars(
            select(Document.id).where(Document.review_request_id == review_id).order_by(Document.id)
        ).all()
    admin = make_user(app, role="admin")  # the household's review sits in the general queue
    staff = app.test_client()
    assert post(staff, "/connexion", {"email": admin.email, "password": admin.password})
    page = staff.get(f"/admin/demandes/{review_id}").get_data(as_text=True)
    assert "Documents (2)" in page
    for document_id in ids:
        assert f'action="/admin/documents/{document_id}/decision"' in page
    back = f"/admin/demandes/{review_id}"
    refused = post(
        staff, f"/admin/documents/{ids[1]}/decision", {"decision": "refused", "next": back}
    )
    assert refused.status_code == 422  # no reason: nothing saved
    response = post(
        staff, f"/admin/documents/{ids[0]}/decision", {"decision": "accepted", "next": back}
    )
    assert response.status_code == 303 and response.headers["Location"] == back
    assert requests_of(app, parent.household_id) == [("document_review", "sent")]
    response = post(
        staff,
        f"/admin/documents/{ids[1]}/decision",
        {"decision": "refused", "reason": "Attestation d'une autre année.", "next": back},
    )
    assert response.status_code == 303
    assert requests_of(app, parent.household_id) == [("document_review", "refused")]
    page = html.unescape(staff.get(back).get_data(as_text=True))
    assert "Motif : Attestation d'une autre année." in page
    assert '/decision"' not in page  # nothing left to decide
    assert family_mails(outbox, parent.email) == []
    assert flush_notices(app) == 1
    [mail] = family_mails(outbox, parent.email)
    assert mail.subject == "Vérification de vos documents : 1 accepté, 1 refusé"
    # A new upload after the review closed opens the household's next one.
    assert upload(family, child_type, child, "assurance-2.png").status_code == 303
    assert requests_of(app, parent.household_id) == [
        ("document_review", "refused"),
        ("document_review", "sent"),
    ]


# --- The migration's data step --------------------------------------------------------------


@pytest.mark.own_database
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_migrations_merge_a_households_open_document_reviews(empty_database_url):  # noqa: F811
    """Before: one review request per document. The migration points each document at its
    request, cancels the reviews with nothing left to check, merges a household's other
    open ones into its oldest, and the unique index then holds; back down and up again."""
    from datetime import UTC, datetime

    from flask_migrate import downgrade, upgrade
    from sqlalchemy import MetaData

    from citoyens import create_app
    from citoyens.extensions import db as real_db
    from tests.conftest import test_config

    app = create_app(test_config(empty_database_url))
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    with app.app_context():
        engine = real_db.engines[None]
        upgrade(revision="b15a0f24ec13")
        meta = MetaData()
        meta.reflect(bind=engine)
        t = meta.tables
        with engine.begin() as conn:

            def insert(table, **values):
                return conn.execute(t[table].insert().values(**values)).inserted_primary_key[0]

            households = [
                insert(
                    "households",
                    created_at=now,
                    updated_at=now,
                    paperless_invoices=True,
                    booking_summary_mail=False,
                )
                for _ in range(2)
            ]
            type_ids = [
                insert(
                    "document_types",
                    code=f"type-{n}",
                    label=f"Type {n}",
                    scope="household",
                    until_school_year_end=False,
                    health=False,
                    active=True,
                )
                for n in range(5)
            ]

            def document(household, n, *, status="pending", replaced=False):
                return insert(
                    "documents",
                    household_id=household,
                    type_id=type_ids[n],
                    status=status,
                    storage_key=f"{household}-{n}.pdf",
                    original_name="a.pdf",
                    content_type="application/pdf",
                    size=1,
                    sha256="0" * 64,
                    uploaded_at=now,
                    replaced_at=now if replaced else None,
                )

            def review(household, document_id, status="sent"):
                request_id = insert(
                    "requests",
                    kind="document_review",
                    status=status,
                    title=f"Vérification : {document_id}",
                    household_id=household,
                    document_id=document_id,
                    created_at=now,
                    updated_at=now,
                )
                insert(
                    "request_events",
                    request_id=request_id,
                    created_at=now,
                    kind="created",
                    to_status="sent",
                    internal=False,
                )
                return request_id

            first, second = households
            # The first household: three open reviews, one of a replaced document, one
            # closed; the second: a single open review, left as it was.
            docs = [
                document(first, 1),
                document(first, 2, replaced=True),
                document(first, 3),
                document(first, 4, status="accepted"),
                document(second, 0),
            ]
            reviews = [
                review(first, docs[0]),
                review(first, docs[1]),
                review(first, docs[2], status="in_review"),
                review(first, docs[3], status="accepted"),
                review(second, docs[4]),
            ]

        upgrade()
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, status, title FROM requests ORDER BY id")).all()
            pointed = dict(conn.execute(text("SELECT id, review_request_id FROM documents")).all())
        assert [(r.id, r.status) for r in rows] == [
            (reviews[0], "sent"),
            (reviews[1], "cancelled"),  # its document was replaced
            (reviews[2], "cancelled"),  # merged into the household's oldest
            (reviews[3], "accepted"),
            (reviews[4], "sent"),
        ]
        assert rows[0].title == "Documents à vérifier"
        assert pointed == {
            docs[0]: reviews[0],
            docs[1]: reviews[1],
            docs[2]: reviews[0],
            docs[3]: reviews[3],
            docs[4]: reviews[4],
        }
        # The index now refuses a second open review for the first household.
        with pytest.raises(Exception), engine.begin() as conn:  # noqa: B017 (either driver's)
            conn.execute(
                text(
                    "INSERT INTO requests (kind, status, title, household_id, created_at, "
                    "updated_at) VALUES ('document_review', 'sent', 'x', :h, :n, :n)"
                ),
                {"h": first, "n": now},
            )
        downgrade(revision="b15a0f24ec13")
        upgrade()
        downgrade(revision="base")
        engine.dispose()


# --- On the queue ---------------------------------------------------------------------------


def test_decisions_schedule_one_grouped_notice_on_the_queue(app, tmp_path):
    """As in production: each decision's commit schedules the household's notice; the
    first job due sends the grouped e-mail, the others find nothing left to tell."""
    import time

    from citoyens import create_app, jobs
    from citoyens.core.models import MailMessage
    from citoyens.documents.models import DocumentType
    from citoyens.documents.operations import review_document, upload_document
    from citoyens.documents.uploads import check_upload
    from tests.conftest import test_config
    from tests.documents_factories import PDF

    queued = create_app(
        test_config(
            app.config["SQLALCHEMY_DATABASE_URI"],
            JOBS_IMMEDIATE=False,
            JOBS_URL=f"sqlite:///{tmp_path}/jobs.sqlite3",
            DOCUMENT_NOTICE_DELAY=0,
            UPLOAD_FOLDER=str(tmp_path / "uploads"),
        )
    )
    parent = make_user(queued, role="parent")
    agent = make_user(queued, role="staff")
    type_ids = [make_type(queued, scope="household") for _ in range(2)]
    with queued.test_request_context():
        family = db.session.get(User, parent.id)
        for n, type_id in enumerate(type_ids):
            upload_document(
                household_id=parent.household_id,
                doc_type=db.session.get(DocumentType, type_id),
                person=None,
                checked=check_upload(PDF + str(n).encode(), f"doc-{n}.pdf"),
                actor=family,
            )
        db.session.commit()
        staff = db.session.get(User, agent.id)
        for document in db.session.scalars(
            select(Document).where(Document.household_id == parent.household_id)
        ).all():
            review_document(document, accepted=True, actor=staff)
            db.session.commit()  # one decision, one commit: two jobs scheduled
        assert sum(jobs.counts().values()) == 2  # each with its eta, a few minutes on
    time.sleep(1.2)
    with queued.app_context():
        for task in jobs.huey.read_schedule():
            jobs.huey.enqueue(task)
        while (task := jobs.huey.dequeue()) is not None:
            jobs.huey.execute(task)
        mails = db.session.scalars(
            select(MailMessage).where(MailMessage.kind == "document-decisions")
        ).all()
        assert [(m.recipient, m.subject) for m in mails] == [
            (parent.email, "Vérification de vos documents : 2 acceptés")
        ]
