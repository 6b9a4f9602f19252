"""Uploads that cannot stall the server or carry code (issue 12, "Safe by default").

Images: the pixel count is read from the header and refused before any pixel is decoded;
JPEGs decode at the reduced scale the stored copy needs; a bounded number of images is
decoded at once per process. PDFs: JavaScript, launch actions, automatic actions and
embedded files are refused, found by a real parser (compressed object streams, `#xx`
escapes in names), with a clear French message; nothing is stored on refusal.
"""

from __future__ import annotations

import html
import io
import re
import threading
import time

import pytest
from PIL import Image, ImageFile

from citoyens.documents import pdf_safety, uploads
from citoyens.documents.uploads import MAX_FILE_SIZE, UploadError, check_upload, decoding_slot
from tests.documents_factories import (
    PDF,
    fpdf_document,
    jpeg,
    pdf_file,
    pdf_with_embedded_file,
    pdf_with_javascript,
    pdf_with_javascript_in_object_stream,
    pdf_with_launch_action,
    pdf_with_obfuscated_javascript,
    pdf_with_page_open_action,
    png,
    png_header_claiming,
)
from tests.test_documents import (  # noqa: F401 (fixtures)
    documents_of,
    family,
    send,
    stored_files,
    upload_folder,
)

ACTIVE = "Ce PDF contient du code ou des actions automatiques : enregistrez-le à nouveau en PDF"


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if any image is decoded (ImageFile.load is where pixels are read)."""

    def load(self):
        raise AssertionError(f"decoded a {self.size} image")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


# --- Images: the pixel cap comes before decoding ---------------------------------------------


def test_a_png_claiming_ten_gigapixels_is_refused_at_once_without_decoding(no_decoding):
    data = png_header_claiming(100_000, 100_000)
    assert len(data) < 2000
    start = time.perf_counter()
    with pytest.raises(UploadError, match="trop grande"):
        check_upload(data, "photo.png")
    assert time.perf_counter() - start < 0.5


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_an_image_over_the_cap_where_pillow_only_warns_is_refused_without_decoding(
    no_decoding,
):
    # 60 Mpx: above the 50 Mpx cap, under the 100 Mpx where Pillow itself raises.
    with pytest.raises(UploadError, match="trop grande"):
        check_upload(png_header_claiming(10_000, 6_000), "photo.png")
    assert Image.MAX_IMAGE_PIXELS == uploads.UPLOAD_MAX_PIXELS  # bombs raise in Image.open


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_the_pixel_cap_is_a_setting(app, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_MAX_PIXELS", 1_000)
    with app.app_context():
        with pytest.raises(UploadError, match="trop grande"):
            check_upload(png(size=(40, 30)), "scan.png")
        assert check_upload(png(size=(40, 20)), "scan.png").content_type == "image/png"
    assert Image.MAX_IMAGE_PIXELS == 1_000  # Pillow's own limit follows the setting
    with app.app_context():
        monkeypatch.setitem(app.config, "UPLOAD_MAX_PIXELS", uploads.UPLOAD_MAX_PIXELS)
        check_upload(png(), "scan.png")
    assert Image.MAX_IMAGE_PIXELS == uploads.UPLOAD_MAX_PIXELS


def test_a_big_jpeg_is_decoded_at_reduced_scale(monkeypatch):
    """The 48 Mpx case scaled down: 1600 × 1200 stored at most 200 px wide decodes at 1/8
    (200 × 150), never at full size."""
    monkeypatch.setattr(uploads, "MAX_IMAGE_SIDE", 200)
    decoded = []
    real_load = ImageFile.ImageFile.load

    def load(self):
        decoded.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    checked = check_upload(jpeg(size=(1600, 1200)), "photo.jpg")
    assert decoded and set(decoded) == {(200, 150)}
    assert Image.open(io.BytesIO(checked.data)).size == (200, 150)


def test_at_most_the_configured_number_of_images_decode_at_once(app, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_IMAGE_SLOTS", 2)
    inside, peak, lock = [0], [0], threading.Lock()
    real_encode = uploads._encode

    def slow_encode(*args):
        with lock:
            inside[0] += 1
            peak[0] = max(peak[0], inside[0])
        time.sleep(0.05)
        with lock:
            inside[0] -= 1
        return real_encode(*args)

    monkeypatch.setattr(uploads, "_encode", slow_encode)
    results = []

    def upload():
        with app.app_context():
            results.append(check_upload(jpeg(), "photo.jpg").content_type)

    threads = [threading.Thread(target=upload) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["image/jpeg"] * 8
    assert peak[0] == 2


def test_no_free_decoding_slot_is_a_clear_message(app, monkeypatch):
    monkeypatch.setitem(app.config, "UPLOAD_IMAGE_SLOTS", 1)
    monkeypatch.setitem(app.config, "UPLOAD_IMAGE_WAIT_SECONDS", 0)
    with app.app_context():
        with (
            decoding_slot(uploads.image_limits()),
            pytest.raises(UploadError, match="réessayez dans une minute"),
        ):
            check_upload(jpeg(), "photo.jpg")
        assert check_upload(jpeg(), "photo.jpg").content_type == "image/jpeg"  # freed


def test_a_refused_giant_image_through_http_saves_nothing(app, family, upload_folder):  # noqa: F811
    response = send(
        family.client, family.household_type, None, png_header_claiming(100_000, 100_000), "x.png"
    )
    assert response.status_code == 422
    assert "Cette image est trop grande" in html.unescape(response.get_data(as_text=True))
    assert documents_of(app, family.household_id) == [] and stored_files(upload_folder) == []


# --- PDFs: no code, no automatic action, no attached file ------------------------------------

HOSTILE_PDFS = [
    pytest.param(pdf_with_javascript, id="document-javascript"),
    pytest.param(pdf_with_launch_action, id="launch-action"),
    pytest.param(pdf_with_obfuscated_javascript, id="obfuscated-name-J#61vaScript"),
    pytest.param(pdf_with_javascript_in_object_stream, id="javascript-in-object-stream"),
    pytest.param(pdf_with_page_open_action, id="page-additional-action"),
    pytest.param(pdf_with_embedded_file, id="embedded-file"),
]


@pytest.mark.parametrize("make", HOSTILE_PDFS)
def test_pdf_with_code_is_refused_through_http_and_saves_nothing(
    app,
    family,  # noqa: F811
    upload_folder,  # noqa: F811
    make,
):
    child = family.children[0]
    response = send(family.client, family.child_type, child, make(), "attestation.pdf")
    assert response.status_code == 422
    text = html.unescape(response.get_data(as_text=True))
    assert ACTIVE in text
    assert "(Imprimer > Enregistrer en PDF) puis envoyez-le." in text
    assert documents_of(app, family.household_id) == [] and stored_files(upload_folder) == []


@pytest.mark.parametrize("make", HOSTILE_PDFS)
def test_the_parser_alone_finds_them(monkeypatch, make):
    """The byte scan is only a shortcut: with it blind, the parser still refuses each."""
    monkeypatch.setattr(pdf_safety, "_OBVIOUS", re.compile(rb"(?!)"))
    with pytest.raises(UploadError, match="code ou des actions automatiques"):
        check_upload(make(), "a.pdf")


def test_the_hidden_ones_are_invisible_to_a_byte_scan():
    for data in (pdf_with_obfuscated_javascript(), pdf_with_javascript_in_object_stream()):
        assert b"/JavaScript" not in data and b"/JS" not in data


def test_a_plain_pdf_is_accepted_and_stored_as_sent(app, family, upload_folder):  # noqa: F811
    data = fpdf_document("Attestation d'assurance")
    response = send(family.client, family.household_type, None, data, "assurance.pdf")
    assert response.status_code == 303
    [document] = documents_of(app, family.household_id)
    assert document.content_type == "application/pdf"
    assert (upload_folder / document.storage_key).read_bytes() == data


def test_a_pdf_with_links_and_a_go_to_open_action_is_accepted():
    data = pdf_file(
        b"<</Type/Catalog/Pages 2 0 R/OpenAction[3 0 R/Fit]>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/Annots[4 0 R]>>",
        b"<</Type/Annot/Subtype/Link/Rect[0 0 50 50]/A<</S/URI/URI(https://caf.fr/)>>>>",
    )
    assert check_upload(data, "caf.pdf").data == data


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"%PDF-1.7\n" + b"\x00garbage" * 20, id="garbage"),
        pytest.param(PDF[: len(PDF) // 2], id="truncated"),
        pytest.param(b"%PDF-" + b"0" * 1000, id="header-only"),
    ],
)
def test_an_unreadable_pdf_is_refused(app, family, upload_folder, data):  # noqa: F811
    response = send(family.client, family.household_type, None, data, "x.pdf")
    assert response.status_code == 422
    assert "Ce PDF est illisible" in html.unescape(response.get_data(as_text=True))
    assert documents_of(app, family.household_id) == [] and stored_files(upload_folder) == []


def _encrypted(**passwords) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(fpdf_document())))
    writer.encrypt(algorithm="AES-128", **passwords)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_password_protected_pdf_is_refused_and_a_permissions_only_one_accepted():
    with pytest.raises(UploadError, match="protégé par un mot de passe"):
        check_upload(_encrypted(user_password="secret", owner_password="x"), "a.pdf")
    data = _encrypted(user_password="", owner_password="owner")
    assert check_upload(data, "releve.pdf").data == data


def test_exactly_10_mb_of_valid_pdf_is_accepted():
    def padded(length: int) -> bytes:
        return pdf_file(
            b"<</Type/Catalog/Pages 2 0 R>>",
            b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
            b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>",
            b"<</Length %d>>stream\n%s\nendstream" % (length, b"0" * length),
        )

    length = MAX_FILE_SIZE - len(padded(0))
    length -= len(padded(length)) - MAX_FILE_SIZE  # the /Length digits
    data = padded(length)
    assert len(data) == MAX_FILE_SIZE
    assert check_upload(data, "limite.pdf").size == MAX_FILE_SIZE
