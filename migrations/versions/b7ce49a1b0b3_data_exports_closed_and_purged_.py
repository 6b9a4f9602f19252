"""data exports, closed and purged households

Revision ID: b7ce49a1b0b3
Revises: 6d3252421491
Create Date: 2026-12-03 10:47:17.150113

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7ce49a1b0b3'
down_revision = '6d3252421491'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('data_exports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('storage_key', sa.String(length=80), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('downloaded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'ready', 'failed', 'expired')", name=op.f('ck_data_exports_status')),
    sa.ForeignKeyConstraint(['household_id'], ['households.id'], name=op.f('fk_data_exports_household_id_households'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_data_exports_requested_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_exports')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_data_exports_storage_key'))
    )
    with op.batch_alter_table('data_exports', schema=None) as batch_op:
        batch_op.create_index('ix_data_exports_household_created_at', ['household_id', 'created_at'], unique=False)
        batch_op.create_index('ix_data_exports_status_expires_at', ['status', 'expires_at'], unique=False)
        batch_op.create_index('uq_data_exports_one_pending', ['household_id'], unique=True, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))

    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('uq_requests_open_closure', ['household_id'], unique=True, sqlite_where=sa.text("kind = 'account_closure' AND status IN ('sent', 'in_review')"), postgresql_where=sa.text("kind = 'account_closure' AND status IN ('sent', 'in_review')"))



def downgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('uq_requests_open_closure', sqlite_where=sa.text("kind = 'account_closure' AND status IN ('sent', 'in_review')"), postgresql_where=sa.text("kind = 'account_closure' AND status IN ('sent', 'in_review')"))

    with op.batch_alter_table('households', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
        batch_op.drop_column('closed_at')

    with op.batch_alter_table('data_exports', schema=None) as batch_op:
        batch_op.drop_index('uq_data_exports_one_pending', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index('ix_data_exports_status_expires_at')
        batch_op.drop_index('ix_data_exports_household_created_at')

    op.drop_table('data_exports')
