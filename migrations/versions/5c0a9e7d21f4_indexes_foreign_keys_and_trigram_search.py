"""indexes: every foreign key, trigram search on PostgreSQL

Revision ID: 5c0a9e7d21f4
Revises: c7d2e915a3b0
Create Date: 2026-12-03 18:20:00

Issue 15 ("Scale"): a foreign key without an index makes every delete of its parent
row, and every join from the parent, scan the child table (the call list read every
enrolment through `enrolment_activities.activity_id`); tests/test_schema_indexes.py
keeps the rule. On PostgreSQL, staff search gets trigram GIN indexes (pg_trgm) on the
lowered columns it searches with `LIKE '%…%'`; SQLite has no such index and scans.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "5c0a9e7d21f4"
down_revision = "c7d2e915a3b0"
branch_labels = None
depends_on = None

# (index, table, column): the foreign keys no index led with.
FOREIGN_KEY_INDEXES = [
    ("ix_enrolment_windows_school_year_id", "enrolment_windows", "school_year_id"),
    ("ix_service_documents_document_type_id", "service_documents", "document_type_id"),
    ("ix_closures_activity_id", "closures", "activity_id"),
    ("ix_closures_created_by_id", "closures", "created_by_id"),
    ("ix_counter_receipts_recorded_by_id", "counter_receipts", "recorded_by_id"),
    ("ix_counter_receipts_reversed_by_id", "counter_receipts", "reversed_by_id"),
    ("ix_data_exports_requested_by_id", "data_exports", "requested_by_id"),
    ("ix_direct_debit_batches_created_by_id", "direct_debit_batches", "created_by_id"),
    ("ix_household_changes_actor_id", "household_changes", "actor_id"),
    ("ix_household_changes_person_id", "household_changes", "person_id"),
    ("ix_invitations_invited_by_id", "invitations", "invited_by_id"),
    ("ix_invitations_person_id", "invitations", "person_id"),
    ("ix_job_runs_actor_id", "job_runs", "actor_id"),
    ("ix_mandates_signed_by_id", "mandates", "signed_by_id"),
    ("ix_prices_band_id", "prices", "band_id"),
    ("ix_documents_type_id", "documents", "type_id"),
    ("ix_documents_reviewed_by_id", "documents", "reviewed_by_id"),
    ("ix_documents_uploaded_by_id", "documents", "uploaded_by_id"),
    ("ix_invoices_credit_for_id", "invoices", "credit_for_id"),
    ("ix_invoices_mandate_id", "invoices", "mandate_id"),
    ("ix_messages_author_id", "messages", "author_id"),
    ("ix_bookings_certificate_id", "bookings", "certificate_id"),
    ("ix_bookings_exclusion_set_id", "bookings", "exclusion_set_id"),
    ("ix_direct_debit_items_invoice_id", "direct_debit_items", "invoice_id"),
    ("ix_direct_debit_items_mandate_id", "direct_debit_items", "mandate_id"),
    ("ix_invoice_lines_activity_id", "invoice_lines", "activity_id"),
    ("ix_invoice_lines_child_id", "invoice_lines", "child_id"),
    ("ix_payment_attempts_household_id", "payment_attempts", "household_id"),
    ("ix_payment_attempts_created_by_id", "payment_attempts", "created_by_id"),
    ("ix_payments_household_id", "payments", "household_id"),
    ("ix_requests_document_id", "requests", "document_id"),
    ("ix_requests_created_by_id", "requests", "created_by_id"),
    ("ix_booking_changes_actor_id", "booking_changes", "actor_id"),
    ("ix_enrolments_created_by_id", "enrolments", "created_by_id"),
    ("ix_enrolments_decided_by_id", "enrolments", "decided_by_id"),
    ("ix_enrolments_school_year_id", "enrolments", "school_year_id"),
    ("ix_household_credits_created_by_id", "household_credits", "created_by_id"),
    ("ix_request_events_actor_id", "request_events", "actor_id"),
    ("ix_enrolment_activities_activity_id", "enrolment_activities", "activity_id"),
    ("ix_enrolment_change_requests_school_id", "enrolment_change_requests", "school_id"),
]

# (table, column) searched by households.directory.search_households.
TRIGRAM = [
    ("households", "external_ref"),
    ("households", "city"),
    ("people", "first_name"),
    ("people", "last_name"),
    ("people", "email"),
    ("users", "email"),
]


def upgrade():
    for name, table, column in FOREIGN_KEY_INDEXES:
        op.create_index(name, table, [column], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, column in TRIGRAM:
            op.execute(
                f"CREATE INDEX ix_{table}_{column}_trgm ON {table} "
                f"USING gin (lower({column}) gin_trgm_ops)"
            )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table, column in TRIGRAM:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
        # The extension stays: other databases of the server, or the DBA, may use it.
    for name, table, _column in reversed(FOREIGN_KEY_INDEXES):
        op.drop_index(name, table_name=table)
