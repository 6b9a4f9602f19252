"""calendar periods, exclusion sets, day capacity

Revision ID: 7e31a29ef142
Revises: 4482eafbb552
Create Date: 2026-12-03 10:00:30.415960

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7e31a29ef142'
down_revision = '4482eafbb552'
branch_labels = None
depends_on = None


# Days whose date falls in a zone B school holiday period (the holiday table).
IN_HOLIDAYS = (
    "EXISTS (SELECT 1 FROM holidays h WHERE h.kind = 'school'"
    " AND h.starts_on <= activity_days.day AND h.ends_on >= activity_days.day)"
)
HELD = (
    "(activity_days.booked > 0 OR EXISTS (SELECT 1 FROM bookings b"
    " WHERE b.activity_day_id = activity_days.id))"
)


def upgrade():
    op.create_table('exclusion_sets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['service_id'], ['services.id'], name=op.f('fk_exclusion_sets_service_id_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_exclusion_sets')),
    sa.UniqueConstraint('service_id', 'name', name='uq_exclusion_sets_name')
    )
    with op.batch_alter_table('exclusion_sets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_exclusion_sets_service_id'), ['service_id'], unique=False)

    # Calendar kinds become the periods an activity runs in (DOMAIN.md "Calendar"):
    # the old "leisure_days" opened Wednesdays in term and in holidays for both Goulidons
    # activities; a Wednesday-only one runs in term, the other in the holidays.
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_activities_calendar'), type_='check')
    op.execute("UPDATE activities SET calendar = 'term' WHERE calendar = 'school_days'")
    op.execute("UPDATE activities SET calendar = 'both' WHERE calendar = 'weekdays'")
    op.execute(
        "UPDATE activities SET calendar = CASE WHEN weekdays = '3' THEN 'term' ELSE 'holidays' END"
        " WHERE calendar = 'leisure_days'"
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_check_constraint(
            batch_op.f('ck_activities_calendar'), "calendar IN ('term', 'holidays', 'both')"
        )
        batch_op.add_column(sa.Column('exclusion_set_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_activities_exclusion_set_id'), ['exclusion_set_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_activities_exclusion_set_id_exclusion_sets'), 'exclusion_sets', ['exclusion_set_id'], ['id'], ondelete='SET NULL')

    # A day may hold more children than places after staff lower its capacity: the
    # conditional UPDATE (booked < capacity) keeps refusing new ones.
    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_activity_days_booked'), type_='check')
        batch_op.create_check_constraint(batch_op.f('ck_activity_days_booked'), 'booked >= 0')
        batch_op.add_column(sa.Column('capacity_overridden', sa.Boolean(), server_default=sa.false(), nullable=False))

    # Regenerate the days of the activities whose periods changed: a day outside them is
    # deleted when nobody stands on it, else closed with its bookings kept, so that staff
    # see it under "Jours hors calendrier avec réservations" (never silently dropped).
    for calendar, outside in (("term", IN_HOLIDAYS), ("holidays", f"NOT {IN_HOLIDAYS}")):
        wrong = (
            "activity_days.activity_id IN (SELECT id FROM activities"
            f" WHERE calendar = '{calendar}') AND {outside}"
        )
        op.execute(f"DELETE FROM activity_days WHERE {wrong} AND NOT {HELD}")
        op.execute(
            "UPDATE activity_days SET closed = true, closed_reason = 'Jour de fermeture'"
            f" WHERE {wrong} AND {HELD} AND NOT closed"
        )

    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('day', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('exclusion_set_id', sa.Integer(), nullable=True))
    op.execute(
        "UPDATE bookings SET day = (SELECT d.day FROM activity_days d"
        " WHERE d.id = bookings.activity_day_id)"
    )
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.alter_column('day', existing_type=sa.Date(), nullable=False)
        batch_op.create_index('uq_bookings_child_date_set', ['child_id', 'day', 'exclusion_set_id'], unique=True, sqlite_where=sa.text("exclusion_set_id IS NOT NULL AND status <> 'cancelled'"), postgresql_where=sa.text("exclusion_set_id IS NOT NULL AND status <> 'cancelled'"))
        batch_op.create_foreign_key(batch_op.f('fk_bookings_exclusion_set_id_exclusion_sets'), 'exclusion_sets', ['exclusion_set_id'], ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_bookings_exclusion_set_id_exclusion_sets'), type_='foreignkey')
        batch_op.drop_index('uq_bookings_child_date_set', sqlite_where=sa.text("exclusion_set_id IS NOT NULL AND status <> 'cancelled'"), postgresql_where=sa.text("exclusion_set_id IS NOT NULL AND status <> 'cancelled'"))
        batch_op.drop_column('exclusion_set_id')
        batch_op.drop_column('day')

    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.drop_column('capacity_overridden')
        batch_op.drop_constraint(batch_op.f('ck_activity_days_booked'), type_='check')
    op.execute("UPDATE activity_days SET capacity = booked WHERE booked > capacity")
    with op.batch_alter_table('activity_days', schema=None) as batch_op:
        batch_op.create_check_constraint(
            batch_op.f('ck_activity_days_booked'), 'booked >= 0 AND booked <= capacity'
        )

    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_activities_exclusion_set_id_exclusion_sets'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_activities_exclusion_set_id'))
        batch_op.drop_column('exclusion_set_id')
        batch_op.drop_constraint(batch_op.f('ck_activities_calendar'), type_='check')
    # Back to kinds: a holiday-only activity was a leisure one.
    op.execute("UPDATE activities SET calendar = 'school_days' WHERE calendar = 'term'")
    op.execute("UPDATE activities SET calendar = 'weekdays' WHERE calendar = 'both'")
    op.execute("UPDATE activities SET calendar = 'leisure_days' WHERE calendar = 'holidays'")
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_check_constraint(
            batch_op.f('ck_activities_calendar'),
            "calendar IN ('school_days', 'leisure_days', 'weekdays')",
        )

    with op.batch_alter_table('exclusion_sets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_exclusion_sets_service_id'))

    op.drop_table('exclusion_sets')
