"""batched invoice run: where a run got to, bookings by household and day

Revision ID: c7d2e915a3b0
Revises: b15a0f24ec13
Create Date: 2026-12-03 18:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c7d2e915a3b0'
down_revision = 'b15a0f24ec13'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resume_after', sa.Integer(), nullable=True))
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index('ix_bookings_household_day', ['household_id', 'day'], unique=False)
        batch_op.drop_index('ix_bookings_household')


def downgrade():
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index('ix_bookings_household', ['household_id'], unique=False)
        batch_op.drop_index('ix_bookings_household_day')
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_column('resume_after')
