"""welcome e-mail of imported families

Revision ID: 714df06bd571
Revises: b7ce49a1b0b3
Create Date: 2026-12-03 11:09:00.919660

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '714df06bd571'
down_revision = 'b7ce49a1b0b3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('welcomed_at', sa.DateTime(timezone=True), nullable=True))



def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('welcomed_at')

