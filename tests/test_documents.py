"""Documents ("Mes documents"): rules, file checks, storage, the family's pages and staff review.

Every file is made in code (tests/documents_factories.py). Uploads go to a
temporary folder: a refused file must leave no row and no file behind.
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from citoyens.core.models import AuditEvent
from citoyens.documents import rules
from citoyens.documents.models import Document, DocumentType
from citoyens.documents.storage import FilesystemStorage, StorageError, get_storage, new_key
from citoyens.documents.uploads import (
    MAX_FILE_SIZE,
    UploadError,
    check_upload,
    clean_filename,
    content_disposition,
)
from citoyens.extensions import db
from citoyens.requests import operations as request_ops
from citoyens.requests.models import Request
from tests.conftest import TEST_DATABASE_URL, counted_queries, csrf_token, post
from tests.documents_factories import (
    EXE,
    PDF,
    add_child,
    adult_of,
    children_of,
    heic,
    jpeg,
    jpeg_with_gps_and_rotation,
    make_document,
    make_type,
    png,
    png_bomb,
    truncated_jpeg,
)
from tests.factories import make_user
from tests.requests_factories import assign_staff, make_request, make_service

UPLOAD = "/mes-documents/envoyer"
TEST_DATABASE_URL_IS_POSTGRESQL = (TEST_DATABASE_URL or "").startswith("postgres")


# --- Fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def staff(app):
    """The back office account of these tests: an administrator, who sees every family.
    What an agent sees is checked in tests/test_staff_scope.py."""
    return make_user(app, role="admin")


@pytest.fixture(autouse=True)
def upload_folder(app, tmp_path, monkeypatch):
    """Every test stores its files in its own folder (restored afterwards)."""
    folder = tmp_path / "uploads"
    monkeypatch.setitem(app.config, "UPLOAD_FOLDER", str(folder))
    monkeypatch.setitem(app.config, "UPLOAD_STORAGE", "filesystem")
    return folder


def send_notices(app, *, due: bool = True) -> int:
    """What the job queue does a few minutes after the last decision (or now: not yet)."""
    from datetime import timedelta

    from citoyens.database import utcnow
    from citoyens.documents.notices import send_due_notices

    with app.app_context():
        return send_due_notices(now=utcnow() + (timedelta(hours=1) if due else timedelta(0)))


def stored_files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def logged_in(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303, "test account could not log in"
    return client


def send(client, type_id, person_id, data: bytes, filename: str, *, htmx: bool = False):
    """Submit one line's upload form, as the browser (or htmx) would."""
    token = csrf_token(client)
    form = {"type_id": str(type_id), "file": (io.BytesIO(data), filename)}
    if person_id is not None:
        form["person_id"] = str(person_id)
    headers = {}
    if htmx:
        headers = {"HX-Request": "true", "X-CSRFToken": token}
    else:
        form["csrf_token"] = token
    return client.post(UPLOAD, data=form, headers=headers, content_type="multipart/form-data")


def concern(app, staff_id: int, household_id: int) -> int:
    """Make the household one the agent may see: the agent works for a service the
    household filed a request with (any status). Returns the service id."""
    service_id = make_service(app)
    assign_staff(app, staff_id, service_id)
    make_request(app, household_id, service_id=service_id, status="accepted")
    return service_id


def documents_of(app, household_id: int) -> list[Document]:
    with app.app_context():
        docs = db.session.scalars(
            select(Document).where(Document.household_id == household_id).order_by(Document.id)
        ).all()
        db.session.expunge_all()
        return docs


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def audit_actions(app, target: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent.action).where(AuditEvent.target == target).order_by(AuditEvent.id)
            )
        )


class Family:
    """A logged-in parent with two children and three document types to provide."""

    def __init__(self, app, parent):
        self.account = parent
        self.household_id = parent.household_id
        self.children = children_of(app, parent.household_id)
        self.child_type = make_type(
            app, scope="child", label="Assurance", until_school_year_end=True
        )
        self.health_type = make_type(app, scope="child", label="Vaccins", health=True)
        self.household_type = make_type(
            app, scope="household", label="Justificatif de domicile", validity_months=3
        )
        self.client = logged_in(app, parent)


@pytest.fixture
def family(app, parent):
    return Family(app, parent)


# --- Rules: validity and where a family stands ----------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 15), 3, date(2026, 4, 15)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 11, 30), 12, date(2027, 11, 30)),
        (date(2026, 12, 1), 1, date(2027, 1, 1)),
    ],
)
def test_months_are_added_to_the_upload_day(day, months, expected):
    assert rules.add_months(day, months) == expected


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 9, 1), date(2027, 8, 31)),
        (date(2027, 3, 10), date(2027, 8, 31)),
        (date(2027, 8, 31), date(2027, 8, 31)),
        (date(2026, 12, 31), date(2027, 8, 31)),
    ],
)
def test_school_year_ends_on_the_next_31_august(day, expected):
    assert rules.school_year_end(day) == expected


def test_validity_end_follows_the_type():
    day = date(2026, 10, 5)
    assert rules.validity_end(DocumentType(validity_months=12), day) == date(2027, 10, 5)
    assert rules.validity_end(DocumentType(until_school_year_end=True), day) == date(2027, 8, 31)
    assert rules.validity_end(DocumentType(), day) is None


def test_expiry_warning_starts_30_days_before():
    today = date(2026, 6, 1)
    doc = Document(status="accepted", valid_until=today + timedelta(days=30))
    assert rules.is_expiring(doc, today)
    assert not rules.is_expiring(
        Document(status="accepted", valid_until=today + timedelta(31)), today
    )
    assert not rules.is_expiring(
        Document(status="accepted", valid_until=today - timedelta(1)), today
    )
    assert not rules.is_expiring(Document(status="accepted", valid_until=None), today)
    assert not rules.is_expiring(Document(status="refused", valid_until=today), today)


def test_status_on_a_day_after_the_validity_end_is_expired():
    doc = Document(status="accepted", valid_until=date(2026, 8, 31))
    assert doc.status_on(date(2026, 8, 31)) == "accepted"
    assert doc.status_on(date(2026, 9, 1)) == "expired"


def test_summary_counts_each_expected_document(app, family):
    today = date(2026, 6, 1)
    first, second = family.children
    # First child: insurance accepted but expiring; vaccines refused. Second: vaccines expired.
    make_document(
        app,
        household_id=family.household_id,
        type_id=family.child_type,
        person_id=first,
        status="accepted",
        valid_until=today + timedelta(days=10),
    )
    make_document(
        app,
        household_id=family.household_id,
        type_id=family.health_type,
        person_id=first,
        status="refused",
        refusal_reason="Illisible",
    )
    make_document(
        app,
        household_id=family.household_id,
        type_id=family.health_type,
        person_id=second,
        status="accepted",
        valid_until=today - timedelta(days=1),
    )
    make_document(app, household_id=family.household_id, type_id=family.household_type)
    with app.app_context():
        counts = rules.summary(family.household_id, today)
    assert counts == {
        "missing": 1,  # the second child's insurance
        "expired": 1,
        "expiring": 1,
        "refused": 1,
        "pending": 1,
        "up_to_date": False,
    }


def test_summary_up_to_date_when_nothing_is_missing_refused_or_expired(app, family):
    today = date(2026, 6, 1)
    for child in family.children:
        for type_id in (family.child_type, family.health_type):
            make_document(
                app,
                household_id=family.household_id,
                type_id=type_id,
                person_id=child,
                status="accepted",
            )
    make_document(app, household_id=family.household_id, type_id=family.household_type)
    with app.app_context():
        counts = rules.summary(family.household_id, today)
    assert counts["up_to_date"] is True
    assert counts["pending"] == 1


def test_summary_ignores_inactive_types_replaced_documents_and_children_who_left(app, family):
    from citoyens.database import utcnow
    from citoyens.households.models import HouseholdMember

    make_type(app, scope="child", active=False)
    first, second = family.children
    replaced = make_document(
        app,
        household_id=family.household_id,
        type_id=family.household_type,
        status="accepted",
    )
    with app.app_context():
        db.session.get(Document, replaced).replaced_at = utcnow()
        db.session.execute(
            HouseholdMember.__table__.update()
            .where(HouseholdMember.person_id == second)
            .values(left_at=utcnow())
        )
        db.session.commit()
        counts = rules.summary(family.household_id, date(2026, 6, 1))
    assert counts["missing"] == 3  # household document + first child's two


def test_summary_runs_the_same_number_of_queries_for_any_household_size(app, family, parent):
    with counted_queries(app) as small, app.app_context():
        rules.summary(family.household_id, date(2026, 6, 1))
    for name in ("Chloé", "Noé", "Inès"):
        add_child(app, family.household_id, name)
    with counted_queries(app) as big, app.app_context():
        rules.summary(family.household_id, date(2026, 6, 1))
    assert len(small) == len(big) == 3


# --- File checks ----------------------------------------------------------------------------


def test_pdf_is_kept_as_sent():
    checked = check_upload(PDF, "attestation.pdf")
    assert checked.content_type == "application/pdf"
    assert checked.data == PDF
    assert checked.sha256 == hashlib.sha256(PDF).hexdigest()
    assert checked.size == len(PDF)


def test_png_is_reencoded_as_png():
    checked = check_upload(png(), "scan.png")
    assert (checked.content_type, checked.extension) == ("image/png", "png")
    assert Image.open(io.BytesIO(checked.data)).size == (40, 30)


def test_jpeg_loses_its_exif_and_is_turned_upright():
    source = jpeg_with_gps_and_rotation()
    assert Image.open(io.BytesIO(source)).getexif()  # the phone's EXIF is there before
    checked = check_upload(source, "IMG_0001.JPG")
    image = Image.open(io.BytesIO(checked.data))
    assert checked.content_type == "image/jpeg"
    assert not image.getexif()
    assert b"Telephone Secret" not in checked.data
    assert "exif" not in image.info
    assert image.size == (20, 60)  # rotated as the orientation tag said


def test_a_jpeg_named_pdf_is_stored_as_jpeg():
    checked = check_upload(jpeg(), "attestation.pdf")
    assert (checked.content_type, checked.extension) == ("image/jpeg", "jpg")
    assert checked.original_name == "attestation.pdf"


def test_heic_from_an_iphone_becomes_jpeg():
    data = heic()
    if data is None:
        pytest.skip("pillow_heif cannot encode HEIC in this build (no HEVC encoder)")
    checked = check_upload(data, "IMG_1234.HEIC")
    assert (checked.content_type, checked.extension) == ("image/jpeg", "jpg")
    assert Image.open(io.BytesIO(checked.data)).format == "JPEG"


BAD_FILES = [
    pytest.param(EXE, "attestation.pdf", "n'est pas un document accepté", id="exe-renamed-pdf"),
    pytest.param(b"", "vide.pdf", "vide", id="empty"),
    pytest.param(b"%PDF-" + b"0" * MAX_FILE_SIZE, "gros.pdf", "dépasse 10 Mo", id="10MB+1"),
    pytest.param(b"<html><script>alert(1)</script>", "page.png", "accepté", id="html"),
    pytest.param(b"GIF89a" + b"\x00" * 50, "anim.gif", "accepté", id="gif"),
    pytest.param(png_bomb(), "bombe.png", "trop grande", id="png-bomb-400Mpx"),
    pytest.param(
        png_bomb(8000),
        "bombe.png",
        "trop grande",
        id="png-64Mpx",
        marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    ),
    pytest.param(truncated_jpeg(), "coupee.jpg", "illisible ou incomplète", id="truncated-jpeg"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "faux.png", "illisible", id="corrupt-png"),
]


@pytest.mark.parametrize(("data", "filename", "message"), BAD_FILES)
def test_bad_files_are_refused_in_french(data, filename, message):
    with pytest.raises(UploadError, match=message):
        check_upload(data, filename)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\moi\\scan.pdf", "scan.pdf"),
        ("a\x00b\r\n.pdf", "ab.pdf"),
        ("", "document"),
        (None, "document"),
        ("é" * 300 + ".pdf", "é" * 251 + ".pdf"),
    ],
)
def test_original_filename_is_harmless_metadata(name, expected):
    assert clean_filename(name) == expected


def test_content_disposition_has_an_ascii_fallback_and_utf8_name():
    header = content_disposition('Attestation "Léa" été.pdf')
    assert header.startswith('attachment; filename="Attestation _Lea_ ete.pdf"; ')
    assert "filename*=UTF-8''Attestation%20%22L%C3%A9a%22%20%C3%A9t%C3%A9.pdf" in header


# --- Storage --------------------------------------------------------------------------------


def test_filesystem_storage_round_trip(tmp_path):
    storage = FilesystemStorage(str(tmp_path / "store"))
    key = new_key("pdf")
    storage.save(key, PDF)
    assert storage.exists(key)
    with storage.open(key) as handle:
        assert handle.read() == PDF
    assert stored_files(tmp_path / "store") == [key]  # no temporary file left behind
    storage.delete(key)
    assert not storage.exists(key)
    storage.delete(key)  # deleting twice is harmless


@pytest.mark.parametrize(
    "key",
    ["../secret.pdf", "a/b.pdf", "..", "attestation.pdf", "/etc/passwd", "0" * 32 + ".pdf/x", ""],
)
def test_storage_refuses_keys_it_did_not_make(tmp_path, key):
    storage = FilesystemStorage(str(tmp_path))
    with pytest.raises(StorageError):
        storage.save(key, b"x")
    with pytest.raises(StorageError):
        storage.open(key)


def test_unknown_storage_is_a_clear_error(app, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_STORAGE", "s3")
    with app.app_context(), pytest.raises(StorageError, match="UPLOAD_STORAGE='s3'"):
        get_storage()


# --- The family's page and uploads ----------------------------------------------------------


def test_parent_sees_what_to_provide_for_the_household_and_each_child(app, family):
    response = family.client.get("/mes-documents")
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Pour le foyer" in text and "Justificatif de domicile" in text
    assert text.count("Enfant0 Test") == 1 and text.count("Enfant1 Test") == 1
    assert text.count("À envoyer") == 5
    assert 'enctype="multipart/form-data"' in text
    assert 'accept="application/pdf,image/jpeg,image/png,image/heic' in text
    assert "capture=" not in text  # the phone offers camera and files


def test_upload_with_htmx_swaps_the_line_and_opens_a_review_request(app, family, upload_folder):
    child = family.children[0]
    response = send(family.client, family.child_type, child, png(), "scan.png", htmx=True)
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'id="doc-{family.child_type}-{child}"' in text
    assert "En attente" in text
    assert 'data-hx-swap-oob="innerHTML:#doc-announce"' in text and "Document envoyé" in text
    assert "<html" not in text  # a fragment, not the page
    [doc] = documents_of(app, family.household_id)
    assert (doc.person_id, doc.type_id, doc.status) == (child, family.child_type, "pending")
    assert doc.content_type == "image/png" and doc.original_name == "scan.png"
    assert doc.valid_until == rules.school_year_end(rules.today_in_paris())
    assert stored_files(upload_folder) == [doc.storage_key]
    stored = (upload_folder / doc.storage_key).read_bytes()
    assert doc.sha256 == hashlib.sha256(stored).hexdigest() and doc.size == len(stored)
    assert doc.storage_key.endswith(".png") and "scan" not in doc.storage_key
    with app.app_context():
        # Sent outside an enrolment: it waits in the household's one review request.
        request = db.session.get(Request, doc.review_request_id)
        assert request.kind == "document_review" and request.status == "sent"
        assert request.household_id == family.household_id and request.for_request_id is None
        assert request.title == "Documents à vérifier"


def test_iphone_heic_photo_is_stored_as_jpeg(app, family, upload_folder):
    data = heic()
    if data is None:
        pytest.skip("pillow_heif cannot encode HEIC in this build (no HEVC encoder)")
    response = send(family.client, family.health_type, family.children[0], data, "IMG_0042.HEIC")
    assert response.status_code == 303
    [doc] = documents_of(app, family.household_id)
    assert doc.content_type == "image/jpeg" and doc.storage_key.endswith(".jpg")
    assert doc.original_name == "IMG_0042.HEIC"
    stored = (upload_folder / doc.storage_key).read_bytes()
    assert Image.open(io.BytesIO(stored)).format == "JPEG"


def test_upload_without_javascript_redirects_to_the_list(app, family):
    response = send(family.client, family.household_type, None, PDF, "facture.pdf")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(
        f"/mes-documents#doc-{family.household_type}-foyer"
    )
    page = family.client.get("/mes-documents").get_data(as_text=True)
    assert "Document envoyé : Justificatif de domicile." in page
    [doc] = documents_of(app, family.household_id)
    assert doc.person_id is None
    assert doc.valid_until == rules.add_months(rules.today_in_paris(), 3)


@pytest.mark.parametrize(("data", "filename", "message"), BAD_FILES[:4] + BAD_FILES[5:8])
def test_refused_upload_shows_a_french_message_and_saves_nothing(
    app, family, upload_folder, data, filename, message
):
    child = family.children[0]
    response = send(family.client, family.child_type, child, data, filename)
    assert response.status_code == 422
    text = html.unescape(response.get_data(as_text=True))
    assert message in text
    assert f'id="err-{family.child_type}-{child}"' in text
    assert documents_of(app, family.household_id) == []
    assert count(app, Request, Request.household_id == family.household_id) == 0
    assert stored_files(upload_folder) == []


def test_refused_upload_with_htmx_answers_the_line_with_its_error(app, family, upload_folder):
    response = send(family.client, family.household_type, None, EXE, "x.pdf", htmx=True)
    text = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200  # htmx swaps only 2xx answers
    assert "n'est pas un document accepté" in text and 'aria-invalid="true"' in text
    assert documents_of(app, family.household_id) == [] and stored_files(upload_folder) == []


def test_upload_without_a_file_asks_for_one(app, family):
    token = csrf_token(family.client)
    response = family.client.post(
        UPLOAD,
        data={"csrf_token": token, "type_id": family.household_type},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "Choisissez un fichier" in response.get_data(as_text=True)


def test_request_over_11_mb_is_the_413_page(app, family):
    big = b"%PDF-" + b"0" * (11 * 1024 * 1024)
    response = send(family.client, family.household_type, None, big, "enorme.pdf")
    assert response.status_code == 413
    assert "dépasse 10 Mo" in response.get_data(as_text=True)


def test_new_upload_replaces_the_current_one_and_keeps_history(app, family, upload_folder):
    child = family.children[1]
    send(family.client, family.health_type, child, PDF, "v1.pdf")
    send(family.client, family.health_type, child, png(), "v2.png")
    first, second = documents_of(app, family.household_id)
    assert first.replaced_at is not None and second.replaced_at is None
    assert len(stored_files(upload_folder)) == 2  # staff keep the old file
    with app.app_context():
        current = rules.current_documents(family.household_id)
        assert current[(family.health_type, child)].id == second.id
        statuses = db.session.execute(
            select(Request.id, Request.status).where(Request.household_id == family.household_id)
        ).all()
    # The new file takes the old one's place in the same review: still one request.
    assert statuses == [(first.review_request_id, "sent")]
    assert second.review_request_id == first.review_request_id
    page = family.client.get("/mes-documents").get_data(as_text=True)
    assert "v1.pdf" not in page
    assert f"/mes-documents/{first.id}/telecharger" not in page
    assert f"/mes-documents/{second.id}/telecharger" in page


def test_uploads_for_two_children_do_not_replace_each_other(app, family):
    for child in family.children:
        send(family.client, family.child_type, child, PDF, "a.pdf")
    assert [d.replaced_at for d in documents_of(app, family.household_id)] == [None, None]


# --- Forged ids and other households --------------------------------------------------------


def test_forged_person_or_type_ids_are_404(app, family, upload_folder):
    other = make_user(app, role="parent", children=1)
    other_child = children_of(app, other.household_id)[0]
    child = family.children[0]
    inactive = make_type(app, scope="child", active=False)
    cases = [
        (family.child_type, other_child),  # another household's child
        (family.child_type, adult_of(app, family.household_id)),  # an adult, not a child
        (family.child_type, None),  # a child's document without a child
        (family.household_type, child),  # a household document with a child
        (inactive, child),
        (999_999, child),
        ("abc", child),
        (family.child_type, "x"),
        (family.child_type, 2**40),
        (2**40, child),
    ]
    for type_id, person_id in cases:
        response = send(family.client, type_id, person_id, PDF, "a.pdf")
        assert response.status_code == 404, (type_id, person_id)
    assert documents_of(app, family.household_id) == []
    assert documents_of(app, other.household_id) == []
    assert stored_files(upload_folder) == []


def test_a_child_who_left_the_household_gets_no_upload(app, family):
    from citoyens.database import utcnow
    from citoyens.households.models import HouseholdMember

    child = family.children[0]
    with app.app_context():
        db.session.execute(
            HouseholdMember.__table__.update()
            .where(HouseholdMember.person_id == child)
            .values(left_at=utcnow())
        )
        db.session.commit()
    assert send(family.client, family.child_type, child, PDF, "a.pdf").status_code == 404


def test_download_is_an_attachment_for_the_household_only(app, family):
    send(family.client, family.household_type, None, PDF, "Facture EDF été.pdf")
    [doc] = documents_of(app, family.household_id)
    response = family.client.get(f"/mes-documents/{doc.id}/telecharger")
    assert response.status_code == 200
    assert response.data == PDF
    assert response.headers["Content-Type"] == "application/pdf"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Facture EDF ete.pdf"')
    assert "filename*=UTF-8''Facture%20EDF%20%C3%A9t%C3%A9.pdf" in disposition
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "sandbox" in response.headers["Content-Security-Policy"]

    other = logged_in(app, make_user(app, role="parent", children=1))
    assert other.get(f"/mes-documents/{doc.id}/telecharger").status_code == 404
    assert other.get("/mes-documents/999999/telecharger").status_code == 404


def test_a_jpeg_named_pdf_is_downloaded_as_jpeg(app, family):
    send(family.client, family.household_type, None, jpeg(), "facture.pdf")
    [doc] = documents_of(app, family.household_id)
    response = family.client.get(f"/mes-documents/{doc.id}/telecharger")
    assert response.headers["Content-Type"] == "image/jpeg"
    assert 'filename="facture.jpg"' in response.headers["Content-Disposition"]


def test_pages_need_a_parent(app, client, staff):
    response = client.get("/mes-documents")
    assert response.status_code == 302 and "/connexion" in response.headers["Location"]
    agent = logged_in(app, staff)
    assert agent.get("/mes-documents").status_code == 403


def test_upload_needs_a_csrf_token(app, family):
    response = family.client.post(
        UPLOAD,
        data={"type_id": family.household_type, "file": (io.BytesIO(PDF), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 400
    assert documents_of(app, family.household_id) == []


# --- Staff review ---------------------------------------------------------------------------


def test_parent_gets_403_on_staff_document_pages(app, family):
    send(family.client, family.household_type, None, PDF, "a.pdf")
    [doc] = documents_of(app, family.household_id)
    for path in (
        "/admin/documents",
        f"/admin/documents/{doc.id}",
        f"/admin/documents/{doc.id}/fichier",
        f"/admin/documents/{doc.id}/apercu",
        "/admin/documents/types",
    ):
        assert family.client.get(path).status_code == 403, path
    response = post(family.client, f"/admin/documents/{doc.id}/decision", {"decision": "accepted"})
    assert response.status_code == 403
    assert documents_of(app, family.household_id)[0].status == "pending"


def test_staff_queue_lists_pending_documents_with_the_family(app, family, staff):
    send(family.client, family.child_type, family.children[0], png(), "a.png")
    agent = logged_in(app, staff)
    text = agent.get("/admin/documents").get_data(as_text=True)
    assert "Assurance" in text and "Enfant0 Test" in text and re.search(r"Parent\d+ Test", text)


def test_staff_queue_runs_a_constant_number_of_queries(app, family, staff):
    agent = logged_in(app, staff)
    send(family.client, family.household_type, None, PDF, "a.pdf")
    agent.get("/admin/documents")
    with counted_queries(app) as one:
        agent.get("/admin/documents")
    for _ in range(4):
        other = make_user(app, role="parent", children=1)
        concern(app, staff.id, other.household_id)
        child = children_of(app, other.household_id)[0]
        make_document(
            app, household_id=other.household_id, type_id=family.child_type, person_id=child
        )
    with counted_queries(app) as five:
        text = agent.get("/admin/documents").get_data(as_text=True)
    assert "5 documents en attente" in text
    assert len(one) == len(five)


def test_staff_accepts_a_document_and_the_family_is_told(app, family, staff, outbox):
    send(family.client, family.child_type, family.children[0], png(), "a.png")
    [doc] = documents_of(app, family.household_id)
    agent = logged_in(app, staff)
    page = agent.get(f"/admin/documents/{doc.id}").get_data(as_text=True)
    assert f'src="/admin/documents/{doc.id}/apercu"' in page and "Accepter le document" in page
    response = post(agent, f"/admin/documents/{doc.id}/decision", {"decision": "accepted"})
    assert response.status_code == 303
    [doc] = documents_of(app, family.household_id)
    assert doc.status == "accepted" and doc.reviewed_by_id == staff.id and doc.reviewed_at
    with app.app_context():
        # Its only document decided, the review closes.
        assert db.session.get(Request, doc.review_request_id).status == "accepted"
    # Told a few minutes later, with the household's other decisions of these minutes.
    assert [m for m in outbox if family.account.email in m.recipients] == []
    assert send_notices(app, due=False) == 0
    assert send_notices(app) == 1
    [mail] = [m for m in outbox if family.account.email in m.recipients]
    assert mail.subject == "Vérification de vos documents : 1 accepté"
    assert "Assurance — Enfant0 Test : accepté" in mail.body
    assert send_notices(app) == 0  # told once
    assert "Accepté" in family.client.get("/mes-documents").get_data(as_text=True)


def test_refusal_needs_a_reason(app, family, staff, outbox):
    send(family.client, family.household_type, None, PDF, "a.pdf")
    [doc] = documents_of(app, family.household_id)
    agent = logged_in(app, staff)
    response = post(agent, f"/admin/documents/{doc.id}/decision", {"decision": "refused"})
    assert response.status_code == 422
    assert "Indiquez le motif du refus" in response.get_data(as_text=True)
    assert documents_of(app, family.household_id)[0].status == "pending"
    assert outbox == []


def test_staff_refuses_with_a_reason_the_family_reads(app, family, staff, outbox):
    concern(app, staff.id, family.household_id)  # still visible once the review is closed
    send(family.client, family.household_type, None, PDF, "a.pdf")
    [doc] = documents_of(app, family.household_id)
    agent = logged_in(app, staff)
    reason = "Le justificatif date de plus de 3 mois."
    response = post(
        agent, f"/admin/documents/{doc.id}/decision", {"decision": "refused", "reason": reason}
    )
    assert response.status_code == 303
    [doc] = documents_of(app, family.household_id)
    assert (doc.status, doc.refusal_reason) == ("refused", reason)
    send_notices(app)
    [mail] = [m for m in outbox if family.account.email in m.recipients]
    assert reason in mail.body
    page = family.client.get("/mes-documents").get_data(as_text=True)
    assert "Refusé" in page and reason in page
    # Decided once: a second decision changes nothing.
    again = post(agent, f"/admin/documents/{doc.id}/decision", {"decision": "accepted"})
    assert again.status_code == 303
    assert documents_of(app, family.household_id)[0].status == "refused"


def test_deciding_the_request_elsewhere_decides_the_document(app, family, staff):
    """The requests pages call change_status: the registered handler updates the document."""
    from citoyens.accounts.models import User

    send(family.client, family.household_type, None, PDF, "a.pdf")
    [doc] = documents_of(app, family.household_id)
    with app.app_context():
        request = db.session.get(Request, doc.review_request_id)
        agent = db.session.get(User, staff.id)
        with pytest.raises(request_ops.RequestError, match="motif"):
            request_ops.change_status(request, "refused", actor=agent)
        db.session.rollback()
        request = db.session.get(Request, doc.review_request_id)
        request_ops.change_status(request, "refused", actor=agent, message="Illisible")
        db.session.commit()
    [doc] = documents_of(app, family.household_id)
    assert (doc.status, doc.refusal_reason, doc.reviewed_by_id) == (
        "refused",
        "Illisible",
        staff.id,
    )


def test_staff_see_the_households_replaced_documents(app, family, staff):
    send(family.client, family.household_type, None, PDF, "ancien.pdf")
    send(family.client, family.household_type, None, PDF, "nouveau.pdf")
    old, new = documents_of(app, family.household_id)
    agent = logged_in(app, staff)
    text = agent.get(f"/admin/documents/{new.id}").get_data(as_text=True)
    assert f"/admin/documents/{old.id}/fichier" in text and "remplacé le" in text
    old_page = agent.get(f"/admin/documents/{old.id}").get_data(as_text=True)
    assert "Accepter le document" not in old_page  # only the current one is reviewed
    response = post(agent, f"/admin/documents/{old.id}/decision", {"decision": "accepted"})
    assert response.status_code == 303
    assert documents_of(app, family.household_id)[0].status == "pending"


def test_staff_download_and_preview(app, family, staff):
    send(family.client, family.household_type, None, png(), "plan.png")
    send(family.client, family.child_type, family.children[0], PDF, "a.pdf")
    image, pdf = documents_of(app, family.household_id)
    agent = logged_in(app, staff)
    preview = agent.get(f"/admin/documents/{image.id}/apercu")
    assert preview.status_code == 200 and preview.headers["Content-Type"] == "image/png"
    assert preview.headers["Content-Disposition"].startswith("inline;")
    assert preview.headers["X-Content-Type-Options"] == "nosniff"
    assert agent.get(f"/admin/documents/{pdf.id}/apercu").status_code == 404
    download = agent.get(f"/admin/documents/{pdf.id}/fichier")
    assert download.status_code == 200 and download.data == PDF
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["Cache-Control"] == "no-store"
    assert agent.get("/admin/documents/999999/fichier").status_code == 404


def test_a_file_missing_from_the_store_is_a_404_not_a_500(app, family, staff):
    lost = make_document(
        app,
        household_id=family.household_id,
        type_id=family.health_type,
        person_id=family.children[0],
    )
    concern(app, staff.id, family.household_id)  # no review request: a row without a file
    agent = logged_in(app, staff)
    assert agent.get(f"/admin/documents/{lost}/fichier").status_code == 404
    assert family.client.get(f"/mes-documents/{lost}/telecharger").status_code == 404
    assert audit_actions(app, f"document:{lost}") == []  # nothing was opened


def test_staff_opening_a_health_document_is_logged(app, family, staff):
    send(family.client, family.health_type, family.children[0], png(), "vaccins.png")
    send(family.client, family.household_type, None, PDF, "facture.pdf")
    health, other = documents_of(app, family.household_id)
    agent = logged_in(app, staff)
    agent.get(f"/admin/documents/{health.id}/apercu")
    agent.get(f"/admin/documents/{health.id}/fichier")
    agent.get(f"/admin/documents/{other.id}/fichier")
    with app.app_context():
        events = db.session.execute(
            select(AuditEvent.actor_id, AuditEvent.target).where(
                AuditEvent.action == "document.health-opened"
            )
        ).all()
    assert events == [(staff.id, f"document:{health.id}")] * 2
    page = agent.get(f"/admin/documents/{health.id}").get_data(as_text=True)
    assert "chaque consultation" in page


# --- Document types (staff) -----------------------------------------------------------------


def type_form(**overrides) -> dict:
    data = {
        "label": "Attestation CAF",
        "code": "attestation-caf",
        "description": "",
        "scope": "household",
        "validity": "months",
        "validity_months": "12",
    }
    data.update(overrides)
    return data


def test_staff_create_edit_and_deactivate_a_type(app, staff, family):
    agent = logged_in(app, staff)
    assert agent.get("/admin/documents/types/nouveau").status_code == 200
    response = post(agent, "/admin/documents/types/nouveau", type_form(health="y"))
    assert response.status_code == 303
    with app.app_context():
        created = db.session.scalar(
            select(DocumentType).where(DocumentType.code == "attestation-caf")
        )
        assert (created.scope, created.validity_months, created.health) == ("household", 12, True)
        type_id = created.id
    assert "Attestation CAF" in family.client.get("/mes-documents").get_data(as_text=True)

    response = post(
        agent,
        f"/admin/documents/types/{type_id}",
        type_form(label="Attestation de QF", validity="school_year", validity_months="abc"),
    )
    assert response.status_code == 303
    with app.app_context():
        edited = db.session.get(DocumentType, type_id)
        assert (edited.label, edited.validity_months, edited.until_school_year_end) == (
            "Attestation de QF",
            None,
            True,
        )
        assert edited.health is False

    response = post(agent, f"/admin/documents/types/{type_id}/activation", {"active": "0"})
    assert response.status_code == 303
    assert "Attestation de QF" not in family.client.get("/mes-documents").get_data(as_text=True)
    assert send(family.client, type_id, None, PDF, "a.pdf").status_code == 404
    post(agent, f"/admin/documents/types/{type_id}/activation", {"active": "1"})
    assert "Attestation de QF" in family.client.get("/mes-documents").get_data(as_text=True)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"label": ""}, "Le libellé est obligatoire."),
        ({"label": "x" * 10_000}, "120 caractères"),
        ({"label": "a\x00b"}, "caractères non autorisés"),
        ({"code": ""}, "Le code est obligatoire."),
        ({"code": "Avec espace"}, "lettres minuscules"),
        ({"code": "x" * 41}, "40 caractères"),
        ({"validity_months": ""}, "Indiquez le nombre de mois"),
        ({"validity_months": "0"}, "entre 1 et 120"),
        ({"validity_months": "abc"}, "nombre entier"),
        ({"scope": "planet"}, "Choisissez une des options proposées."),
        ({"validity": "forever"}, "Choisissez une des options proposées."),
        ({"description": "d" * 1001}, "1000 caractères"),
    ],
)
def test_bad_type_forms_save_nothing(app, staff, overrides, message):
    agent = logged_in(app, staff)
    before = count(app, DocumentType)
    response = post(agent, "/admin/documents/types/nouveau", type_form(**overrides))
    assert response.status_code == 422
    assert message in html.unescape(response.get_data(as_text=True))
    assert count(app, DocumentType) == before


def test_type_code_is_unique(app, staff):
    make_type(app, code="vaccins")
    agent = logged_in(app, staff)
    response = post(agent, "/admin/documents/types/nouveau", type_form(code="vaccins"))
    assert response.status_code == 422
    assert "déjà utilisé" in response.get_data(as_text=True)


# --- Demo ---------------------------------------------------------------------------------


def test_demo_types_are_seeded_once(app):
    from citoyens.documents.demo import seed_demo

    with app.app_context():
        assert seed_demo() == 5
        assert seed_demo() == 0
        types = {t.code: t for t in db.session.scalars(select(DocumentType))}
        assert types["responsabilite-civile"].until_school_year_end
        assert types["vaccinations"].health and types["vaccinations"].validity_months is None
        assert types["certificat-medical"].health
        assert types["justificatif-domicile"].validity_months == 3
        assert types["quotient-familial"].scope == "household"
        db.session.rollback()


# --- Two uploads at the same time -----------------------------------------------------------


@pytest.fixture
def race_app(tmp_path):
    """An app on a database of its own: the threads below really commit."""
    from tests.conftest import dedicated_app

    with dedicated_app(tmp_path, "citoyens_documents_race") as app:
        yield app


@pytest.mark.own_database
def test_concurrent_uploads_leave_one_current_document(race_app, tmp_path):
    import threading

    from sqlalchemy.exc import OperationalError

    from citoyens.documents.operations import discard_file, upload_document
    from citoyens.households.models import Household

    with race_app.app_context():
        household = Household()
        doc_type = DocumentType(code="domicile", label="Domicile", scope="household")
        db.session.add_all([household, doc_type])
        db.session.commit()
        household_id, type_id = household.id, doc_type.id

    threads_count = 4
    barrier = threading.Barrier(threads_count)
    outcomes: list[str] = []

    def upload(n: int):
        with race_app.app_context():
            checked = check_upload(PDF + str(n).encode(), f"{n}.pdf")
            barrier.wait()
            document = None
            try:
                doc_type = db.session.get(DocumentType, type_id)
                document = upload_document(
                    household_id=household_id,
                    doc_type=doc_type,
                    person=None,
                    checked=checked,
                    actor=None,
                )
                db.session.commit()
                outcomes.append("stored")
            except OperationalError:  # SQLite: "database is locked" for a stale reader
                db.session.rollback()
                if document is not None:
                    discard_file(document)
                outcomes.append("busy")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    with race_app.app_context():
        docs = db.session.scalars(select(Document).order_by(Document.id)).all()
        current = [d for d in docs if d.replaced_at is None]
        files = stored_files(Path(race_app.config["UPLOAD_FOLDER"]))
        assert len(outcomes) == threads_count and "stored" in outcomes
        assert len(docs) == outcomes.count("stored")
        assert len(current) == 1, [(d.id, d.replaced_at) for d in docs]
        assert current[0].id == max(d.id for d in docs)
        assert sorted(files) == sorted(d.storage_key for d in docs)
        open_reviews = db.session.scalar(
            select(func.count()).select_from(Request).where(Request.status == "sent")
        )
        assert open_reviews == 1
    if TEST_DATABASE_URL_IS_POSTGRESQL:
        assert outcomes == ["stored"] * threads_count  # row lock: each waits its turn
