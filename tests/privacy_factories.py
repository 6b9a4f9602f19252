"""Factories for the personal-data tests: stored documents, bookings made directly, rows
dated in the past. Each commits in its own app context and returns ids."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import update

from citoyens.documents.models import Document
from citoyens.documents.storage import get_storage, new_key
from citoyens.extensions import db
from tests.conftest import post


def logged_in(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303, "test account could not log in"
    return client


def stored_document(
    app,
    *,
    household_id: int,
    type_id: int,
    person_id: int | None = None,
    content: bytes = b"%PDF-1.4 test",
    original_name: str = "attestation.pdf",
    valid_until: date | None = None,
    replaced_at: datetime | None = None,
    uploaded_at: datetime | None = None,
) -> tuple[int, str]:
    """A document row and its file in the upload storage: (id, storage key)."""
    with app.app_context():
        key = new_key("pdf")
        get_storage().save(key, content)
        document = Document(
            household_id=household_id,
            person_id=person_id,
            type_id=type_id,
            status="accepted",
            storage_key=key,
            original_name=original_name,
            content_type="application/pdf",
            size=len(content),
            sha256="0" * 64,
            valid_until=valid_until,
            replaced_at=replaced_at,
        )
        if uploaded_at is not None:
            document.uploaded_at = uploaded_at
        db.session.add(document)
        db.session.commit()
        return document.id, key


def set_values(app, model, row_id: int, **values) -> None:
    """Write columns directly (dates in the past, statuses) for a test's setting."""
    with app.app_context():
        db.session.execute(update(model).where(model.id == row_id).values(**values))
        db.session.commit()
