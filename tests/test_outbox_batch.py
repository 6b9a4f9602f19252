"""Batches of e-mails (issue 15, the invoice run): `send_mails` writes the same messages
`send_mail` would, in one statement with one job for them all; each is then retried,
given up and recorded on its own; a rolled-back batch sends nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from citoyens import jobs
from citoyens.core.models import Commune, MailMessage
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.mail import Outgoing, send_mail, send_mails
from citoyens.transactions import write_transaction
from tests.smtp_servers import aiosmtpd_server
from tests.test_outbox import hung_smtp, queued_app, run_queue  # noqa: F401 (fixtures)


def promoted(name: str) -> dict:
    return {
        "child_name": name,
        "activity_name": "Accueil du matin",
        "day": utcnow().date(),
        "link": "https://portail.chalonnes.fr/reservations",
    }


def test_a_batch_is_written_as_send_mail_would_and_sent_by_one_job(queued_app):  # noqa: F811
    pytest.importorskip("aiosmtpd.controller")
    with aiosmtpd_server() as (port, received):
        app = queued_app(MAIL_PORT=port, PUBLIC_URL="https://portail.chalonnes.fr")
        recipients = ["a@example.org", "b@example.org", "c@example.org"]
        with app.test_request_context():
            db.session.add(Commune(name="Chalonnes", contact_email="mairie@chalonnes.fr"))
            db.session.flush()
            alone = send_mail(
                "booking-promoted", "alone@example.org", "Place libérée", "booking_promoted",
                **promoted("Léa"),
            )  # fmt: skip
            ids = send_mails(
                "booking-promoted",
                "booking_promoted",
                [Outgoing(email, "Place libérée", promoted("Léa")) for email in recipients],
            )
            db.session.commit()
            assert jobs.counts() == {"queued": 2, "scheduled": 0}  # one job for the batch
            batch = {
                m.id: m
                for m in db.session.scalars(select(MailMessage).where(MailMessage.id.in_(ids)))
            }
            assert [batch[i].recipient for i in ids] == recipients  # ids in the rows' order
            for message in batch.values():
                assert (message.status, message.attempts, message.kind) == (
                    "pending", 0, "booking-promoted",
                )  # fmt: skip
                assert message.body_text == alone.body_text  # same templates, same context
                assert message.body_html == alone.body_html
                assert message.reply_to == alone.reply_to == "mairie@chalonnes.fr"
                assert message.message_id.endswith("@portail.chalonnes.fr>")
            assert len({m.message_id for m in batch.values()} | {alone.message_id}) == 4
        assert run_queue(app) == 2
        assert sorted(envelope.rcpt_tos[0] for envelope in received) == sorted(
            [*recipients, "alone@example.org"]
        )
    with app.app_context():
        statuses = db.session.scalars(select(MailMessage.status).where(MailMessage.id.in_(ids)))
        assert list(statuses) == ["sent"] * 3


def test_each_message_of_a_batch_is_retried_then_given_up_alone(queued_app, hung_smtp):  # noqa: F811
    app = queued_app(MAIL_PORT=hung_smtp.port)
    with app.test_request_context():
        ids = send_mails(
            "booking-promoted",
            "booking_promoted",
            [Outgoing(f"{n}@example.org", "Place libérée", promoted("Léo")) for n in "xy"],
        )
        db.session.commit()
    with app.app_context():
        jobs.huey.execute(jobs.huey.dequeue())  # the batch's job: both attempts fail
        assert sum(jobs.counts().values()) == 2  # a retry for each
        rows = db.session.execute(
            select(MailMessage.status, MailMessage.attempts).where(MailMessage.id.in_(ids))
        ).all()
        assert sorted(rows) == [("pending", 1), ("pending", 1)]
        db.session.rollback()
    run_queue(app)
    with app.app_context():
        rows = db.session.execute(
            select(MailMessage.status, MailMessage.attempts).where(MailMessage.id.in_(ids))
        ).all()
        assert sorted(rows) == [("failed", 3), ("failed", 3)]
    assert hung_smtp.connections == 6


def test_a_rolled_back_batch_sends_nothing(app, outbox):
    with app.test_request_context():

        def work():
            send_mails(
                "booking-promoted",
                "booking_promoted",
                [Outgoing("a@example.org", "Place libérée", promoted("Léa"))],
            )
            raise RuntimeError("the batch fails after its e-mails were written")

        with pytest.raises(RuntimeError):
            write_transaction(work)
        db.session.commit()
        assert db.session.scalar(select(func.count(MailMessage.id))) == 0
        assert send_mails("booking-promoted", "booking_promoted", []) == []
    assert outbox == []
