"""commune settings and audit action index

Revision ID: 84009fb2f792
Revises: 714df06bd571
Create Date: 2026-12-03 11:14:00.655949

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '84009fb2f792'
down_revision = '714df06bd571'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_action', ['action'], unique=False)

    with op.batch_alter_table('communes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('primary_color', sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column('logo_key', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('mail_sender_name', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('payfip_numcli', sa.String(length=6), nullable=True))
        batch_op.add_column(sa.Column('payfip_saisie', sa.String(length=1), nullable=True))
        batch_op.add_column(sa.Column('sepa_creditor_name', sa.String(length=70), nullable=True))
        batch_op.add_column(sa.Column('sepa_creditor_iban', sa.String(length=34), nullable=True))
        batch_op.add_column(sa.Column('sepa_creditor_bic', sa.String(length=11), nullable=True))
        batch_op.add_column(sa.Column('sepa_creditor_id', sa.String(length=35), nullable=True))



def downgrade():
    with op.batch_alter_table('communes', schema=None) as batch_op:
        batch_op.drop_column('sepa_creditor_id')
        batch_op.drop_column('sepa_creditor_bic')
        batch_op.drop_column('sepa_creditor_iban')
        batch_op.drop_column('sepa_creditor_name')
        batch_op.drop_column('payfip_saisie')
        batch_op.drop_column('payfip_numcli')
        batch_op.drop_column('mail_sender_name')
        batch_op.drop_column('logo_key')
        batch_op.drop_column('primary_color')
        batch_op.drop_column('updated_at')

    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_action')

