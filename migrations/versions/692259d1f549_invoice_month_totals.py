"""invoice month totals kept by triggers

Issue 15: /admin/factures read a month's counts by scanning its invoices (85,000 in a
commune of 100,000 families). `invoice_month_totals` holds one row per (month, kind,
status, due date, paper or not) with the count and the total, kept by triggers on
`invoices` (`citoyens.billing.month_totals`: statement triggers over transition tables on
PostgreSQL, row triggers on SQLite), filled here from the invoices already issued.

The triggers' SQL is the module's: should it change, a later migration drops these and
creates the new ones.

Revision ID: 692259d1f549
Revises: d0c5a1e7f316
Create Date: 2026-12-04 17:10:00

"""

import sqlalchemy as sa
from alembic import op

from citoyens.billing.month_totals import KEY, TRIGGERS

# revision identifiers, used by Alembic.
revision = "692259d1f549"
down_revision = "d0c5a1e7f316"
branch_labels = None
depends_on = None

TRIGGER_NAMES = ("insert", "update", "delete", "truncate")


def upgrade():
    op.create_table(
        "invoice_month_totals",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=7), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("paperless", sa.Boolean(), nullable=False),
        sa.Column("invoices", sa.Integer(), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "month", "kind", "status", "due_on", "paperless", name=op.f("pk_invoice_month_totals")
        ),
    )
    op.execute(
        f"INSERT INTO invoice_month_totals ({KEY}, invoices, cents) "
        f"SELECT {KEY}, count(*), sum(abs(total_cents)) FROM invoices GROUP BY {KEY}"
    )
    for statement in TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for name in TRIGGER_NAMES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS invoice_month_totals_{name} ON invoices")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS invoice_month_totals_{name}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS invoice_month_totals_keep()")
    op.drop_table("invoice_month_totals")
