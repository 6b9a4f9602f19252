"""grouped document reviews and notices

One "documents to check" request per household (documents sent outside an enrolment) and
one per enrolment, the documents pointing at the request they are reviewed in; staff
decisions told to the family grouped (document_notices).

Data: each document reviewed through a one-document request points at it; open reviews of
a document replaced or already decided are cancelled; a household's other open reviews
are merged into its oldest one (their documents move, they are cancelled with why).

Revision ID: d0c5a1e7f316
Revises: 5c0a9e7d21f4
Create Date: 2026-12-03 18:40:00

"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d0c5a1e7f316"
down_revision = "5c0a9e7d21f4"
branch_labels = None
depends_on = None

OPEN = ("sent", "in_review")
OPEN_REVIEW = "kind = 'document_review' AND status IN ('sent', 'in_review')"

requests = sa.table(
    "requests",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("title", sa.String),
    sa.column("household_id", sa.Integer),
    sa.column("document_id", sa.Integer),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("closed_at", sa.DateTime(timezone=True)),
)
events = sa.table(
    "request_events",
    sa.column("request_id", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("actor_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("from_status", sa.String),
    sa.column("to_status", sa.String),
    sa.column("body", sa.Text),
    sa.column("internal", sa.Boolean),
)
documents = sa.table(
    "documents",
    sa.column("id", sa.Integer),
    sa.column("status", sa.String),
    sa.column("replaced_at", sa.DateTime(timezone=True)),
    sa.column("review_request_id", sa.Integer),
)


def upgrade():
    op.create_table(
        "document_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "decision IN ('accepted', 'refused')", name=op.f("ck_document_notices_decision")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_notices_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_document_notices_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_notices")),
        sa.UniqueConstraint("document_id", name=op.f("uq_document_notices_document_id")),
    )
    with op.batch_alter_table("document_notices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_document_notices_pending", ["household_id", "sent_at"], unique=False
        )

    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("for_request_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_requests_for_request_id"), ["for_request_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_requests_for_request_id_requests"),
            "requests",
            ["for_request_id"],
            ["id"],
            ondelete="SET NULL",
        )

    # The expression index is dropped before the table is rebuilt (SQLite) and made again.
    op.drop_index("uq_documents_one_current", table_name="documents")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_request_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_documents_review_request_id"), ["review_request_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_documents_review_request_id_requests"),
            "requests",
            ["review_request_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_index(
        "uq_documents_one_current",
        "documents",
        [
            "household_id",
            "type_id",
            sa.text("coalesce(person_id, 0)"),
            sa.text("coalesce(activity_day_id, 0)"),
        ],
        unique=True,
        sqlite_where=sa.text("replaced_at IS NULL"),
        postgresql_where=sa.text("replaced_at IS NULL"),
    )

    _group_open_reviews(op.get_bind())

    op.create_index(
        "uq_requests_open_document_review",
        "requests",
        ["household_id", sa.text("coalesce(for_request_id, 0)")],
        unique=True,
        sqlite_where=sa.text(OPEN_REVIEW),
        postgresql_where=sa.text(OPEN_REVIEW),
    )


def _cancel(conn, request_id: int, from_status: str, body: str, now: datetime) -> None:
    conn.execute(
        requests.update()
        .where(requests.c.id == request_id, requests.c.status == from_status)
        .values(status="cancelled", closed_at=now, updated_at=now)
    )
    conn.execute(
        events.insert().values(
            request_id=request_id,
            created_at=now,
            actor_id=None,
            kind="status",
            from_status=from_status,
            to_status="cancelled",
            body=body,
            internal=False,
        )
    )


def _group_open_reviews(conn) -> None:
    """Point documents at their review; cancel orphan reviews; merge a household's others."""
    now = datetime.now(UTC)
    reviews = conn.execute(
        sa.select(
            requests.c.id,
            requests.c.status,
            requests.c.household_id,
            requests.c.document_id,
            documents.c.status,
            documents.c.replaced_at,
        )
        .select_from(requests.outerjoin(documents, documents.c.id == requests.c.document_id))
        .where(requests.c.kind == "document_review")
        .order_by(requests.c.id)
    ).all()
    for request_id, _status, _household, document_id, _doc_status, _replaced in reviews:
        if document_id is not None:
            conn.execute(
                documents.update()
                .where(documents.c.id == document_id)
                .values(review_request_id=request_id)
            )
    keepers: dict[int, int] = {}
    for request_id, status, household_id, document_id, doc_status, replaced in reviews:
        if status not in OPEN:
            continue
        if document_id is None or doc_status != "pending" or replaced is not None:
            _cancel(
                conn,
                request_id,
                status,
                "Plus rien à vérifier dans cette demande : le document a été remplacé "
                "ou déjà vérifié.",
                now,
            )
            continue
        keeper = keepers.setdefault(household_id, request_id)
        if keeper == request_id:
            continue
        conn.execute(
            documents.update()
            .where(documents.c.review_request_id == request_id)
            .values(review_request_id=keeper)
        )
        _cancel(
            conn,
            request_id,
            status,
            f"Regroupée avec la demande n° {keeper} : les documents du foyer y sont "
            "vérifiés ensemble.",
            now,
        )
        conn.execute(
            requests.update()
            .where(requests.c.id == keeper)
            .values(title="Documents à vérifier", document_id=None, updated_at=now)
        )


def downgrade():
    op.drop_index(
        "uq_requests_open_document_review",
        table_name="requests",
        sqlite_where=sa.text(OPEN_REVIEW),
        postgresql_where=sa.text(OPEN_REVIEW),
    )
    op.drop_index("uq_documents_one_current", table_name="documents")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_documents_review_request_id_requests"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_documents_review_request_id"))
        batch_op.drop_column("review_request_id")
    op.create_index(
        "uq_documents_one_current",
        "documents",
        [
            "household_id",
            "type_id",
            sa.text("coalesce(person_id, 0)"),
            sa.text("coalesce(activity_day_id, 0)"),
        ],
        unique=True,
        sqlite_where=sa.text("replaced_at IS NULL"),
        postgresql_where=sa.text("replaced_at IS NULL"),
    )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_requests_for_request_id_requests"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_requests_for_request_id"))
        batch_op.drop_column("for_request_id")
    with op.batch_alter_table("document_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_document_notices_pending")
    op.drop_table("document_notices")
