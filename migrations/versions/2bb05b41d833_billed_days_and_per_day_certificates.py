"""billed days and per-day certificates

Revision ID: 2bb05b41d833
Revises: 7e31a29ef142
Create Date: 2026-12-03 10:02:03.962293

"""
from datetime import date

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '2bb05b41d833'
down_revision = '7e31a29ef142'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('billed_days',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('invoice_line_id', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.Integer(), nullable=True),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('amount_cents', sa.Integer(), nullable=False),
    sa.Column('credited_by_line_id', sa.Integer(), nullable=True),
    sa.CheckConstraint('amount_cents >= 0', name=op.f('ck_billed_days_amount')),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_billed_days_booking_id_bookings'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['credited_by_line_id'], ['invoice_lines.id'], name=op.f('fk_billed_days_credited_by_line_id_invoice_lines'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_billed_days_household_id_households'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['invoice_line_id'], ['invoice_lines.id'], name=op.f('fk_billed_days_invoice_line_id_invoice_lines'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billed_days'))
    )
    with op.batch_alter_table('billed_days', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billed_days_credited_by_line_id'), ['credited_by_line_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_billed_days_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_billed_days_invoice_line_id'), ['invoice_line_id'], unique=False)
        batch_op.create_index('uq_billed_days_live_booking', ['booking_id'], unique=True, sqlite_where=sa.text('credited_by_line_id IS NULL'), postgresql_where=sa.text('credited_by_line_id IS NULL'))

    # Credit lines larger than the month's charges: the surplus goes to the balance.
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_invoice_lines_kind'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_invoice_lines_kind'),
            "kind IN ('booked', 'late_cancel', 'walk_in', 'credit', 'balance')",
        )

    # A certificate of absence belongs to its day: one current per day, not per child.
    # The expression index is dropped before the table is rebuilt (SQLite) and made again.
    op.drop_index("uq_documents_one_current", table_name="documents")
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('activity_day_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_documents_activity_day_id'), ['activity_day_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_documents_activity_day_id_activity_days'), 'activity_days', ['activity_day_id'], ['id'], ondelete='CASCADE')
    op.execute(
        "UPDATE documents SET activity_day_id = (SELECT max(b.activity_day_id) FROM bookings b"
        " WHERE b.certificate_id = documents.id)"
        " WHERE EXISTS (SELECT 1 FROM bookings b WHERE b.certificate_id = documents.id)"
    )
    op.create_index(
        "uq_documents_one_current",
        "documents",
        [
            "household_id",
            "type_id",
            sa.text("coalesce(person_id, 0)"),
            sa.text("coalesce(activity_day_id, 0)"),
        ],
        unique=True,
        sqlite_where=sa.text("replaced_at IS NULL"),
        postgresql_where=sa.text("replaced_at IS NULL"),
    )

    _backfill_billed_days()


def _backfill_billed_days():
    """The days invoices issued before this migration billed, so that a later change to
    one of them (a certificate accepted, a correction) can be credited like the others."""
    conn = op.get_bind()
    lines = conn.execute(
        sa.text(
            "SELECT l.id, i.household_id, l.child_id, l.activity_id, l.unit_price_cents, l.days"
            " FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id"
            " WHERE l.kind IN ('booked', 'late_cancel', 'walk_in') AND l.days IS NOT NULL"
            " AND l.child_id IS NOT NULL AND l.activity_id IS NOT NULL ORDER BY l.id"
        )
    ).all()
    find = sa.text(
        "SELECT b.id FROM bookings b JOIN activity_days d ON d.id = b.activity_day_id"
        " WHERE b.child_id = :child AND d.activity_id = :activity AND d.day = :day"
    )
    insert = sa.text(
        "INSERT INTO billed_days (invoice_line_id, booking_id, household_id, day, amount_cents)"
        " VALUES (:line, :booking, :household, :day, :amount)"
    )
    seen = set()
    for line_id, household_id, child_id, activity_id, unit_cents, days in lines:
        for value in days.split(","):
            value = value.strip()
            if not value:
                continue
            day = date.fromisoformat(value)
            booking_id = conn.execute(
                find, {"child": child_id, "activity": activity_id, "day": day}
            ).scalar()
            if booking_id in seen:
                booking_id = None  # billed twice before: keep the day, credit it once
            seen.add(booking_id)
            conn.execute(
                insert,
                {
                    "line": line_id,
                    "booking": booking_id,
                    "household": household_id,
                    "day": day,
                    "amount": max(unit_cents, 0),
                },
            )


def downgrade():
    op.drop_index("uq_documents_one_current", table_name="documents")
    with op.batch_alter_table('documents', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_documents_activity_day_id_activity_days'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_documents_activity_day_id'))
        batch_op.drop_column('activity_day_id')
    # Several current certificates of one child (one per day) become one: the newest.
    op.execute(
        "UPDATE documents SET replaced_at = uploaded_at WHERE replaced_at IS NULL AND EXISTS ("
        "SELECT 1 FROM documents d2 WHERE d2.replaced_at IS NULL AND d2.id > documents.id"
        " AND d2.household_id = documents.household_id AND d2.type_id = documents.type_id"
        " AND coalesce(d2.person_id, 0) = coalesce(documents.person_id, 0))"
    )
    op.create_index(
        "uq_documents_one_current",
        "documents",
        ["household_id", "type_id", sa.text("coalesce(person_id, 0)")],
        unique=True,
        sqlite_where=sa.text("replaced_at IS NULL"),
        postgresql_where=sa.text("replaced_at IS NULL"),
    )
    op.execute("DELETE FROM invoice_lines WHERE kind = 'balance'")
    with op.batch_alter_table('invoice_lines', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_invoice_lines_kind'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_invoice_lines_kind'),
            "kind IN ('booked', 'late_cancel', 'walk_in', 'credit')",
        )

    with op.batch_alter_table('billed_days', schema=None) as batch_op:
        batch_op.drop_index('uq_billed_days_live_booking', sqlite_where=sa.text('credited_by_line_id IS NULL'), postgresql_where=sa.text('credited_by_line_id IS NULL'))
        batch_op.drop_index(batch_op.f('ix_billed_days_invoice_line_id'))
        batch_op.drop_index(batch_op.f('ix_billed_days_household_id'))
        batch_op.drop_index(batch_op.f('ix_billed_days_credited_by_line_id'))

    op.drop_table('billed_days')
