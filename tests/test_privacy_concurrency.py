"""One archive in preparation and one closure request per household, even when both parents
click at the same instant: partial unique indexes decide, on SQLite and PostgreSQL.

Its own database, real commits, threads released together by a Barrier, each through the
rule the view calls.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from citoyens.accounts.models import User
from citoyens.extensions import db
from citoyens.privacy import closure, exports
from citoyens.privacy.models import DataExport
from citoyens.requests.models import Request
from citoyens.transactions import write_transaction
from tests.conftest import own_database_fixtures
from tests.factories import make_user

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("privacy_race")
THREADS = 4


def race(race_app, action) -> list[str]:
    barrier = threading.Barrier(THREADS)
    outcomes: list[str] = []

    def run():
        with race_app.test_request_context():
            try:
                barrier.wait()
                outcomes.append(action())
            except (closure.ClosureError, IntegrityError):
                db.session.rollback()
                outcomes.append("refused")
            except OperationalError:  # SQLite: busy beyond the retries
                db.session.rollback()
                outcomes.append("busy")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def test_concurrent_archive_requests_prepare_one(race_app, monkeypatch):
    # The build stays pending (it would otherwise run at once, in-process).
    monkeypatch.setattr("citoyens.privacy.tasks.build_export_task", lambda export_id: None)
    account = make_user(race_app, role="parent")

    def ask() -> str:
        export_id, created = exports.request_export(account.household_id, None)
        return f"created:{export_id}" if created else f"joined:{export_id}"

    outcomes = race(race_app, ask)
    with race_app.app_context():
        rows = db.session.scalars(select(DataExport)).all()
    assert len(rows) == 1, outcomes
    assert sum(o.startswith("created") for o in outcomes) == 1, outcomes
    assert all(o.endswith(f":{rows[0].id}") for o in outcomes if o != "busy"), outcomes


def test_concurrent_closure_requests_open_one(race_app):
    account = make_user(race_app, role="parent")

    def ask() -> str:
        user = db.session.get(User, account.id)
        write_transaction(lambda: closure.ask_closure(user))
        return "asked"

    outcomes = race(race_app, ask)
    with race_app.app_context():
        count = db.session.scalar(
            select(func.count(Request.id)).where(Request.kind == closure.KIND)
        )
    assert count == 1 and outcomes.count("asked") == 1, outcomes
