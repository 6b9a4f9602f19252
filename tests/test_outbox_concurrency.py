"""The outbox under concurrency: two workers running the same delivery at once send the
message once (the claim is a conditional UPDATE), and two clicks on « Émettre » start one
invoice run (a partial unique index). Real commits, on a database of its own."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from citoyens import jobs
from citoyens.billing import tasks as billing_tasks
from citoyens.core.models import JobRun, MailMessage
from citoyens.extensions import db
from citoyens.mail import deliver, send_mail
from tests.conftest import own_database_fixtures
from tests.smtp_servers import aiosmtpd_server

pytestmark = pytest.mark.own_database

race_app, app = own_database_fixtures("outbox_race")


def test_this_module_runs_on_its_own_database(race_app):
    assert race_app.config["SQLALCHEMY_DATABASE_URI"].endswith(
        ("outbox_race", "/outbox_race.sqlite3")
    )


def together(app, count: int, action) -> list:
    """Run `action()` in `count` threads released at once, each in its own app context."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[index] = action()
            except Exception as error:  # noqa: BLE001 (reported by the assertion)
                results[index] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_workers_on_one_message_send_it_once(race_app):
    pytest.importorskip("aiosmtpd.controller")
    queue = race_app.extensions[jobs.EXTENSION]
    queue.immediate = False  # enqueued, not run: the workers below run it
    state = race_app.extensions["mail"]
    with aiosmtpd_server(delay=0.3) as (port, received):
        state.suppress, state.server, state.port = False, "127.0.0.1", port
        with race_app.test_request_context():
            message = send_mail(
                "info", "f@example.org", "Une fois", "account_exists", login_url="L"
            )
            db.session.commit()
            message_id = message.id
        outcomes = together(race_app, 4, lambda: deliver(message_id))
        assert sorted(outcomes) == ["sent", "skipped", "skipped", "skipped"]
        with race_app.app_context():
            assert deliver(message_id) == "skipped"  # and again later: still once
            row = db.session.get(MailMessage, message_id)
            assert (row.status, row.attempts) == ("sent", 1)
        assert len(received) == 1


def test_workers_sending_different_messages_at_once_all_record_their_outcome(race_app):
    """Several workers, each on its own message, against a slow server: each records
    'sent'. On SQLite a worker used to write its outcome in the read transaction it sent
    in, and failed with "database is locked" when another had written meanwhile."""
    pytest.importorskip("aiosmtpd.controller")
    queue = race_app.extensions[jobs.EXTENSION]
    queue.immediate = False
    state = race_app.extensions["mail"]
    with aiosmtpd_server(delay=0.2) as (port, received):
        state.suppress, state.server, state.port = False, "127.0.0.1", port
        with race_app.test_request_context():
            ids = []
            for index in range(4):
                message = send_mail(
                    "info", f"f{index}@example.org", "Chacun", "account_exists", login_url="L"
                )
                db.session.commit()
                ids.append(message.id)
        pending = list(ids)
        lock = threading.Lock()

        def next_message() -> str:
            with lock:
                message_id = pending.pop()
            return deliver(message_id)

        outcomes = together(race_app, 4, next_message)
        assert outcomes == ["sent"] * 4, outcomes
        with race_app.app_context():
            statuses = db.session.scalars(
                select(MailMessage.status).where(MailMessage.id.in_(ids))
            ).all()
            assert sorted(statuses) == ["sent"] * 4
        assert len(received) == 4


def test_two_clicks_start_one_invoice_run(race_app):
    from datetime import date

    queue = race_app.extensions[jobs.EXTENSION]
    queue.immediate = False  # queued only: the run itself is tested elsewhere
    month = date(2030, 9, 1)
    outcomes = together(race_app, 4, lambda: billing_tasks.queue_invoice_run(month, None))
    assert not any(isinstance(outcome, Exception) for outcome in outcomes), outcomes
    assert len({run_id for run_id, _ in outcomes}) == 1
    assert sorted(started for _, started in outcomes) == [False, False, False, True]
    with race_app.app_context():
        assert db.session.scalar(select(func.count(JobRun.id))) == 1
        # The database itself refuses a second active run of the month.
        db.session.add(JobRun(kind=billing_tasks.INVOICE_RUN, key="2030-09", status="running"))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
        # A finished run does not block the next one.
        db.session.execute(JobRun.__table__.update().values(status="done"))
        db.session.commit()
        db.session.add(JobRun(kind=billing_tasks.INVOICE_RUN, key="2030-09", status="queued"))
        db.session.commit()
