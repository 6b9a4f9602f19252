"""Money at the town hall counter (DOMAIN.md "Paying": payments outside the portal).

A `CounterReceipt` (encaissement) is one sum staff received from a family — a cheque,
cash, a bank transfer, CESU or ANCV titles — for one or several of its invoices. It is
split into one `Payment` per invoice it pays (`Payment.receipt_id`); what exceeds what
those invoices still owed is kept as the household's credit (`credit_cents`, an
`overpayment` movement). Receipt numbers are per year, sequential and gapless like the
invoices': a `ReceiptCounter` row per year is incremented in the recording transaction.

Only an administrator reverses a receipt, with a reason: the receipt and its payments get
`reversed_at`, so the invoices are due again, and the credit it created is taken back.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from citoyens.billing.models import Payment
from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db

# Modes whose title has a number and an issuer staff copy from it.
TITLE_METHODS = ("cheque", "cesu", "ancv")


class ReceiptCounter(db.Model):
    """The last receipt number given in a year (gapless numbering, as invoices)."""

    __tablename__ = "receipt_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(default=0)


class CounterReceipt(db.Model):
    __tablename__ = "counter_receipts"
    __table_args__ = (
        CheckConstraint("method IN ('cheque', 'cash', 'transfer', 'cesu', 'ancv')", name="method"),
        CheckConstraint("amount_cents > 0", name="amount"),
        CheckConstraint("credit_cents >= 0 AND credit_cents <= amount_cents", name="credit"),
        # Reversed only with its reason.
        CheckConstraint(
            "(reversed_at IS NULL AND reversal_reason IS NULL)"
            " OR (reversed_at IS NOT NULL AND reversal_reason IS NOT NULL)",
            name="reversal",
        ),
        UniqueConstraint("year", "sequence", name="uq_counter_receipts_year_sequence"),
        # The counter's daily list: by date received.
        Index("ix_counter_receipts_received_on", "received_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), index=True
    )
    year: Mapped[int] = mapped_column()
    sequence: Mapped[int] = mapped_column()
    number: Mapped[str] = mapped_column(String(20), unique=True)  # "R2026-000042"
    method: Mapped[str] = mapped_column(String(12))
    amount_cents: Mapped[int] = mapped_column()
    # Beyond what the invoices still owed: kept in the household's credit balance.
    credit_cents: Mapped[int] = mapped_column(default=0)
    # The cheque's or the titles' number(s), and the bank or issuer printed on them.
    reference: Mapped[str | None] = mapped_column(String(60))
    issuer: Mapped[str | None] = mapped_column(String(80))
    received_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reversed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    reversal_reason: Mapped[str | None] = mapped_column(String(200))

    payments: Mapped[list[Payment]] = relationship(back_populates="receipt", order_by=Payment.id)

    @property
    def allocated_cents(self) -> int:
        """What went to the invoices (the rest is the credit kept)."""
        return self.amount_cents - self.credit_cents
