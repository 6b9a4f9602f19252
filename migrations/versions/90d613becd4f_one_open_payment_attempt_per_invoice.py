"""one open payment attempt per invoice

Revision ID: 90d613becd4f
Revises: 2bb05b41d833
Create Date: 2026-12-03 10:03:02.608273

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '90d613becd4f'
down_revision = '2bb05b41d833'
branch_labels = None
depends_on = None


STATUSES = "'pending', 'paid', 'refused', 'cancelled'"


def upgrade():
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_payment_attempts_status'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_payment_attempts_status'), f"status IN ({STATUSES}, 'expired')"
        )
        batch_op.add_column(sa.Column('bank_url', sa.String(length=500), nullable=True))
    # At most one open attempt per invoice: the older open ones expire (their bank is
    # asked again by `flask payments check-pending`, which covers expired attempts too).
    op.execute(
        "UPDATE payment_attempts SET status = 'expired' WHERE status = 'pending' AND id NOT IN"
        " (SELECT max(id) FROM payment_attempts WHERE status = 'pending' GROUP BY invoice_id)"
    )
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.create_index('uq_payment_attempts_pending_invoice', ['invoice_id'], unique=True, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))


def downgrade():
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_index('uq_payment_attempts_pending_invoice', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_column('bank_url')
        batch_op.drop_constraint(batch_op.f('ck_payment_attempts_status'), type_='check')
    op.execute("UPDATE payment_attempts SET status = 'cancelled' WHERE status = 'expired'")
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.create_check_constraint(
            batch_op.f('ck_payment_attempts_status'), f"status IN ({STATUSES})"
        )
