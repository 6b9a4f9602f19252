"""Outgoing e-mail: every message goes through `send_mail`, which renders a
text and an HTML template, delivers, and records what happened.

In development (`MAIL_BACKEND=console`) the message is printed instead of sent.
If the mail server is down the caller's action still succeeds: the message is
recorded as failed and `flask mail resend` sends it again later.
"""

from __future__ import annotations

import logging
import smtplib
import sys

from flask import current_app, render_template, url_for
from flask_mail import Message

from citoyens.core.models import MailMessage
from citoyens.database import utcnow
from citoyens.extensions import db, mail

log = logging.getLogger("citoyens.mail")


def absolute_url(endpoint: str, **values) -> str:
    """An absolute link for an e-mail or a bank: PUBLIC_URL when set (behind a proxy),
    else this request's host."""
    base = current_app.config.get("PUBLIC_URL")
    if base:
        return base.rstrip("/") + url_for(endpoint, **values)
    return url_for(endpoint, **values, _external=True)


def send_mail(
    kind: str,
    recipient: str,
    subject: str,
    template: str,
    *,
    sensitive: bool = False,
    user=None,
    **context,
) -> MailMessage:
    """Render `mail/<template>.txt` and `.html`, deliver, and record the message.

    `sensitive` messages carry a secret link: their bodies are not kept.
    The record is added to the session; the caller's commit keeps it.
    """
    context.setdefault("commune_name", current_app.config["COMMUNE_NAME"])
    context["subject"] = subject
    text = render_template(f"mail/{template}.txt", **context)
    html = render_template(f"mail/{template}.html", **context)
    message = MailMessage(
        recipient=recipient,
        subject=subject,
        kind=kind,
        template=template,
        sensitive=sensitive,
        body_text=text,
        body_html=html,
        user_id=getattr(user, "id", None),
    )
    db.session.add(message)
    db.session.flush()
    _deliver(message)
    if sensitive:
        message.body_text = message.body_html = None
    db.session.flush()
    return message


def resend(message: MailMessage) -> bool:
    """Try a failed message again. Sensitive ones cannot be resent (no body kept)."""
    if message.status != "failed" or message.body_text is None:
        return False
    _deliver(message)
    return message.status in ("sent", "printed")


def _deliver(message: MailMessage) -> None:
    message.attempts = (message.attempts or 0) + 1
    backend = current_app.config["MAIL_BACKEND"]
    if backend == "console":
        print(
            f"\n----- e-mail ({message.kind}) -----\nTo: {message.recipient}\n"
            f"Subject: {message.subject}\n\n{message.body_text}\n-----------------------------\n",
            file=sys.stdout,
            flush=True,
        )
        message.status, message.sent_at, message.error = "printed", utcnow(), None
        return
    try:
        mail.send(
            Message(
                subject=message.subject,
                recipients=[message.recipient],
                body=message.body_text,
                html=message.body_html,
            )
        )
    except (smtplib.SMTPException, OSError) as exc:
        message.status = "failed"
        message.error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("mail %s to message id=%s failed: %s", message.kind, message.id, exc)
        return
    message.status, message.sent_at, message.error = "sent", utcnow(), None
