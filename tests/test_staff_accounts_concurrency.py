"""The last active administrator stays one, even when administrators demote or deactivate
each other at the same instant: their rows are locked before counting (FOR UPDATE on
PostgreSQL, BEGIN IMMEDIATE on SQLite). Two creations of one address make one account.

Its own database, real commits, threads released together by a Barrier, each through the
rule the view calls, inside `write_transaction` as the view runs it.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from citoyens.accounts import staff as rules
from citoyens.accounts.models import User
from citoyens.core.models import MailMessage
from citoyens.extensions import db
from citoyens.transactions import write_transaction
from tests.conftest import own_database_fixtures
from tests.factories import make_user
from tests.requests_factories import make_service

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("staff_race")


def run_together(app, works) -> list[str]:
    barrier = threading.Barrier(len(works))
    outcomes: list[str] = []

    def run(work):
        with app.test_request_context():
            barrier.wait()
            try:
                write_transaction(work)
                outcomes.append("done")
            except rules.StaffAccountError:
                outcomes.append("refused")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def active_admins(app) -> int:
    with app.app_context():
        return db.session.scalar(
            select(func.count(User.id)).where(User.role == "admin", User.active.is_(True))
        )


@pytest.mark.parametrize("action", ["demote", "deactivate"])
def test_two_administrators_removing_each_other_leave_one(race_app, action, monkeypatch):
    # Between the count and the commit, the other administrator's transaction has all the
    # time it needs to count too: only the lock makes it wait for the first one's commit.
    check = rules._ensure_another_admin

    def slow_check(user):
        check(user)
        time.sleep(0.3)

    monkeypatch.setattr(rules, "_ensure_another_admin", slow_check)
    first = make_user(race_app, role="admin")
    second = make_user(race_app, role="admin")
    service = make_service(race_app)

    def remove(actor_id: int, target_id: int):
        def work():
            actor = db.session.get(User, actor_id)
            if action == "deactivate":
                return rules.set_staff_active(target_id, False, actor=actor)
            return rules.update_staff_account(
                target_id,
                actor=actor,
                first_name="A",
                last_name="B",
                service_ids=[service],
                admin=False,
            )

        return work

    outcomes = run_together(race_app, [remove(first.id, second.id), remove(second.id, first.id)])
    assert sorted(outcomes) == ["done", "refused"], outcomes
    assert active_admins(race_app) == 1


def test_two_creations_of_one_address_make_one_account(race_app):
    admin = make_user(race_app, role="admin")
    service = make_service(race_app)

    def create():
        actor = db.session.get(User, admin.id)
        return rules.create_staff_account(
            actor=actor,
            email="meme@example.org",
            first_name="Léa",
            last_name="Martin",
            service_ids=[service],
            admin=False,
        )

    outcomes = run_together(race_app, [create, create, create])
    assert sorted(outcomes) == ["done", "refused", "refused"], outcomes
    with race_app.app_context():
        assert (
            db.session.scalar(select(func.count(User.id)).where(User.email == "meme@example.org"))
            == 1
        )
        welcomes = db.session.scalar(
            select(func.count(MailMessage.id)).where(MailMessage.kind == "staff-welcome")
        )
        assert welcomes == 1
