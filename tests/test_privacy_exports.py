"""« Télécharger mes données »: the archive a family asks for, built by the worker (at once
in tests), e-mailed as a link to the page, downloaded by the household only, expired."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from citoyens.core.models import AuditEvent, MailMessage
from citoyens.database import utcnow
from citoyens.documents.storage import get_storage
from citoyens.extensions import db
from citoyens.privacy import exports
from citoyens.privacy.models import DataExport
from citoyens.retention import plan, purge
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import post
from tests.documents_factories import children_of, make_type
from tests.factories import make_user
from tests.privacy_factories import logged_in, set_values, stored_document

IBAN = "FR7630006000011234567890189"
PAGE = "/mon-compte/mes-donnees"


@pytest.fixture(autouse=True)
def upload_folder(app, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(tmp_path / "uploads"))
    monkeypatch.setitem(app.config, "UPLOAD_STORAGE", "filesystem")


def ready_export(app, client) -> DataExport:
    response = post(client, f"{PAGE}/archive")
    assert response.status_code == 303
    with app.app_context():
        export = db.session.scalar(select(DataExport).order_by(DataExport.id.desc()).limit(1))
        db.session.expunge(export)
    assert export.status == "ready", export.error
    return export


def members(archive: zipfile.ZipFile) -> dict[str, bytes]:
    return {name: archive.read(name) for name in archive.namelist()}


def test_a_parent_downloads_an_archive_of_all_the_households_data(app, parent):
    child_id = children_of(app, parent.household_id)[0]
    type_id = make_type(app, label="Attestation d'assurance")
    stored_document(
        app,
        household_id=parent.household_id,
        type_id=type_id,
        person_id=child_id,
        content=b"%PDF-1.4 the family's own file",
    )
    make_invoice(app, parent.household_id, lines=[("Repas du midi", 350, 2)])
    make_mandate(app, parent.household_id)
    client = logged_in(app, parent)

    export = ready_export(app, client)
    page = client.get(PAGE).get_data(as_text=True)
    assert "Votre archive est prête" in page and "expire le" in page
    link = f"{PAGE}/archive/{export.id}"
    assert link in page

    response = client.get(link)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    files = members(archive)
    assert {"donnees.json", "LISEZMOI.txt"} <= set(files)
    data = json.loads(files["donnees.json"].decode("utf-8"))
    for section in (
        "foyer",
        "personnes",
        "comptes",
        "consentements",
        "documents",
        "inscriptions",
        "demandes",
        "reservations",
        "factures",
        "paiements",
        "mandats_de_prelevement",
        "avoirs_et_credits",
        "courriels",
    ):
        assert section in data, section
    assert data["foyer"]["numero"] == parent.household_id
    assert len(data["personnes"]) == 3  # the adult and two children
    assert data["comptes"][0]["email"] == parent.email
    assert data["factures"][0]["lignes"][0]["libelle"] == "Repas du midi"
    [document] = data["documents"]
    assert document["type"] == "Attestation d'assurance"
    assert files[document["fichier_dans_l_archive"]] == b"%PDF-1.4 the family's own file"
    assert document["fichier_dans_l_archive"].startswith("documents/Attestation d'assurance - ")
    # Never a password hash, a session token or the IBAN in clear.
    everything = b"".join(files.values())
    assert IBAN.encode() not in everything
    assert b"argon2" not in everything and b"session_token" not in everything
    assert data["mandats_de_prelevement"][0]["iban_masque"].endswith("189")
    assert "mandats_de_prelevement" in files["LISEZMOI.txt"].decode("utf-8")

    with app.app_context():
        assert db.session.get(DataExport, export.id).downloaded_at is not None
        assert db.session.scalar(
            select(func.count(AuditEvent.id)).where(
                AuditEvent.action == "privacy.export_downloaded",
                AuditEvent.target == f"data_export:{export.id}",
            )
        )


def test_the_ready_email_links_to_the_page_never_to_the_file(app, parent):
    client = logged_in(app, parent)
    export = ready_export(app, client)
    with app.app_context():
        message = db.session.scalar(
            select(MailMessage).where(MailMessage.kind == "data-export-ready")
        )
        assert message.recipient == parent.email
        assert PAGE in message.body_text
        assert "/archive" not in message.body_text and export.storage_key not in message.body_text


def test_the_archive_is_in_the_upload_storage_under_a_random_key(app, parent, tmp_path):
    client = logged_in(app, parent)
    export = ready_export(app, client)
    assert (tmp_path / "uploads" / export.storage_key).is_file()
    assert export.size == (tmp_path / "uploads" / export.storage_key).stat().st_size
    assert export.expires_at - export.ready_at == timedelta(days=7)


def test_another_household_gets_a_404_and_staff_a_403(app, parent, staff):
    export = ready_export(app, logged_in(app, parent))
    other = logged_in(app, make_user(app, role="parent"))
    assert other.get(f"{PAGE}/archive/{export.id}").status_code == 404
    agent = logged_in(app, staff)
    assert agent.get(PAGE).status_code == 403
    assert agent.get(f"{PAGE}/archive/{export.id}").status_code == 403
    anonymous = app.test_client()
    assert anonymous.get(f"{PAGE}/archive/{export.id}").status_code in (302, 303)


def test_one_archive_in_preparation_per_household_is_database_enforced(app, parent):
    with app.app_context():
        db.session.add(DataExport(household_id=parent.household_id, status="pending"))
        db.session.flush()
        db.session.add(DataExport(household_id=parent.household_id, status="pending"))
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_asking_again_while_one_is_pending_builds_nothing_more(app, parent, monkeypatch):
    monkeypatch.setattr("citoyens.privacy.tasks.build_export_task", lambda export_id: None)
    with app.test_request_context():
        first = exports.request_export(parent.household_id, None)
        second = exports.request_export(parent.household_id, None)
        assert first[1] is True and second == (first[0], False)
        assert db.session.scalar(select(func.count(DataExport.id))) == 1


def test_the_archive_request_needs_csrf_and_is_rate_limited(app, parent):
    client = logged_in(app, parent)
    assert client.post(f"{PAGE}/archive").status_code == 400
    statuses = [post(client, f"{PAGE}/archive").status_code for _ in range(6)]
    assert statuses[:5] == [303] * 5 and statuses[5] == 429


def test_an_expired_archive_is_refused_then_deleted_by_the_purge(app, parent, tmp_path):
    client = logged_in(app, parent)
    export = ready_export(app, client)
    past = utcnow() - timedelta(seconds=1)
    set_values(app, DataExport, export.id, expires_at=past)
    assert client.get(f"{PAGE}/archive/{export.id}").status_code == 404
    assert "Votre archive est prête" not in client.get(PAGE).get_data(as_text=True)
    with app.app_context():
        assert plan()["exports"] == 1
        assert purge()["exports"] == 1
        row = db.session.get(DataExport, export.id)
        assert (row.status, row.storage_key) == ("expired", None)
        assert not get_storage().exists(export.storage_key)


def test_an_archive_still_valid_is_kept_by_the_purge(app, parent):
    export = ready_export(app, logged_in(app, parent))
    set_values(app, DataExport, export.id, expires_at=utcnow() + timedelta(minutes=1))
    with app.app_context():
        assert purge()["exports"] == 0
        assert get_storage().exists(export.storage_key)
