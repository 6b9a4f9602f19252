"""The archives of a household's data ("Télécharger mes données")."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db

EXPORT_STATUSES = {
    "pending": "En préparation",
    "ready": "Prête",
    "failed": "En échec",
    "expired": "Expirée",
}
ACTIVE_EXPORT_STATUSES = ("pending",)


class DataExport(db.Model):
    """One ZIP of a household's data, built by the worker, kept `expires_at` (7 days after
    it is ready), then deleted (file, and the row goes to "expired"). At most one archive
    in preparation per household (partial unique index): a double click builds one."""

    __tablename__ = "data_exports"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'ready', 'failed', 'expired')", name="status"),
        Index(
            "uq_data_exports_one_pending",
            "household_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_data_exports_household_created_at", "household_id", "created_at"),
        Index("ix_data_exports_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    requested_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(10), default="pending")
    # In the upload storage (random key, never under static/); None until ready, and again
    # once the file is deleted.
    storage_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    size: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    downloaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(200))
