"""One open "documents to check" request per household, even when two documents are sent
at the same instant: the partial unique index on requests decides, on SQLite and
PostgreSQL. And the grouped notice of the decisions is sent once with two workers.

Its own database, real commits, threads released together by a Barrier.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from citoyens.accounts.models import User
from citoyens.database import utcnow
from citoyens.documents.models import Document, DocumentNotice, DocumentType
from citoyens.documents.notices import send_due_notices
from citoyens.documents.operations import (
    REVIEW_KIND,
    discard_file,
    review_document,
    review_for,
    upload_document,
)
from citoyens.documents.uploads import check_upload
from citoyens.extensions import db
from citoyens.requests.models import Request
from tests.conftest import own_database_fixtures
from tests.documents_factories import PDF, make_type
from tests.factories import make_user

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("document_reviews_race")

THREADS = 4


def run_together(target) -> list[str]:
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def run(n: int):
        with race_app_context() as ctx:
            del ctx
            barrier.wait()
            try:
                outcomes.append(target(n))
                db.session.commit()
            except OperationalError:  # SQLite: "database is locked" for a stale reader
                db.session.rollback()
                outcomes.append("busy")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


_app = {}


def race_app_context():
    return _app["app"].test_request_context()


def open_reviews(household_id: int) -> list[Request]:
    return db.session.scalars(
        select(Request).where(
            Request.household_id == household_id,
            Request.kind == REVIEW_KIND,
            Request.status.in_(("sent", "in_review")),
        )
    ).all()


def test_documents_sent_at_once_share_one_review(race_app):
    _app["app"] = race_app
    account = make_user(race_app, role="parent")
    type_ids = [make_type(race_app, scope="household") for _ in range(THREADS)]
    documents: dict[int, Document] = {}

    def send(n: int) -> str:
        actor = db.session.get(User, account.id)
        document = upload_document(
            household_id=account.household_id,
            doc_type=db.session.get(DocumentType, type_ids[n]),
            person=None,
            checked=check_upload(PDF + str(n).encode(), f"doc-{n}.pdf"),
            actor=actor,
        )
        documents[n] = document
        try:
            db.session.flush()
        except OperationalError:
            discard_file(document)
            raise
        return "sent"

    outcomes = run_together(send)
    with race_app.app_context():
        [review] = open_reviews(account.household_id)
        held = db.session.scalars(
            select(Document).where(Document.household_id == account.household_id)
        ).all()
        assert outcomes.count("sent") >= 1 and len(held) == outcomes.count("sent"), outcomes
        assert {d.review_request_id for d in held} == {review.id}


def test_the_unique_index_decides_between_two_first_reviews(race_app):
    """Without the household lock (two callers racing on the request alone), the index
    still leaves one open review: the loser takes the winner's."""
    _app["app"] = race_app
    account = make_user(race_app, role="parent")

    def open_one(_n: int) -> str:
        actor = db.session.get(User, account.id)
        return str(review_for(account.household_id, actor=actor).id)

    outcomes = run_together(open_one)
    with race_app.app_context():
        [review] = open_reviews(account.household_id)
        assert set(outcomes) - {"busy"} == {str(review.id)}, outcomes


def test_two_workers_send_the_grouped_notice_once(race_app):
    _app["app"] = race_app
    account = make_user(race_app, role="parent")
    agent = make_user(race_app, role="staff")
    type_ids = [make_type(race_app, scope="household") for _ in range(3)]
    with race_app.test_request_context():
        parent = db.session.get(User, account.id)
        for n, type_id in enumerate(type_ids):
            upload_document(
                household_id=account.household_id,
                doc_type=db.session.get(DocumentType, type_id),
                person=None,
                checked=check_upload(PDF + str(n).encode(), f"doc-{n}.pdf"),
                actor=parent,
            )
        db.session.commit()
        staff = db.session.get(User, agent.id)
        for document in db.session.scalars(select(Document)).all():
            review_document(document, accepted=True, actor=staff)
        db.session.commit()
        db.session.remove()

    later = utcnow() + timedelta(hours=1)
    outcomes = run_together(lambda _n: str(send_due_notices(now=later)))
    with race_app.app_context():
        from citoyens.core.models import MailMessage

        mails = db.session.scalars(
            select(MailMessage).where(MailMessage.kind == "document-decisions")
        ).all()
        assert [m.recipient for m in mails] == [account.email], outcomes
        assert "3 acceptés" in mails[0].subject
        notices = db.session.scalars(select(DocumentNotice)).all()
        assert len(notices) == 3 and all(n.sent_at is not None for n in notices)
        assert outcomes.count("1") == 1, outcomes
