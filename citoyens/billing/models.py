"""Tariffs, invoices, payments, SEPA mandates and direct-debit batches.

Money is integer cents everywhere (DOMAIN.md). An issued invoice is never edited:
its lines copy the prices of the day, and a correction is a credit note (`kind`
"credit") that references it. Invoice numbers are per year, sequential and gapless:
a counter row per year is incremented in the issuing transaction.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from citoyens.crypto import EncryptedString
from citoyens.database import UTCDateTime, utcnow
from citoyens.extensions import db

# --- Tariffs ----------------------------------------------------------------------------------


class QfBand(db.Model):
    """A quotient familial band of a school year: QF up to `qf_max` euros (inclusive);
    the band without `qf_max` is the top one, also used when the QF is unknown."""

    __tablename__ = "qf_bands"
    __table_args__ = (
        UniqueConstraint("school_year_id", "position", name="uq_qf_bands_position"),
        CheckConstraint("qf_max IS NULL OR qf_max >= 0", name="qf_max"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    school_year_id: Mapped[int] = mapped_column(
        ForeignKey("school_years.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column()  # 1 = lowest QF
    label: Mapped[str] = mapped_column(String(60))  # "Tranche 1 (QF ≤ 500 €)"
    qf_max: Mapped[int | None] = mapped_column()


class Price(db.Model):
    """The price of one unit (a day, a meal) of an activity for a band."""

    __tablename__ = "prices"
    __table_args__ = (
        UniqueConstraint("activity_id", "band_id", name="uq_prices_activity_band"),
        CheckConstraint("amount_cents >= 0", name="amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), index=True
    )
    band_id: Mapped[int] = mapped_column(ForeignKey("qf_bands.id", ondelete="CASCADE"), index=True)
    amount_cents: Mapped[int] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    band: Mapped[QfBand] = relationship()


# --- Invoices ---------------------------------------------------------------------------------

INVOICE_STATUSES = {
    "issued": "À payer",
    "paid": "Payée",
    "direct_debit": "Prélèvement prévu",
    "debited": "Prélevée",
    "cancelled": "Annulée par avoir",
}
LINE_KINDS = {
    "booked": "Jours réservés",
    "late_cancel": "Annulations tardives",
    "walk_in": "Présences sans réservation",
    "credit": "Avoir",
    # The household's credit balance deducted (negative) or credit left over carried to it.
    "balance": "Solde créditeur",
}


class InvoiceCounter(db.Model):
    """The last invoice number given in a year: gapless numbering (DOMAIN.md)."""

    __tablename__ = "invoice_counters"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_number: Mapped[int] = mapped_column(default=0)


class Invoice(db.Model):
    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("kind IN ('invoice', 'credit')", name="kind"),
        CheckConstraint(
            "status IN ('issued', 'paid', 'direct_debit', 'debited', 'cancelled')", name="status"
        ),
        UniqueConstraint("year", "sequence", name="uq_invoices_year_sequence"),
        # One invoice per household and month: a re-run, even concurrent, adds nothing.
        Index(
            "uq_invoices_household_month",
            "household_id",
            "month",
            unique=True,
            sqlite_where=text("kind = 'invoice'"),
            postgresql_where=text("kind = 'invoice'"),
        ),
        Index("ix_invoices_month_status", "month", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(7), default="invoice")
    # The invoice a credit note corrects.
    credit_for_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    year: Mapped[int] = mapped_column()
    sequence: Mapped[int] = mapped_column()
    number: Mapped[str] = mapped_column(String(20), unique=True)  # "F2026-000042"
    month: Mapped[date] = mapped_column(Date)  # first day of the month billed
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_on: Mapped[date] = mapped_column(Date)
    total_cents: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(12), default="issued")
    # Copied at issue: who receives it by e-mail, who on paper (staff print a batch).
    paperless: Mapped[bool] = mapped_column(default=True)
    # Household details as printed (an issued invoice never changes).
    addressee: Mapped[str] = mapped_column(String(255))
    address: Mapped[str | None] = mapped_column(Text)
    family_quotient: Mapped[int | None] = mapped_column()
    band_label: Mapped[str | None] = mapped_column(String(60))
    # Under direct debit: the mandate and the planned debit date.
    mandate_id: Mapped[int | None] = mapped_column(
        ForeignKey("mandates.id", ondelete="RESTRICT"), index=True
    )
    debit_on: Mapped[date | None] = mapped_column(Date)
    mailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceLine.id"
    )
    credit_for = relationship("Invoice", remote_side=[id])


class InvoiceLine(db.Model):
    """One child, one activity, one unit price: the days listed."""

    __tablename__ = "invoice_lines"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('booked', 'late_cancel', 'walk_in', 'credit', 'balance')", name="kind"
        ),
        CheckConstraint("quantity >= 0", name="quantity"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(12))
    child_id: Mapped[int | None] = mapped_column(
        ForeignKey("people.id", ondelete="SET NULL"), index=True
    )
    child_name: Mapped[str] = mapped_column(String(120))
    activity_id: Mapped[int | None] = mapped_column(
        ForeignKey("activities.id", ondelete="SET NULL"), index=True
    )
    label: Mapped[str] = mapped_column(String(200))
    unit_price_cents: Mapped[int] = mapped_column()
    quantity: Mapped[int] = mapped_column()
    amount_cents: Mapped[int] = mapped_column()
    days: Mapped[str | None] = mapped_column(Text)  # ISO dates, comma-separated

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class BilledDay(db.Model):
    """One booking as an invoice line billed it, for how much (surcharge included).

    A later change that makes the day no longer billable (certificate accepted since,
    attendance corrected by staff...) is credited on the next invoice: `credited_by_line_id`
    names that credit line. The partial unique index keeps at most one live (uncredited)
    row per booking, so a day is never billed twice nor credited twice, even by two runs
    at once (DOMAIN.md "Billing").
    """

    __tablename__ = "billed_days"
    __table_args__ = (
        Index(
            "uq_billed_days_live_booking",
            "booking_id",
            unique=True,
            sqlite_where=text("credited_by_line_id IS NULL"),
            postgresql_where=text("credited_by_line_id IS NULL"),
        ),
        CheckConstraint("amount_cents >= 0", name="amount"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_line_id: Mapped[int] = mapped_column(
        ForeignKey("invoice_lines.id", ondelete="CASCADE"), index=True
    )
    # Kept when the booking goes (a child deleted): the day stays billed, never credited.
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("bookings.id", ondelete="SET NULL"))
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), index=True
    )
    day: Mapped[date] = mapped_column(Date)
    amount_cents: Mapped[int] = mapped_column()
    credited_by_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoice_lines.id", ondelete="RESTRICT"), index=True
    )


# --- Payments ---------------------------------------------------------------------------------

# What money came in by, as the family and the accounting read it. The counter's modes
# (COUNTER_METHODS) are recorded by staff with a receipt (billing/counter_models.py);
# "manual" is kept for payments recorded before those existed.
PAYMENT_METHODS = {
    "card": "Carte bancaire (PayFiP)",
    "direct_debit": "Prélèvement",
    "cheque": "Chèque",
    "cash": "Espèces",
    "transfer": "Virement",
    "cesu": "CESU",
    "ancv": "Chèques-vacances ANCV",
    "manual": "Au guichet",
}
COUNTER_METHODS = ("cheque", "cash", "transfer", "cesu", "ancv")


class Payment(db.Model):
    """Money received for an invoice. `transaction_id` is unique: a notification
    repeated or concurrent cannot record a payment twice (DOMAIN.md "Paying").

    A payment counts towards the invoice unless its direct debit was rejected
    (`rejected_at`) or its counter receipt was reversed by an administrator
    (`reversed_at`, copied from the receipt): `Payment.counts` says so, in SQL and in
    Python, for every sum of what was paid."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(
            "method IN ('card', 'direct_debit', 'manual', 'cheque', 'cash', 'transfer', "
            "'cesu', 'ancv')",
            name="method",
        ),
        CheckConstraint("amount_cents > 0", name="amount"),
        # Money taken at the counter always has its receipt.
        CheckConstraint(
            "receipt_id IS NOT NULL OR method NOT IN ('cheque', 'cash', 'transfer', 'cesu', "
            "'ancv')",
            name="counter_receipt",
        ),
        UniqueConstraint("receipt_id", "invoice_id", name="uq_payments_receipt_invoice"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), index=True
    )
    method: Mapped[str] = mapped_column(String(12))
    amount_cents: Mapped[int] = mapped_column()
    transaction_id: Mapped[str] = mapped_column(String(64), unique=True)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # A direct debit the bank rejected: the invoice is due again.
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(String(200))
    # Taken at the counter: the receipt (encaissement) it is part of, and when an
    # administrator reversed it (the receipt holds who and why).
    # (Looked up through uq_payments_receipt_invoice, which starts with it.)
    receipt_id: Mapped[int | None] = mapped_column(
        ForeignKey("counter_receipts.id", ondelete="RESTRICT")
    )
    reversed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice] = relationship()
    receipt = relationship("CounterReceipt", back_populates="payments")

    @hybrid_property
    def counts(self) -> bool:
        """Neither rejected by the bank nor reversed: it pays the invoice."""
        return self.rejected_at is None and self.reversed_at is None

    @counts.inplace.expression
    @classmethod
    def _counts_expression(cls):
        return and_(cls.rejected_at.is_(None), cls.reversed_at.is_(None))


ATTEMPT_STATUSES = {
    "pending": "En cours",
    "paid": "Payé",
    "refused": "Refusé",
    "cancelled": "Abandonné",
    # Closed here after its time at the bank without a final word from it: a later "paid"
    # from the bank is still recorded (the money was taken).
    "expired": "Expiré",
}


class PaymentAttempt(db.Model):
    """One trip to the bank's payment page for an invoice (PayFiP `idOp`). At most one is
    pending per invoice (a partial unique index): « Payer » again goes back to it."""

    __tablename__ = "payment_attempts"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'paid', 'refused', 'cancelled', 'expired')", name="status"
        ),
        Index(
            "uq_payment_attempts_pending_invoice",
            "invoice_id",
            unique=True,
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), index=True
    )
    # The bank's operation id (PayFiP idOp), unique once known.
    bank_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The bank's page for it: where « Payer » again sends the parent while it is recent.
    bank_url: Mapped[str | None] = mapped_column(String(500))
    amount_cents: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(10), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


# --- SEPA direct debit ------------------------------------------------------------------------


def mask_iban(iban: str) -> str:
    """FR76 •••• •••• •••• •••• •••• 189 — the country, check digits and last 3."""
    return f"{iban[:4]} •••• •••• •••• •••• •••• {iban[-3:]}"


class Mandate(db.Model):
    """A SEPA direct-debit mandate signed by the family; one active mandate per household.

    The IBAN is stored encrypted (citoyens.crypto) and loaded only when asked for
    (deferred: the pain.008 export); pages show `iban_masked`, kept in clear beside it and
    set whenever the IBAN is. Never logged."""

    __tablename__ = "mandates"
    __table_args__ = (
        Index(
            "uq_mandates_active_household",
            "household_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), index=True
    )
    rum: Mapped[str] = mapped_column(String(35), unique=True)  # référence unique du mandat
    holder_name: Mapped[str] = mapped_column(String(70))
    iban: Mapped[str] = mapped_column(EncryptedString(), deferred=True)
    iban_masked: Mapped[str] = mapped_column(String(40))
    bic: Mapped[str] = mapped_column(String(11))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    signed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # The first month whose invoice it pays: the next invoice issued after signing.
    first_month: Mapped[date] = mapped_column(Date)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @validates("iban")
    def _mask(self, _key: str, iban: str) -> str:
        self.iban_masked = mask_iban(iban)
        return iban

    @property
    def masked_iban(self) -> str:
        """FR76 •••• •••• •••• •••• •••• 189, without decrypting anything."""
        return self.iban_masked


class DirectDebitBatch(db.Model):
    """A pain.008.001.02 file exported for a month's invoices under direct debit."""

    __tablename__ = "direct_debit_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(Date, index=True)
    message_id: Mapped[str] = mapped_column(String(35), unique=True)
    collection_date: Mapped[date] = mapped_column(Date)
    count: Mapped[int] = mapped_column()
    total_cents: Mapped[int] = mapped_column()
    xml: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )


class DirectDebitItem(db.Model):
    """One invoice in a batch: FRST for a mandate's first collection, RCUR after."""

    __tablename__ = "direct_debit_items"
    __table_args__ = (
        CheckConstraint("sequence_type IN ('FRST', 'RCUR')", name="sequence_type"),
        UniqueConstraint("batch_id", "invoice_id", name="uq_direct_debit_items_pair"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    batch_id: Mapped[int] = mapped_column(
        ForeignKey("direct_debit_batches.id", ondelete="CASCADE"), index=True
    )
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    mandate_id: Mapped[int] = mapped_column(
        ForeignKey("mandates.id", ondelete="RESTRICT"), index=True
    )
    sequence_type: Mapped[str] = mapped_column(String(4))
    amount_cents: Mapped[int] = mapped_column()
    end_to_end_id: Mapped[str] = mapped_column(String(35), unique=True)
    rejected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(String(200))


# --- Credit balance ---------------------------------------------------------------------------

CREDIT_KINDS = {
    # Money in the family's favour.
    "overpayment": "Trop-perçu",
    "correction": "Avoir reporté",
    # Money taken out of it.
    "applied": "Déduit d'une facture",
    "refund": "Remboursé",
    # An overpayment taken back: the counter payment it came from was reversed.
    "reversal": "Paiement annulé",
}


class HouseholdCredit(db.Model):
    """One movement of a household's credit balance (DOMAIN.md "Billing" and "Paying").

    A payment above what was due (`overpayment`) or credit lines larger than an invoice
    (`correction`) add to it; it is used on the next invoice (`applied`, negative) or
    refunded by staff (`refund`, negative, recorded with who and why); the overpayment of a
    counter payment an administrator reversed is taken back (`reversal`, negative). The
    balance is the sum of `amount_cents`; it never goes below zero (checked where money is
    taken out).
    """

    __tablename__ = "household_credits"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('overpayment', 'correction', 'applied', 'refund', 'reversal')", name="kind"
        ),
        CheckConstraint("amount_cents <> 0", name="amount"),
        CheckConstraint(
            "(kind IN ('overpayment', 'correction') AND amount_cents > 0)"
            " OR (kind IN ('applied', 'refund', 'reversal') AND amount_cents < 0)",
            name="sign",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(
        ForeignKey("households.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(12))
    amount_cents: Mapped[int] = mapped_column()
    # The invoice it came from or was used on, the payment that overpaid.
    invoice_id: Mapped[int | None] = mapped_column(
        ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    payment_id: Mapped[int | None] = mapped_column(
        ForeignKey("payments.id", ondelete="RESTRICT"), index=True
    )
    note: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # Overpayments are flagged to staff until one of them has looked (refunded or kept).
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- Reminders --------------------------------------------------------------------------------

REMINDER_KINDS = {
    "before": "Rappel avant l'échéance",
    "after": "Relance après l'échéance",
}


class InvoiceReminder(db.Model):
    """An e-mail reminding a family of an invoice left to pay (billing/reminders.py).

    At most one of each kind per invoice (the unique constraint): a re-run of the daily job,
    or two workers at once, never send a reminder twice."""

    __tablename__ = "invoice_reminders"
    __table_args__ = (
        UniqueConstraint("invoice_id", "kind", name="uq_invoice_reminders_invoice_kind"),
        CheckConstraint("kind IN ('before', 'after')", name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(6))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the e-mail said was left to pay, and to how many addresses it went.
    left_cents: Mapped[int] = mapped_column()
    recipients: Mapped[int] = mapped_column()
