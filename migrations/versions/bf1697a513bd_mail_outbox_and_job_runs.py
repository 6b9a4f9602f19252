"""mail outbox and job runs

Revision ID: bf1697a513bd
Revises: 90d613becd4f
Create Date: 2026-12-03 10:26:03.679937

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bf1697a513bd'
down_revision = '90d613becd4f'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('job_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('total', sa.Integer(), nullable=True),
    sa.Column('summary', sa.String(length=1000), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f('ck_job_runs_status')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_job_runs_actor_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_runs'))
    )
    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.create_index('ix_job_runs_kind_key_created_at', ['kind', 'key', 'created_at'], unique=False)
        batch_op.create_index('uq_job_runs_active', ['kind', 'key'], unique=True, sqlite_where=sa.text("status IN ('queued', 'running')"), postgresql_where=sa.text("status IN ('queued', 'running')"))

    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_to', sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column('message_id', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_mail_messages_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)
        # "sending": a worker has claimed the message (two workers never send it twice).
        batch_op.drop_constraint(batch_op.f('ck_mail_messages_status'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_mail_messages_status'),
            "status IN ('pending', 'sending', 'sent', 'printed', 'failed')",
        )



def downgrade():
    op.execute("UPDATE mail_messages SET status = 'pending' WHERE status = 'sending'")
    with op.batch_alter_table('mail_messages', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_mail_messages_status'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_mail_messages_status'), "status IN ('pending', 'sent', 'printed', 'failed')"
        )
        batch_op.drop_index('ix_mail_messages_status_next_attempt_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('message_id')
        batch_op.drop_column('reply_to')

    with op.batch_alter_table('job_runs', schema=None) as batch_op:
        batch_op.drop_index('uq_job_runs_active', sqlite_where=sa.text("status IN ('queued', 'running')"), postgresql_where=sa.text("status IN ('queued', 'running')"))
        batch_op.drop_index('ix_job_runs_kind_key_created_at')

    op.drop_table('job_runs')
