"""IBAN encrypted at rest

Revision ID: 6d3252421491
Revises: bf1697a513bd
Create Date: 2026-12-03 10:31:33.332105

"""
from alembic import op
import sqlalchemy as sa

import citoyens.crypto


# revision identifiers, used by Alembic.
revision = '6d3252421491'
down_revision = 'bf1697a513bd'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('iban_masked', sa.String(length=40), nullable=True))
        batch_op.alter_column('iban',
               existing_type=sa.VARCHAR(length=34),
               type_=sa.Text(),
               existing_nullable=False)
    # The IBANs signed so far are encrypted with DATA_ENCRYPTION_KEYS (the development key
    # outside production): without a key, production stops here with nothing changed.
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM mandates")).scalar():
        citoyens.crypto.encrypt_existing_ibans(conn)
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.alter_column('iban_masked', existing_type=sa.String(length=40), nullable=False)


def downgrade():
    conn = op.get_bind()
    for row_id, token in conn.execute(sa.text("SELECT id, iban FROM mandates")).all():
        conn.execute(
            sa.text("UPDATE mandates SET iban = :iban WHERE id = :id"),
            {"iban": citoyens.crypto.decrypt(token), "id": row_id},
        )
    with op.batch_alter_table('mandates', schema=None) as batch_op:
        batch_op.alter_column('iban',
               existing_type=sa.Text(),
               type_=sa.VARCHAR(length=34),
               existing_nullable=False)
        batch_op.drop_column('iban_masked')
