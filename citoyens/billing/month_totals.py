"""The month's invoice counts and totals, kept by the database (issue 15).

`/admin/factures` opens on a month's summary: how many invoices are to pay, late, paid,
debited, cancelled, the credit notes, the paper ones, and their totals. Counted from the
invoices, that is a scan of the month (85,000 invoices in a commune of 100,000 families,
every visit). Here one row per (month, kind, status, due date, paper or not) holds the
count and the total, kept by triggers on `invoices`, whatever writes them (the ORM, the
batched invoice run, a status `UPDATE`): PostgreSQL with statement triggers over the
transition tables (one upsert per key and statement, keys in order, an update that
changes no key changes nothing), SQLite with row triggers.

The summary of an agent who sees only some families still counts their invoices
(`invoice_list.month_summary`).
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import DDL, BigInteger, Date, String, event
from sqlalchemy.orm import Mapped, mapped_column

from citoyens.extensions import db

KEY = "month, kind, status, due_on, paperless"


class InvoiceMonthTotal(db.Model):
    """Invoices (or credit notes) of a month sharing kind, status, due date and paper."""

    __tablename__ = "invoice_month_totals"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(7), primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    due_on: Mapped[date] = mapped_column(Date, primary_key=True)
    paperless: Mapped[bool] = mapped_column(primary_key=True)
    invoices: Mapped[int] = mapped_column(default=0)
    cents: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of |total_cents|


# Plain SQL, no formatting: the key columns are KEY.
KEEP_FUNCTION = """
CREATE OR REPLACE FUNCTION invoice_month_totals_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO invoice_month_totals AS t (month, kind, status, due_on, paperless, invoices, cents)
    SELECT month, kind, status, due_on, paperless, count(*), sum(abs(total_cents)) FROM new_rows
    GROUP BY month, kind, status, due_on, paperless ORDER BY month, kind, status, due_on, paperless
    ON CONFLICT (month, kind, status, due_on, paperless) DO UPDATE
    SET invoices = t.invoices + excluded.invoices, cents = t.cents + excluded.cents;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO invoice_month_totals AS t (month, kind, status, due_on, paperless, invoices, cents)
    SELECT month, kind, status, due_on, paperless, -count(*), -sum(abs(total_cents)) FROM old_rows
    GROUP BY month, kind, status, due_on, paperless ORDER BY month, kind, status, due_on, paperless
    ON CONFLICT (month, kind, status, due_on, paperless) DO UPDATE
    SET invoices = t.invoices + excluded.invoices, cents = t.cents + excluded.cents;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO invoice_month_totals AS t (month, kind, status, due_on, paperless, invoices, cents)
    SELECT month, kind, status, due_on, paperless, sum(n), sum(c) FROM (
      SELECT month, kind, status, due_on, paperless, 1 AS n, abs(total_cents) AS c FROM new_rows
      UNION ALL
      SELECT month, kind, status, due_on, paperless, -1, -abs(total_cents) FROM old_rows
    ) AS moved
    GROUP BY month, kind, status, due_on, paperless HAVING sum(n) <> 0 OR sum(c) <> 0
    ORDER BY month, kind, status, due_on, paperless
    ON CONFLICT (month, kind, status, due_on, paperless) DO UPDATE
    SET invoices = t.invoices + excluded.invoices, cents = t.cents + excluded.cents;
  ELSE
    DELETE FROM invoice_month_totals;
  END IF;
  RETURN NULL;
END $$"""

# (event, transition tables): one statement trigger per event.
PG_TRIGGERS = {
    "insert": "AFTER INSERT ON invoices REFERENCING NEW TABLE AS new_rows",
    "update": "AFTER UPDATE ON invoices REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "AFTER DELETE ON invoices REFERENCING OLD TABLE AS old_rows",
    "truncate": "AFTER TRUNCATE ON invoices",
}
# Idempotent, as `create_all` on a database that has them runs them again.
POSTGRESQL = [KEEP_FUNCTION]
for _event, _when in PG_TRIGGERS.items():
    POSTGRESQL += [
        f"DROP TRIGGER IF EXISTS invoice_month_totals_{_event} ON invoices",
        f"CREATE TRIGGER invoice_month_totals_{_event} {_when} "
        "FOR EACH STATEMENT EXECUTE FUNCTION invoice_month_totals_keep()",
    ]

_SQLITE_ADD = """
  INSERT INTO invoice_month_totals (month, kind, status, due_on, paperless, invoices, cents)
  VALUES (NEW.month, NEW.kind, NEW.status, NEW.due_on, NEW.paperless, 1, abs(NEW.total_cents))
  ON CONFLICT (month, kind, status, due_on, paperless) DO UPDATE
  SET invoices = invoices + 1, cents = cents + excluded.cents;"""
_SQLITE_REMOVE = """
  UPDATE invoice_month_totals SET invoices = invoices - 1, cents = cents - abs(OLD.total_cents)
  WHERE month = OLD.month AND kind = OLD.kind AND status = OLD.status
    AND due_on = OLD.due_on AND paperless = OLD.paperless;"""
_MOVED = " OR ".join(
    f"OLD.{column} IS NOT NEW.{column}"
    for column in ("month", "kind", "status", "due_on", "paperless", "total_cents")
)
SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS invoice_month_totals_insert AFTER INSERT ON invoices "
    f"BEGIN{_SQLITE_ADD}\nEND",
    "CREATE TRIGGER IF NOT EXISTS invoice_month_totals_update "
    "AFTER UPDATE OF month, kind, status, due_on, paperless, total_cents ON invoices "
    f"WHEN {_MOVED} BEGIN{_SQLITE_REMOVE}{_SQLITE_ADD}\nEND",
    "CREATE TRIGGER IF NOT EXISTS invoice_month_totals_delete AFTER DELETE ON invoices "
    f"BEGIN{_SQLITE_REMOVE}\nEND",
]
TRIGGERS = {"postgresql": POSTGRESQL, "sqlite": SQLITE}

# After every table exists (the triggers write to this table and read `invoices`).
for _dialect, _statements in TRIGGERS.items():
    for _statement in _statements:
        event.listen(db.metadata, "after_create", DDL(_statement).execute_if(dialect=_dialect))
