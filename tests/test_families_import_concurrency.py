"""Families import under concurrency: two imports of the same new family at once create it
once (unique `external_ref`, the loser reports it); two workers welcoming the same account
send one e-mail (conditional UPDATE of `welcomed_at`). Real commits, on a database of its
own."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from citoyens.accounts.models import User
from citoyens.core.models import MailMessage
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households.import_apply import apply_import
from citoyens.households.import_csv import read_csv
from citoyens.households.import_plan import plan_import
from citoyens.households.models import Household
from citoyens.households.welcome import welcome
from citoyens.reservations.closures import mail_context
from citoyens.transactions import write_transaction
from tests.conftest import own_database_fixtures
from tests.test_outbox_concurrency import together

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("import_race")

CONTENT = (
    "reference_famille;role;nom;prenom;email\nR1;responsable;Roux;Léo;leo.roux@example.org\n"
).encode()


def test_this_module_runs_on_its_own_database(race_app):
    assert race_app.config["SQLALCHEMY_DATABASE_URI"].endswith(
        ("import_race", "/import_race.sqlite3")
    )


def test_two_imports_of_the_same_new_family_create_it_once(race_app):
    with race_app.app_context():
        plans = [plan_import(read_csv(CONTENT), today_in_paris()) for _ in range(3)]
        db.session.rollback()
    assert all(plan.families[0].action == "create" for plan in plans)
    results = iter(plans)
    outcomes = together(race_app, 3, lambda: apply_import(next(results)))
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sorted(o.created for o in outcomes) == [0, 0, 1]
    assert sum(len(o.failed) for o in outcomes) == 2
    with race_app.app_context():
        assert db.session.scalar(select(func.count(Household.id))) == 1
        assert db.session.scalar(select(func.count(User.id))) == 1


def test_two_workers_welcoming_the_same_account_send_one_email(race_app):
    with race_app.app_context():
        apply_import(plan_import(read_csv(CONTENT), today_in_paris()))
        user_id = db.session.scalar(select(User.id))

    def send() -> int:
        with mail_context():
            return write_transaction(lambda: welcome(user_id))

    assert sorted(together(race_app, 4, send)) == [0, 0, 0, 1]
    with race_app.app_context():
        assert db.session.scalar(select(func.count(MailMessage.id))) == 1
        assert db.session.get(User, user_id).welcomed_at is not None
