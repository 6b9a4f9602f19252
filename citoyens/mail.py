"""Outgoing e-mail through an outbox: `send_mail` renders a text and an HTML template and
writes a `MailMessage` row in the caller's transaction; once that transaction commits, the
job queue's `deliver_mail` task sends it. A request never talks to the mail server.

The task claims the row with a conditional UPDATE (two workers never send one message
twice), sends with MAIL_TIMEOUT, and on failure tries again later with a doubling delay,
up to MAIL_MAX_ATTEMPTS, then marks it failed (staff can resend it). A periodic sweeper
enqueues again the rows a crash or a restart left behind. In development
(`MAIL_BACKEND=console`) the worker prints the message instead of sending it.
"""

from __future__ import annotations

import logging
import re
import smtplib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from email.utils import formataddr, make_msgid, parseaddr
from urllib.parse import urlsplit

from flask import current_app, g, render_template, url_for
from flask_mail import Connection, Message
from sqlalchemy import and_, func, or_, select, update

from citoyens import jobs
from citoyens.bulk import insert_rows
from citoyens.core import settings as commune_settings
from citoyens.core.models import Commune, MailMessage
from citoyens.database import immediate_writes, utcnow
from citoyens.extensions import db

log = logging.getLogger("citoyens.mail")

# A pending message no worker took for this long was lost (a crash, a restart, the queue
# down at enqueue time): the sweeper enqueues it again.
LOST_AFTER = timedelta(minutes=5)
SWEEP_BATCH = 500
MAX_RETRY_DELAY = timedelta(hours=6)


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
    reply_to: str | None = None,
    **context,
) -> MailMessage:
    """Render `mail/<template>.txt` and `.html` and put the message in the outbox.

    The row is added to the session: the caller's commit keeps it and only then is it
    sent (a rolled-back action sends nothing). `reply_to`: the mailbox of the service the
    message concerns (default: MAIL_REPLY_TO, else the commune's contact address).
    `sensitive` messages carry a secret link: their bodies are wiped once sent or failed.
    """
    context.setdefault("commune_name", commune_settings.current().name)
    context["subject"] = subject
    message = MailMessage(
        recipient=recipient,
        subject=subject,
        kind=kind,
        template=template,
        sensitive=sensitive,
        status="pending",
        body_text=tidy_text(render_template(f"mail/{template}.txt", **context)),
        body_html=render_template(f"mail/{template}.html", **context),
        user_id=getattr(user, "id", None),
        reply_to=reply_to or default_reply_to(),
        message_id=make_msgid(domain=message_id_domain()),
    )
    db.session.add(message)
    db.session.flush()
    jobs.enqueue_after_commit(deliver_mail, message.id)
    return message


@dataclass(slots=True)
class Outgoing:
    """One message of `send_mails`: its recipient, its subject, its template's values."""

    recipient: str
    subject: str
    context: dict


def send_mails(
    kind: str, template: str, messages: Sequence[Outgoing], *, reply_to: str | None = None
) -> list[int]:
    """`send_mail` for many messages of one template (the invoice run's batch): the two
    templates looked up once, the values common to all (context processors, the commune's
    name, Reply-To, Message-ID domain) computed once, the rows inserted in one statement
    and one job enqueued for them all once the caller commits (`deliver_mails`). Each
    message is then a row like any other: retried, swept, resent one by one.
    Their ids, in order."""
    if not messages:
        return []
    app = current_app._get_current_object()
    text_template = app.jinja_env.get_template(f"mail/{template}.txt")
    html_template = app.jinja_env.get_template(f"mail/{template}.html")
    common: dict = {}
    app.update_template_context(common)
    common["commune_name"] = commune_settings.current().name
    reply_to = reply_to or default_reply_to()
    domain = message_id_domain()
    now = utcnow()
    rows = []
    for message in messages:
        values = {**common, **message.context, "subject": message.subject}
        rows.append(
            {
                "created_at": now,
                "recipient": message.recipient,
                "subject": message.subject,
                "kind": kind,
                "template": template,
                "status": "pending",
                "attempts": 0,
                "sensitive": False,
                "body_text": tidy_text(text_template.render(values)),
                "body_html": html_template.render(values),
                "user_id": None,
                "reply_to": reply_to,
                "message_id": make_msgid(domain=domain),
            }
        )
    ids = insert_rows(MailMessage.__table__, rows, returning_ids=True)
    jobs.enqueue_after_commit(deliver_mails, ids)
    return ids


BLANK_LINES = re.compile(r"\n{3,}")


def tidy_text(text: str) -> str:
    """The plain-text part as a mail reader shows it: no trailing spaces, at most one blank
    line in a row (template tags leave more), no blank lines at the start."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def message_id_domain() -> str:
    """The commune's domain for Message-ID: MAIL_MESSAGE_ID_DOMAIN, else PUBLIC_URL's host,
    else the sender's domain; never "localhost"."""
    config = current_app.config
    candidates = [
        config.get("MAIL_MESSAGE_ID_DOMAIN") or "",
        urlsplit(config.get("PUBLIC_URL") or "").hostname or "",
        parseaddr(config.get("MAIL_DEFAULT_SENDER") or "")[1].rpartition("@")[2],
    ]
    for domain in candidates:
        domain = domain.strip().lower()
        if domain and domain != "localhost" and not domain.endswith(".localhost"):
            return domain
    return "citoyens.invalid"


def default_reply_to() -> str | None:
    """MAIL_REPLY_TO, else the commune's contact address (read once per app context)."""
    configured = current_app.config.get("MAIL_REPLY_TO")
    if configured:
        return configured
    if "commune_contact" not in g:
        g.commune_contact = db.session.scalar(select(Commune.contact_email).limit(1))
    return g.commune_contact


# --- Delivery (the worker) --------------------------------------------------------------------


@jobs.task()
def deliver_mail(message_id: int) -> None:
    """Send one message of the outbox (a task: runs in the worker)."""
    deliver(message_id)


@jobs.task()
def deliver_mails(message_ids: list[int]) -> None:
    """Send the messages a batch put in the outbox (`send_mails`), one after the other;
    each is claimed, retried and recorded on its own as `deliver` does."""
    for message_id in message_ids:
        try:
            deliver(message_id)
        except Exception:  # the next ones still go; the sweeper takes this one up again
            log.exception("mail id=%s could not be delivered", message_id)
            db.session.rollback()


def deliver(message_id: int) -> str:
    """Claim the message, send it, record the outcome; "skipped" when another worker has it,
    it was already sent, or its next attempt is not due. Commits."""
    config = current_app.config
    now = utcnow()
    lease = timedelta(seconds=4 * float(config["MAIL_TIMEOUT"]) + 60)
    with immediate_writes():
        claimed = db.session.execute(
            update(MailMessage)
            .where(
                MailMessage.id == message_id,
                MailMessage.status == "pending",
                or_(MailMessage.next_attempt_at.is_(None), MailMessage.next_attempt_at <= now),
            )
            .values(
                status="sending",
                attempts=MailMessage.attempts + 1,
                next_attempt_at=now + lease,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        db.session.commit()
    if not claimed:
        return "skipped"
    message = db.session.get(MailMessage, message_id)
    try:
        status = transmit(message)
    except (smtplib.SMTPException, OSError) as exc:
        return _failed(message, exc)
    # End the read the send ran in before writing: on SQLite, a read transaction that
    # then writes fails at once ("database is locked") when another worker wrote since;
    # a transaction begun IMMEDIATE waits its turn instead.
    db.session.rollback()
    with immediate_writes():
        message.status, message.sent_at, message.error = status, utcnow(), None
        message.next_attempt_at = None
        if message.sensitive:
            message.body_text = message.body_html = None
        db.session.commit()
    return status


def _failed(message: MailMessage, exc: Exception) -> str:
    config = current_app.config
    error = f"{type(exc).__name__}: {exc}"[:500]
    db.session.rollback()  # as in `deliver`: write in a transaction begun IMMEDIATE
    with immediate_writes():
        log.warning("mail id=%s attempt %s failed: %s", message.id, message.attempts, exc)
        final = message.attempts >= int(config["MAIL_MAX_ATTEMPTS"])
        delay = retry_delay(message.attempts)
        message.error = error
        if final:
            message.status, message.next_attempt_at = "failed", None
            if message.sensitive:  # a secret link is not kept: the person asks for a new one
                message.body_text = message.body_html = None
        else:
            message.status, message.next_attempt_at = "pending", utcnow() + delay
        db.session.commit()
    if final:
        return "failed"
    deliver_mail.schedule((message.id,), delay=delay.total_seconds())
    return "retry"


def retry_delay(attempts: int) -> timedelta:
    """MAIL_RETRY_DELAY after the first failure, doubling after each, at most 6 hours."""
    seconds = float(current_app.config["MAIL_RETRY_DELAY"]) * 2 ** max(0, attempts - 1)
    return min(timedelta(seconds=seconds), MAX_RETRY_DELAY)


class TimedConnection(Connection):
    """Flask-Mail's SMTP connection with a timeout on connecting and on every read."""

    def __init__(self, state, timeout: float):
        super().__init__(state)
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        state = self.mail
        smtp = smtplib.SMTP_SSL if state.use_ssl else smtplib.SMTP
        host = smtp(state.server, state.port, timeout=self.timeout)
        host.set_debuglevel(int(state.debug))
        if state.use_tls:
            host.starttls()
        if state.username and state.password:
            host.login(state.username, state.password)
        return host


def sender() -> str | None:
    """MAIL_DEFAULT_SENDER, under the display name set by the commune if any."""
    configured = current_app.config.get("MAIL_DEFAULT_SENDER") or None
    name = commune_settings.current().mail_sender_name
    address = parseaddr(configured or "")[1]
    return formataddr((name, address)) if name and address else configured


def build_message(message: MailMessage) -> Message:
    """The e-mail of a row, with its headers (Message-ID kept across attempts)."""
    email = Message(
        subject=message.subject,
        recipients=[message.recipient],
        body=message.body_text,
        html=message.body_html,
        reply_to=message.reply_to or None,
        sender=sender(),
        extra_headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
    )
    email.msgId = message.message_id or make_msgid(domain=message_id_domain())
    return email


def transmit(message: MailMessage) -> str:
    """Send (or print, in development) one message: "sent" or "printed"; raises on failure."""
    config = current_app.config
    if config["MAIL_BACKEND"] == "console":
        print(
            f"\n----- e-mail ({message.kind}) -----\nTo: {message.recipient}\n"
            f"Reply-To: {message.reply_to or ''}\n"
            f"Subject: {message.subject}\n\n{message.body_text}\n-----------------------------\n",
            file=sys.stdout,
            flush=True,
        )
        return "printed"
    connection = TimedConnection(current_app.extensions["mail"], float(config["MAIL_TIMEOUT"]))
    connection.host = None if connection.mail.suppress else connection.configure_host()
    try:
        connection.send(build_message(message))
    finally:
        if connection.host is not None:
            try:
                connection.host.quit()
            except (smtplib.SMTPException, OSError):
                connection.host.close()
    return "sent"


# --- Resend and sweep -------------------------------------------------------------------------


def waiting_counts() -> dict[str, int]:
    """How many messages are to send, being sent and failed (one query)."""
    counts = dict(
        db.session.execute(
            select(MailMessage.status, func.count(MailMessage.id))
            .where(MailMessage.status.in_(("pending", "sending", "failed")))
            .group_by(MailMessage.status)
        ).all()
    )
    return {status: counts.get(status, 0) for status in ("pending", "sending", "failed")}


def resend(message: MailMessage) -> bool:
    """Put a failed message back in the outbox (enqueued once the caller commits).
    A sensitive one cannot be resent (no body kept): False."""
    if message.status != "failed" or message.body_text is None:
        return False
    message.status, message.next_attempt_at, message.attempts = "pending", None, 0
    db.session.flush()
    jobs.enqueue_after_commit(deliver_mail, message.id)
    return True


def sweep(now=None) -> int:
    """Enqueue again the messages lost on the way (a worker died while sending, or the queue
    was down): how many. Commits."""
    now = now or utcnow()
    with immediate_writes():
        # A worker that claimed a message and vanished: its lease is over, back to pending.
        crashed = list(
            db.session.scalars(
                update(MailMessage)
                .where(MailMessage.status == "sending", MailMessage.next_attempt_at < now)
                .values(status="pending", next_attempt_at=None)
                .returning(MailMessage.id)
                .execution_options(synchronize_session=False)
            )
        )
        lost = crashed + list(
            db.session.scalars(
                select(MailMessage.id)
                .where(
                    MailMessage.status == "pending",
                    or_(
                        and_(
                            MailMessage.next_attempt_at.is_(None),
                            MailMessage.created_at < now - LOST_AFTER,
                        ),
                        MailMessage.next_attempt_at < now - LOST_AFTER,
                    ),
                )
                .order_by(MailMessage.id)
                .limit(SWEEP_BATCH)
            )
        )
        for message_id in lost:
            jobs.enqueue_after_commit(deliver_mail, message_id)
        db.session.commit()
    return len(lost)


@jobs.periodic_task(jobs.crontab(minute="*/5"))
def sweep_outbox() -> None:
    """Every 5 minutes: the outbox's lost messages go back to the queue."""
    count = sweep()
    if count:
        log.info("outbox: %s lost message(s) enqueued again", count)
