"""Mail: one function renders, delivers and records; a real SMTP server on loopback once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from citoyens import create_app
from citoyens.core.models import MailMessage
from citoyens.extensions import db
from citoyens.mail import resend, send_mail
from tests.conftest import post, test_config
from tests.smtp_servers import aiosmtpd_server, free_port


def test_send_mail_renders_both_parts_and_records_the_message(app, outbox):
    with app.test_request_context():
        message = send_mail(
            "account-exists",
            "famille@example.org",
            "Votre espace existe déjà",
            "account_exists",
            login_url="http://localhost/connexion",
            reset_url="http://localhost/mot-de-passe-oublie",
        )
        db.session.commit()
        assert message.status == "sent" and message.attempts == 1
        assert "Un espace existe déjà" in message.body_text
    assert outbox[0].html and "<html" in outbox[0].html
    assert outbox[0].body.startswith("Bonjour")


def test_console_backend_prints_instead_of_sending(app, capsys, outbox):
    app.config["MAIL_BACKEND"] = "console"
    try:
        with app.test_request_context():
            message = send_mail(
                "account-exists",
                "f@example.org",
                "Sujet",
                "account_exists",
                login_url="L",
                reset_url="R",
            )
            assert message.status == "pending"  # in the outbox until the commit
            db.session.commit()
            assert message.status == "printed"
    finally:
        app.config["MAIL_BACKEND"] = "smtp"
    assert "To: f@example.org" in capsys.readouterr().out
    assert outbox == []


@pytest.fixture
def smtp_server():
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""
    pytest.importorskip("aiosmtpd.controller")
    with aiosmtpd_server() as server:
        yield server


def smtp_app(app, port: int):
    return create_app(
        test_config(
            app.config["SQLALCHEMY_DATABASE_URI"],
            MAIL_SUPPRESS_SEND=False,
            MAIL_SERVER="127.0.0.1",
            MAIL_PORT=port,
        )
    )


def test_reset_mail_goes_through_a_real_smtp_server(app, parent, smtp_server):
    port, received = smtp_server
    real = smtp_app(app, port)
    client = real.test_client()
    response = post(client, "/mot-de-passe-oublie", {"email": parent.email})
    assert response.status_code == 303
    assert len(received) == 1
    envelope = received[0]
    assert envelope.rcpt_tos == [parent.email]
    content = envelope.content.decode()
    assert "Subject: =?utf-8?" in content or "Choisissez un nouveau mot de passe" in content
    assert "/nouveau-mot-de-passe/" in content


def test_mail_server_down_the_action_succeeds_and_the_message_can_be_resent(app, smtp_server):
    port, received = smtp_server
    down = smtp_app(app, free_port())  # nothing listens there
    client = down.test_client()
    response = post(
        client,
        "/creer-mon-espace",
        {
            "first_name": "Jo",
            "last_name": "Panne",
            "email": "jo.panne@example.org",
            "password": "le serveur mail est en panne",
        },
    )
    assert response.status_code == 303  # the account exists all the same
    with down.app_context():
        message = db.session.scalar(select(MailMessage))
        # Tried once (the tests run tasks at once), to be tried again later.
        assert message.status == "pending" and message.attempts == 1
        assert "Error" in message.error and message.next_attempt_at is not None
        message.status = "failed"  # as after the last attempt
        message.body_text = message.body_html = None
        # A confirmation link is a secret: no body kept, the family asks for a new link.
        assert message.sensitive and not resend(message)

        ordinary = MailMessage(
            recipient="f@example.org",
            subject="Info",
            kind="info",
            template="x",
            status="failed",
            body_text="Bonjour",
            body_html="<p>Bonjour</p>",
        )
        db.session.add(ordinary)
        db.session.commit()
        ordinary_id = ordinary.id

    back = smtp_app(app, port)
    runner = back.test_cli_runner()
    result = runner.invoke(args=["mail", "resend"])
    assert "1 message(s) renvoyé(s) sur 2" in result.output
    assert len(received) == 1
    with back.app_context():
        assert db.session.get(MailMessage, ordinary_id).status == "sent"
