"""The commune, the audit trail and the record of every e-mail sent."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db


class Commune(db.Model):
    """The commune running this portal (one row): what its pages and mails show.

    Administrators edit it in /admin/reglages (citoyens/core/settings.py). The payment and
    SEPA columns, when set, take precedence over the environment's settings of the same
    name; empty, the environment's apply.
    """

    __tablename__ = "communes"
    __table_args__ = (
        CheckConstraint(
            "invoice_reminder_days_before IS NULL OR invoice_reminder_days_before BETWEEN 0 AND 90",
            name="invoice_reminder_days_before",
        ),
        CheckConstraint(
            "invoice_reminder_days_after IS NULL OR invoice_reminder_days_after BETWEEN 0 AND 90",
            name="invoice_reminder_days_after",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    insee_code: Mapped[str | None] = mapped_column(String(5))
    address: Mapped[str | None] = mapped_column(String(255))
    contact_email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(30))
    website: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # "#1f4e8c": the portal's header, the PWA's theme colour (white text on it: contrast).
    primary_color: Mapped[str | None] = mapped_column(String(7))
    # The logo (PNG or JPEG) in the upload storage, under a random key (served at /logo/<key>).
    logo_key: Mapped[str | None] = mapped_column(String(40))
    # The display name of the e-mails' sender ("Mairie de Chalonnes").
    mail_sender_name: Mapped[str | None] = mapped_column(String(100))
    payfip_numcli: Mapped[str | None] = mapped_column(String(6))
    payfip_saisie: Mapped[str | None] = mapped_column(String(1))
    sepa_creditor_name: Mapped[str | None] = mapped_column(String(70))
    sepa_creditor_iban: Mapped[str | None] = mapped_column(String(34))
    sepa_creditor_bic: Mapped[str | None] = mapped_column(String(11))
    sepa_creditor_id: Mapped[str | None] = mapped_column(String(35))
    # Invoice reminders (billing/reminders.py): days before the due date, days after it;
    # 0 sends none; empty: the environment's INVOICE_REMINDER_DAYS_BEFORE / _AFTER.
    invoice_reminder_days_before: Mapped[int | None] = mapped_column()
    invoice_reminder_days_after: Mapped[int | None] = mapped_column()


class AuditEvent(db.Model):
    """Who did what to what, and when: authentication, denials, staff actions.

    `details` never holds a password, token, IBAN or document content.
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_created_at", "created_at"),
        # The journal's action filter (/admin/journal): a code or its prefix.
        Index("ix_audit_events_action", "action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    action: Mapped[str] = mapped_column(String(60))
    target: Mapped[str | None] = mapped_column(String(120))
    ip: Mapped[str | None] = mapped_column(String(45))
    details: Mapped[str | None] = mapped_column(String(500))


MAIL_STATUSES = ("pending", "sending", "sent", "printed", "failed")


class MailMessage(db.Model):
    """One e-mail of the portal (the outbox), so staff see what a family was told.

    Written in the transaction of the action that causes it ("pending"); a worker claims
    it ("sending": `next_attempt_at` is then the end of its lease) and sends it ("sent", or
    "printed" in development), or puts it back to "pending" until `next_attempt_at`, or
    gives up ("failed") after MAIL_MAX_ATTEMPTS. Messages that carry a secret link
    (confirmation, reset) lose their body once sent or failed: the person asks for a new
    link instead of a resend.
    """

    __tablename__ = "mail_messages"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'printed', 'failed')", name="status"
        ),
        Index("ix_mail_messages_created_at", "created_at"),
        Index("ix_mail_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(60))
    template: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    sensitive: Mapped[bool] = mapped_column(default=False)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reply_to: Mapped[str | None] = mapped_column(String(254))
    message_id: Mapped[str | None] = mapped_column(String(255))
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


JOB_RUN_STATUSES = {
    "queued": "En file d'attente",
    "running": "En cours",
    "done": "Terminé",
    "failed": "En échec",
}
ACTIVE_JOB_RUN_STATUSES = ("queued", "running")


class JobRun(db.Model):
    """A long background run staff started and watch (the monthly invoice run): its state,
    its progress and its outcome. One active run per (kind, key) at a time: a second click
    while one is queued or running does not start another (partial unique index)."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="status"),
        Index(
            "uq_job_runs_active",
            "kind",
            "key",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index("ix_job_runs_kind_key_created_at", "kind", "key", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Progress: `done` of `total` items; `summary` says the outcome in French.
    done: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None] = mapped_column()
    summary: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(String(500))
    # How far a run that works in batches of ids got (the invoice run: the last household
    # of its last committed batch): a new run of the same work resumes after it.
    resume_after: Mapped[int | None] = mapped_column()

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_JOB_RUN_STATUSES


EXPORT_FILE_STATUSES = {
    "queued": "En file d'attente",
    "running": "En préparation",
    "ready": "Prêt",
    "failed": "En échec",
}
ACTIVE_EXPORT_FILE_STATUSES = ("queued", "running")


class ExportFile(db.Model):
    """A staff export too large to stream, built by the worker (`citoyens.export_jobs`):
    what was asked (a registered builder and its parameters), by whom, and the file once
    written to the upload storage. Only its requester downloads it; the retention purge
    deletes row and file `RETENTION_EXPORT_FILE_DAYS` (7) after it was asked for."""

    __tablename__ = "export_files"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'ready', 'failed')", name="status"),
        CheckConstraint("format IN ('csv', 'xlsx')", name="format"),
        Index("ix_export_files_requested_by_created_at", "requested_by_id", "created_at"),
        Index("ix_export_files_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The builder's name in the registry ("presences", "familles"...).
    kind: Mapped[str] = mapped_column(String(40))
    # The builder's parameters, as JSON (ids, ISO dates): what the worker builds from.
    params: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(4))
    # What it is, in French ("Présences — APS matin, du 02/09/2030 au 30/09/2030").
    title: Mapped[str] = mapped_column(String(200))
    # The download's name, an ASCII slug without extension.
    filename: Mapped[str] = mapped_column(String(80))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(10), default="queued")
    # Rows of the first sheet: estimated when asked (the progress bar's total), then as
    # written once ready.
    rows: Mapped[int | None] = mapped_column()
    # In the upload storage under a random key (never under static/); None until ready.
    storage_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    size: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(500))

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_EXPORT_FILE_STATUSES
