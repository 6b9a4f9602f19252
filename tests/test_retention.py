"""Retention purges: each category with rows just inside and just outside its limit; the dry
run writes nothing; the real run deletes exactly what the dry run counted, in batches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select

from citoyens import retention
from citoyens.accounts.models import User
from citoyens.billing.models import Invoice
from citoyens.core.models import AuditEvent, JobRun, MailMessage
from citoyens.database import utcnow
from citoyens.documents.models import Document
from citoyens.documents.rules import add_months, today_in_paris
from citoyens.documents.storage import get_storage
from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Invitation, Person
from citoyens.requests.models import Request
from tests.billing_factories import make_invoice
from tests.conftest import counted_queries
from tests.documents_factories import children_of, make_type
from tests.factories import make_user
from tests.households_factories import share_person
from tests.privacy_factories import set_values, stored_document

SECOND = timedelta(seconds=1)
TABLES = (
    Household,
    Person,
    HouseholdMember,
    User,
    Document,
    Invoice,
    Request,
    Invitation,
    AuditEvent,
    MailMessage,
    JobRun,
)


@pytest.fixture(autouse=True)
def upload_folder(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path / "uploads"))
    monkeypatch.setitem(app.config, "UPLOAD_STORAGE", "filesystem")


def table_counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
            for model in TABLES
        }


def aged_household(app, months: int, *, login_months: int | None = None, children: int = 1):
    """A family created `months` ago whose account last logged in `login_months` ago."""
    now = utcnow()
    account = make_user(app, role="parent", children=children)
    created = retention.months_before(now, months)
    set_values(app, Household, account.household_id, created_at=created)
    login = retention.months_before(now, login_months if login_months is not None else months)
    set_values(app, User, account.id, created_at=created, last_login_at=login)
    return account


def add_rows(app, *rows) -> list[int]:
    with app.app_context():
        db.session.add_all(rows)
        db.session.commit()
        return [row.id for row in rows]


def exists(app, model, row_id: int) -> bool:
    with app.app_context():
        return db.session.get(model, row_id) is not None


def test_families_inactive_three_years_or_closed_lose_their_personal_data(app):
    now = utcnow()
    type_id = make_type(app)
    # Inactive 36 months and a second: purged; its invoice keeps an anonymous shell.
    billed = aged_household(app, 37, login_months=36)
    set_values(app, User, billed.id, last_login_at=retention.months_before(now, 36) - SECOND)
    set_values(app, Household, billed.household_id, address_line="1 rue X", city="Chalonnes")
    invoice_id = make_invoice(app, billed.household_id)
    set_values(app, Invoice, invoice_id, issued_at=retention.months_before(now, 37))
    billed_document, billed_key = stored_document(
        app,
        household_id=billed.household_id,
        type_id=type_id,
        uploaded_at=retention.months_before(now, 37),
    )
    # Inactive, nothing billed: deleted outright.
    unbilled = aged_household(app, 40)
    # Logged in 36 months less a minute ago: kept.
    recent_login = aged_household(app, 40, login_months=36)
    set_values(
        app,
        User,
        recent_login.id,
        last_login_at=retention.months_before(now, 36) + timedelta(minutes=1),
    )
    # A document uploaded 35 months ago: kept.
    recent_upload = aged_household(app, 40)
    stored_document(
        app,
        household_id=recent_upload.household_id,
        type_id=type_id,
        uploaded_at=retention.months_before(now, 35),
    )
    # A child shared with a household that stays: the child stays.
    shared_child = children_of(app, unbilled.household_id)[0]
    share_person(app, shared_child, recent_login.household_id)
    # Closed 31 days ago: purged; closed 29 days ago: kept.
    closed_long_ago = make_user(app, role="parent")
    set_values(app, Household, closed_long_ago.household_id, closed_at=now - timedelta(days=31))
    closed_lately = make_user(app, role="parent")
    set_values(app, Household, closed_lately.household_id, closed_at=now - timedelta(days=29))

    with app.app_context():
        before = table_counts(app)
        assert retention.plan(now)["households"] == 3
        assert table_counts(app) == before  # the dry run wrote nothing
        assert retention.purge(now)["households"] == 3
        assert retention.plan(now)["households"] == 0

    assert not exists(app, Household, unbilled.household_id)
    assert not exists(app, Household, closed_long_ago.household_id)
    assert exists(app, Household, recent_login.household_id)
    assert exists(app, Household, recent_upload.household_id)
    assert exists(app, Household, closed_lately.household_id)
    assert exists(app, Person, shared_child)
    for account in (billed, unbilled, closed_long_ago):
        assert not exists(app, User, account.id)
    with app.app_context():
        shell = db.session.get(Household, billed.household_id)
        assert shell.purged_at is not None
        assert (shell.address_line, shell.city) == (None, None)
        assert db.session.get(Invoice, invoice_id).status == "issued"  # accounting record kept
        assert not db.session.scalar(
            select(func.count(HouseholdMember.id)).where(
                HouseholdMember.household_id == billed.household_id
            )
        )
        assert db.session.get(Document, billed_document) is None
        assert not get_storage().exists(billed_key)


def test_documents_past_retention_go_with_their_file(app, parent):
    now = utcnow()
    type_id = make_type(app)
    other_type = make_type(app)
    limit = add_months(today_in_paris(now), -12)
    old = stored_document(
        app,
        household_id=parent.household_id,
        type_id=type_id,
        valid_until=limit - timedelta(days=1),
    )
    still = stored_document(
        app, household_id=parent.household_id, type_id=other_type, valid_until=limit
    )
    replaced_old = stored_document(
        app,
        household_id=parent.household_id,
        type_id=type_id,
        replaced_at=retention.months_before(now, 12) - SECOND,
    )
    replaced_lately = stored_document(
        app,
        household_id=parent.household_id,
        type_id=type_id,
        replaced_at=retention.months_before(now, 12) + timedelta(minutes=1),
    )
    with app.app_context():
        before = table_counts(app)
        assert retention.plan(now)["documents"] == 2
        assert table_counts(app) == before
        assert retention.purge(now)["documents"] == 2
        storage = get_storage()
        for document_id, key in (old, replaced_old):
            assert db.session.get(Document, document_id) is None
            assert not storage.exists(key)
        for document_id, key in (still, replaced_lately):
            assert db.session.get(Document, document_id) is not None
            assert storage.exists(key)


def test_logs_mail_records_invitations_and_finished_jobs_past_their_limits(app, parent):
    now = utcnow()
    year_ago = retention.months_before(now, 12)
    audit_old, audit_kept = add_rows(
        app,
        AuditEvent(action="test", created_at=year_ago - SECOND),
        AuditEvent(action="test", created_at=year_ago + timedelta(minutes=1)),
    )

    def mail(status: str, created_at):
        return MailMessage(
            recipient="a@example.org",
            subject="s",
            kind="k",
            template="t",
            status=status,
            created_at=created_at,
        )

    mail_old, mail_waiting, mail_kept = add_rows(
        app,
        mail("sent", year_ago - SECOND),
        mail("pending", year_ago - SECOND),
        mail("sent", year_ago + timedelta(minutes=1)),
    )
    week = timedelta(days=7)
    invitation_old, invitation_kept = add_rows(
        app,
        Invitation(
            household_id=parent.household_id, email="x@example.org", created_at=now - week - SECOND
        ),
        Invitation(
            household_id=parent.household_id,
            email="y@example.org",
            created_at=now - week + timedelta(minutes=1),
        ),
    )
    month = timedelta(days=30)
    job_old, job_kept, job_running = add_rows(
        app,
        JobRun(kind="k", key="1", status="done", finished_at=now - month - SECOND),
        JobRun(kind="k", key="2", status="failed", finished_at=now - month + timedelta(minutes=1)),
        JobRun(kind="k", key="3", status="running", created_at=now - 2 * month),
    )
    with app.app_context():
        before = table_counts(app)
        counts = retention.plan(now)
        assert table_counts(app) == before
        expected = {"audit": 1, "mails": 1, "invitations": 1, "job_runs": 1}
        assert {name: counts[name] for name in expected} == expected
        done = retention.purge(now)
        assert {name: done[name] for name in expected} == expected
    for model, gone, kept in (
        (AuditEvent, [audit_old], [audit_kept]),
        (MailMessage, [mail_old], [mail_waiting, mail_kept]),
        (Invitation, [invitation_old], [invitation_kept]),
        (JobRun, [job_old], [job_kept, job_running]),
    ):
        assert not any(exists(app, model, row_id) for row_id in gone), model
        assert all(exists(app, model, row_id) for row_id in kept), model


def test_the_purge_deletes_in_batches_each_committed_on_its_own(app, monkeypatch):
    now = utcnow()
    with app.app_context():
        db.session.execute(delete(AuditEvent))
        db.session.commit()
    add_rows(
        app, *(AuditEvent(action="old", created_at=now - timedelta(days=400)) for _ in range(5))
    )
    monkeypatch.setattr(retention, "BATCH_SIZE", 2)
    monkeypatch.setattr(
        retention,
        "CATEGORIES",
        tuple(
            retention.Category(c.name, c.label, c.rows, c.remove, 2) if c.name == "audit" else c
            for c in retention.CATEGORIES
        ),
    )
    with counted_queries(app) as statements, app.app_context():
        assert retention.purge(now)["audit"] == 5
    deletes = [s for s in statements if s.lstrip().upper().startswith("DELETE FROM AUDIT_EVENTS")]
    assert len(deletes) == 3  # 2 + 2 + 1


def test_flask_purge_dry_run_prints_counts_and_deletes_nothing(app, runner):
    add_rows(app, AuditEvent(action="old", created_at=utcnow() - timedelta(days=400)))
    result = runner.invoke(args=["purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "Simulation" in result.output
    assert "(audit) : 1 à supprimer" in result.output
    with app.app_context():
        assert db.session.scalar(select(func.count(AuditEvent.id))) == 1
    result = runner.invoke(args=["purge"])
    assert "(audit) : 1 supprimés" in result.output
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
        details = db.session.scalar(select(AuditEvent.details))
    assert actions == ["retention.purge"] and details == "audit=1"  # what went, not who


def test_the_daily_task_runs_the_purge(app):
    from citoyens.privacy.tasks import purge_daily

    add_rows(app, AuditEvent(action="old", created_at=utcnow() - timedelta(days=400)))
    with app.app_context():
        purge_daily()
        assert db.session.scalars(select(AuditEvent.action)).all() == ["retention.purge"]
