"""The outbox and the job queue (issue 12): a request never talks to the mail server; the
worker sends with a timeout, retries, then gives up; a rolled-back action sends nothing;
staff resend; the headers of a real delivery; the worker's wiring; the sweeper."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import timedelta

import pytest
from huey.storage import RedisStorage, SqliteStorage
from sqlalchemy import func, select

from citoyens import create_app, jobs
from citoyens.core.models import Commune, MailMessage
from citoyens.database import utcnow
from citoyens.extensions import db, mail
from citoyens.mail import message_id_domain, send_mail, sweep
from citoyens.transactions import write_transaction
from tests.conftest import post, test_config
from tests.smtp_servers import HungSMTPServer, aiosmtpd_server

SIGNUP = {
    "first_name": "Jo",
    "last_name": "Lent",
    "email": "jo.lent@example.org",
    "password": "le serveur mail ne répond jamais",
}


@pytest.fixture
def hung_smtp():
    server = HungSMTPServer(hold=5.0)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def queued_app(app, tmp_path):
    """Build an app whose tasks go to a real queue (SQLite in tmp_path), as in production;
    its database is the test's (same transaction)."""

    def build(**overrides):
        config = {
            "JOBS_IMMEDIATE": False,
            "JOBS_URL": f"sqlite:///{tmp_path}/jobs.sqlite3",
            "MAIL_SUPPRESS_SEND": False,
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_TIMEOUT": 0.3,
            "MAIL_RETRY_DELAY": 0.01,
            "MAIL_MAX_ATTEMPTS": 3,
        }
        config.update(overrides)
        return create_app(test_config(app.config["SQLALCHEMY_DATABASE_URI"], **config))

    return build


def run_queue(app, rounds: int = 10) -> int:
    """Run what the queue holds as a worker would, retries included (due at once: the tests'
    retry delay is 10 ms). How many tasks ran."""
    ran = 0
    with app.app_context():
        for _ in range(rounds):
            time.sleep(0.02)
            for task in jobs.huey.read_schedule():
                jobs.huey.enqueue(task)
            task = jobs.huey.dequeue()
            if task is None:
                break
            while task is not None:
                jobs.huey.execute(task)
                ran += 1
                task = jobs.huey.dequeue()
    return ran


def the_message(app, recipient: str) -> MailMessage:
    with app.app_context():
        message = db.session.scalar(select(MailMessage).where(MailMessage.recipient == recipient))
        db.session.expunge(message)
        return message


def test_a_signup_returns_at_once_without_talking_to_the_mail_server(queued_app, hung_smtp):
    app = queued_app(MAIL_PORT=hung_smtp.port)
    client = app.test_client()
    started = time.monotonic()
    response = post(client, "/creer-mon-espace", SIGNUP)
    elapsed = time.monotonic() - started
    time.sleep(0.1)  # a connection attempt would have reached the server by now
    assert response.status_code == 303
    assert hung_smtp.connections == 0, "the request contacted the mail server"
    assert elapsed < 2
    message = the_message(app, SIGNUP["email"])
    assert (message.status, message.attempts) == ("pending", 0)
    assert "/confirmer/" in message.body_text  # kept until sent, even a secret link
    with app.app_context():
        assert jobs.counts() == {"queued": 1, "scheduled": 0}


def test_the_worker_times_out_retries_with_backoff_then_gives_up(queued_app, hung_smtp):
    app = queued_app(MAIL_PORT=hung_smtp.port)
    assert post(app.test_client(), "/creer-mon-espace", SIGNUP).status_code == 303
    with app.app_context():
        task = jobs.huey.dequeue()
        started = time.monotonic()
        jobs.huey.execute(task)
        took = time.monotonic() - started
        assert jobs.counts()["queued"] + jobs.counts()["scheduled"] == 1  # the retry
    assert took < 3  # MAIL_TIMEOUT is 0.3 s: no hanging on a silent server
    first = the_message(app, SIGNUP["email"])
    assert (first.status, first.attempts) == ("pending", 1)
    assert first.error and first.next_attempt_at is not None
    with app.app_context():
        assert app.config["MAIL_RETRY_DELAY"] == 0.01
        from citoyens.mail import retry_delay

        app.config["MAIL_RETRY_DELAY"] = 120
        assert [retry_delay(n).total_seconds() for n in (1, 2, 3)] == [120, 240, 480]
        app.config["MAIL_RETRY_DELAY"] = 0.01

    run_queue(app)  # the second and the last attempt
    last = the_message(app, SIGNUP["email"])
    assert (last.status, last.attempts) == ("failed", 3)
    assert "SMTPServerDisconnected" in last.error or "Timeout" in last.error
    assert last.body_text is None and last.body_html is None  # a secret link is not kept
    assert hung_smtp.connections == 3
    with app.app_context():
        assert jobs.counts() == {"queued": 0, "scheduled": 0}


def test_a_rolled_back_action_sends_nothing(app, outbox):
    with app.test_request_context():

        def work():
            send_mail("info", "a@example.org", "Annulé", "account_exists", login_url="L")
            raise RuntimeError("the action fails after its e-mail was written")

        with pytest.raises(RuntimeError):
            write_transaction(work)
        send_mail("info", "b@example.org", "Annulé aussi", "account_exists", login_url="L")
        db.session.rollback()
        db.session.commit()  # a later commit sends nothing either
        assert db.session.scalar(select(func.count(MailMessage.id))) == 0
    assert outbox == []


def test_a_real_delivery_carries_the_headers_mail_providers_want(app):
    pytest.importorskip("aiosmtpd.controller")
    with aiosmtpd_server() as (port, received):
        real = create_app(
            test_config(
                app.config["SQLALCHEMY_DATABASE_URI"],
                MAIL_SUPPRESS_SEND=False,
                MAIL_SERVER="127.0.0.1",
                MAIL_PORT=port,
                PUBLIC_URL="https://portail.chalonnes.fr",
            )
        )
        with real.test_request_context():
            db.session.add(Commune(name="Chalonnes", contact_email="mairie@chalonnes.fr"))
            db.session.flush()
            send_mail("info", "f@example.org", "Bienvenue", "account_exists", login_url="L")
            send_mail(
                "booking-promoted",
                "g@example.org",
                "Place libérée",
                "booking_promoted",
                reply_to="aps@chalonnes.fr",
                child_name="Léa",
                activity_name="Accueil du matin",
                day=utcnow().date(),
                link="https://portail.chalonnes.fr/reservations",
            )
            db.session.commit()
        assert len(received) == 2
        parsed = {
            envelope.rcpt_tos[0]: email.message_from_bytes(
                envelope.content, policy=email.policy.default
            )
            for envelope in received
        }
    general, service = parsed["f@example.org"], parsed["g@example.org"]
    assert general["Message-ID"].endswith("@portail.chalonnes.fr>")
    assert general["Message-ID"] != service["Message-ID"]
    assert the_message(real, "f@example.org").message_id == general["Message-ID"]
    assert general["Auto-Submitted"] == "auto-generated"
    assert general["Reply-To"] == "mairie@chalonnes.fr"  # the commune's contact by default
    assert service["Reply-To"] == "aps@chalonnes.fr"  # the service concerned
    for message in (general, service):
        text = message.get_body(("plain",)).get_content()
        assert text.startswith("Bonjour")
        assert "<" not in text and "&#" not in text and "&amp;" not in text
        assert "\n\n\n" not in text and not any(line.endswith(" ") for line in text.split("\n"))
        assert "<html" in message.get_body(("html",)).get_content()


@pytest.mark.parametrize(
    ("settings", "domain"),
    [
        ({"MAIL_MESSAGE_ID_DOMAIN": "ville-chalonnes.fr"}, "ville-chalonnes.fr"),
        ({"PUBLIC_URL": "https://portail.chalonnes.fr/"}, "portail.chalonnes.fr"),
        (
            {"PUBLIC_URL": "http://localhost:5000", "MAIL_DEFAULT_SENDER": "M <n@chalonnes.fr>"},
            "chalonnes.fr",
        ),
        ({"MAIL_DEFAULT_SENDER": "root@localhost"}, "citoyens.invalid"),
    ],
)
def test_message_ids_are_on_the_communes_domain_never_localhost(app, settings, domain):
    saved = {key: app.config.get(key) for key in settings}
    app.config.update({"PUBLIC_URL": "", "MAIL_MESSAGE_ID_DOMAIN": "", **settings})
    try:
        with app.app_context():
            assert message_id_domain() == domain
    finally:
        app.config.update(saved)
        app.config["PUBLIC_URL"] = app.config["MAIL_MESSAGE_ID_DOMAIN"] = ""


def a_message(recipient: str, status: str, **fields) -> MailMessage:
    """An outbox row, as `send_mail` leaves it (a body unless given None)."""
    values = {"subject": "Sujet", "kind": "info", "template": "x", "body_text": "Bonjour"}
    values["body_html"] = "<p>Bonjour</p>"
    values.update(fields)
    return MailMessage(recipient=recipient, status=status, **values)


def failed_messages():
    ordinary = a_message(
        "famille@example.org",
        "failed",
        attempts=6,
        error="SMTPServerDisconnected: Connection unexpectedly closed",
    )
    secret = a_message(
        "secret@example.org",
        "failed",
        attempts=6,
        sensitive=True,
        body_text=None,
        body_html=None,
    )
    db.session.add_all([ordinary, secret])
    db.session.commit()
    return ordinary.id, secret.id


def test_admin_resend_a_failed_message_agents_and_parents_cannot(
    app, client, auth, parent, staff, admin, outbox
):
    with app.app_context():
        ordinary_id, secret_id = failed_messages()
    path = f"/admin/courriels/{ordinary_id}/renvoyer"
    # The messages name every family: administrators only (services.scope).
    for account in (parent, staff):
        auth.login(account)
        assert client.get("/admin/courriels").status_code == 403
        assert post(client, path).status_code == 403
        auth.logout()
    auth.login(admin)
    page = client.get("/admin/courriels").get_data(as_text=True)
    assert "famille@example.org" in page and "SMTPServerDisconnected" in page
    assert page.count(">Renvoyer<") == 1  # the secret link's message cannot be resent
    assert client.post(path).status_code == 400  # no CSRF token
    assert the_message(app, "famille@example.org").status == "failed"
    response = post(client, path)
    assert response.status_code == 303
    resent = the_message(app, "famille@example.org")
    assert (resent.status, resent.attempts) == ("sent", 1)  # the tests run tasks at once
    assert [m.recipients for m in outbox] == [["famille@example.org"]]
    refused = post(client, f"/admin/courriels/{secret_id}/renvoyer", follow_redirects=True)
    assert "lien secret" in refused.get_data(as_text=True)
    assert the_message(app, "secret@example.org").status == "failed"
    assert len(outbox) == 1


def test_the_worker_runs_what_a_request_queued(queued_app):
    app = queued_app(MAIL_SUPPRESS_SEND=True)
    with app.test_request_context():
        send_mail("info", "w@example.org", "Par le worker", "account_exists", login_url="L")
        db.session.commit()
    status = app.test_cli_runner().invoke(args=["jobs", "status"])
    assert "Tâches en attente : 1" in status.output
    assert "E-mails : 1 à envoyer" in status.output
    with app.app_context():
        consumer = jobs.make_consumer(workers=3)
        assert consumer.workers == 3 and consumer.huey is jobs.huey
        with mail.record_messages() as sent:
            consumer._create_worker().loop()  # one iteration of a worker thread
        assert [m.recipients for m in sent] == [["w@example.org"]]
        assert jobs.counts() == {"queued": 0, "scheduled": 0}
    assert the_message(app, "w@example.org").status == "sent"


def test_the_worker_command_refuses_immediate_mode(app):
    result = app.test_cli_runner().invoke(args=["jobs", "worker", "--workers", "2"])
    assert result.exit_code != 0 and "JOBS_IMMEDIATE" in result.output


def test_the_queue_storage_follows_the_settings(app, tmp_path):
    with app.app_context():
        saved = app.config["JOBS_URL"]
        try:
            app.config["JOBS_URL"] = ""
            default = jobs.make_storage(app)
            assert isinstance(default, SqliteStorage)
            assert default.filename.endswith("instance/jobs.sqlite3")
            app.config["JOBS_URL"] = "redis://127.0.0.1:6399/3"
            assert isinstance(jobs.make_storage(app), RedisStorage)  # connects lazily
            app.config["JOBS_URL"] = "amqp://elsewhere"
            with pytest.raises(ValueError):
                jobs.make_storage(app)
        finally:
            app.config["JOBS_URL"] = saved


def test_the_sweeper_enqueues_lost_messages_again(app, outbox):
    now = utcnow()
    with app.test_request_context():
        lost = a_message("lost@example.org", "pending", created_at=now - timedelta(minutes=10))
        # A worker claimed it and died: its lease is over.
        crashed = a_message(
            "crashed@example.org",
            "sending",
            attempts=1,
            next_attempt_at=now - timedelta(seconds=1),
        )
        fresh = a_message("fresh@example.org", "pending")
        db.session.add_all([lost, crashed, fresh])
        db.session.flush()
        db.session.info.pop(jobs.PENDING, None)  # as if their enqueue was lost
        db.session.commit()
        assert sweep() == 2
    assert sorted(m.recipients[0] for m in outbox) == ["crashed@example.org", "lost@example.org"]
    assert the_message(app, "lost@example.org").status == "sent"
    assert the_message(app, "crashed@example.org").attempts == 2
    assert the_message(app, "fresh@example.org").status == "pending"


def test_a_job_waits_for_the_outer_commit_not_a_savepoint(app):
    """SQLAlchemy 2.1 fires after_commit when a SAVEPOINT is released: a job queued in a
    transaction must still wait for that transaction's own commit (it would read rows not
    yet committed, and on SQLite wait for the write lock the transaction holds)."""
    ran = []
    with app.test_request_context():
        db.session.execute(select(1))
        jobs.enqueue_after_commit(ran.append, "sent")
        with db.session.begin_nested():
            db.session.execute(select(1))
        assert ran == []
        db.session.commit()
        assert ran == ["sent"]
