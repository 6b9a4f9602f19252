"""enrolments during the year

Revision ID: 0f1257fb551a
Revises: 84009fb2f792
Create Date: 2026-12-03 11:16:12.627269

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0f1257fb551a'
down_revision = '84009fb2f792'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('enrolment_change_requests',
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('enrolment_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('add_ids', sa.String(length=200), nullable=True),
    sa.Column('remove_ids', sa.String(length=200), nullable=True),
    sa.Column('school_id', sa.Integer(), nullable=True),
    sa.Column('class_level', sa.String(length=5), nullable=True),
    sa.CheckConstraint("action IN ('end', 'activities', 'school')", name=op.f('ck_enrolment_change_requests_action')),
    sa.ForeignKeyConstraint(['enrolment_id'], ['enrolments.id'], name=op.f('fk_enrolment_change_requests_enrolment_id_enrolments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['request_id'], ['requests.id'], name=op.f('fk_enrolment_change_requests_request_id_requests'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['school_id'], ['schools.id'], name=op.f('fk_enrolment_change_requests_school_id_schools'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('request_id', name=op.f('pk_enrolment_change_requests'))
    )
    with op.batch_alter_table('enrolment_change_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolment_change_requests_enrolment_id'), ['enrolment_id'], unique=False)

    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ends_on', sa.Date(), nullable=True))
        # An accepted enrolment ended during the year keeps its past, bookable up to ends_on.
        batch_op.drop_constraint(batch_op.f('ck_enrolments_status'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_enrolments_status'),
            "status IN ('pending', 'accepted', 'refused', 'waiting_list', 'cancelled', 'ended')",
        )

    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index('uq_requests_open_enrolment_change', ['person_id', 'service_id'], unique=True, sqlite_where=sa.text("kind = 'enrolment_change' AND status IN ('sent', 'in_review')"), postgresql_where=sa.text("kind = 'enrolment_change' AND status IN ('sent', 'in_review')"))



def downgrade():
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index('uq_requests_open_enrolment_change', sqlite_where=sa.text("kind = 'enrolment_change' AND status IN ('sent', 'in_review')"), postgresql_where=sa.text("kind = 'enrolment_change' AND status IN ('sent', 'in_review')"))

    op.execute("UPDATE enrolments SET status = 'cancelled' WHERE status = 'ended'")
    with op.batch_alter_table('enrolments', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_enrolments_status'), type_='check')
        batch_op.create_check_constraint(
            batch_op.f('ck_enrolments_status'),
            "status IN ('pending', 'accepted', 'refused', 'waiting_list', 'cancelled')",
        )
        batch_op.drop_column('ends_on')

    with op.batch_alter_table('enrolment_change_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_enrolment_change_requests_enrolment_id'))

    op.drop_table('enrolment_change_requests')
