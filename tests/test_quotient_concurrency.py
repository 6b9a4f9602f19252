"""One quotient familial declaration waits per household, even when both parents send theirs
at the same instant: the partial unique index on requests decides, on SQLite and PostgreSQL.

Its own database (a SQLite file, or a PostgreSQL database made beside TEST_DATABASE_URL),
real commits, threads released together by a Barrier, each through the rule the view calls.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from citoyens.accounts.models import User
from citoyens.documents.models import Document
from citoyens.documents.operations import discard_file
from citoyens.documents.uploads import check_upload
from citoyens.extensions import db
from citoyens.households import quotient
from citoyens.households.models import Household, QuotientDeclaration
from citoyens.requests.models import Request
from tests.conftest import own_database_fixtures
from tests.documents_factories import PDF
from tests.factories import make_user

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("quotient_race")


def test_concurrent_declarations_leave_one_open(race_app):
    account = make_user(race_app, role="parent")
    threads_count = 4
    barrier = threading.Barrier(threads_count)
    outcomes: list[str] = []

    def declare(n: int):
        with race_app.test_request_context():
            checked = check_upload(PDF + str(n).encode(), f"caf-{n}.pdf")
            barrier.wait()
            request = None
            try:
                actor = db.session.get(User, account.id)
                request = quotient.declare_family_quotient(
                    account.household_id, 600 + n, checked, actor=actor
                )
                attestation = request.document
                db.session.commit()
                outcomes.append("declared")
            except quotient.QuotientError:
                db.session.rollback()
                outcomes.append("refused")
            except OperationalError:  # SQLite: "database is locked" for a stale reader
                db.session.rollback()
                if request is not None:
                    discard_file(attestation)
                outcomes.append("busy")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=declare, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    with race_app.app_context():
        open_requests = db.session.scalars(
            select(Request).where(Request.kind == quotient.KIND, Request.status == "sent")
        ).all()
        declared = db.session.scalars(select(QuotientDeclaration)).all()
        documents = db.session.scalars(select(Document)).all()
        household = db.session.get(Household, account.household_id)
        files = [p for p in Path(race_app.config["UPLOAD_FOLDER"]).rglob("*") if p.is_file()]
        assert len(outcomes) == threads_count and outcomes.count("declared") == 1, outcomes
        assert len(open_requests) == len(declared) == len(documents) == 1
        assert open_requests[0].document_id == documents[0].id
        assert len(files) == 1  # the refused ones left no file behind
        assert household.family_quotient is None  # nothing prices before staff accept
