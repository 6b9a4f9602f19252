"""Factories and sample files for the documents tests.

Files are made in code (Pillow, a few bytes of PDF) rather than kept in the
repository: each test shows what it sends.
"""

from __future__ import annotations

import io
import itertools
from datetime import date

from PIL import Image
from sqlalchemy import select

from citoyens.documents.models import Document, DocumentType
from citoyens.extensions import db
from citoyens.households.models import HouseholdMember, Person

_counter = itertools.count(1)


def pdf_file(*objects: bytes, root: int = 1) -> bytes:
    """A PDF of the given objects (numbered from 1), with an exact cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj%sendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer<</Size %d/Root %d 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        root,
        xref,
    )
    return bytes(out)


# A one-page, blank, plain PDF: what a scanner or "Enregistrer en PDF" gives, in 300 bytes.
PDF = pdf_file(
    b"<</Type/Catalog/Pages 2 0 R>>",
    b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
    b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>",
)
# The start of a Windows executable: what a ".pdf" from a bad link may really be.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def png(size=(40, 30), color=(30, 80, 160), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG", **save)
    return out.getvalue()


def jpeg(size=(40, 30), color=(200, 40, 40), exif: Image.Exif | None = None) -> bytes:
    out = io.BytesIO()
    options = {"exif": exif} if exif is not None else {}
    Image.new("RGB", size, color).save(out, "JPEG", quality=90, **options)
    return out.getvalue()


def jpeg_with_gps_and_rotation() -> bytes:
    """A phone-like photo: EXIF with a GPS position, a camera model and "rotate 90°"."""
    exif = Image.Exif()
    exif[0x0110] = "Telephone Secret 15"  # Model
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (47.0, 21.0, 0.0)  # Chalonnes-sur-Loire, roughly
    return jpeg(size=(60, 20), exif=exif)


def heic(size=(40, 30)) -> bytes | None:
    """A HEIC photo as an iPhone sends it, or None if pillow_heif cannot encode here."""
    try:
        import pillow_heif

        heif = pillow_heif.from_pillow(Image.new("RGB", size, (10, 120, 60)))
        out = io.BytesIO()
        heif.save(out, quality=80)
        return out.getvalue()
    except Exception:  # no HEVC encoder in this build of libheif
        return None


def png_bomb(side: int = 20_000) -> bytes:
    """A single-colour PNG of side × side pixels: a few hundred KB that decode to gigabytes."""
    out = io.BytesIO()
    Image.new("1", (side, side), 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def truncated_jpeg() -> bytes:
    data = jpeg(size=(400, 300))
    return data[: len(data) // 2]


def make_type(
    app,
    *,
    scope: str = "child",
    label: str | None = None,
    code: str | None = None,
    validity_months: int | None = None,
    until_school_year_end: bool = False,
    health: bool = False,
    active: bool = True,
) -> int:
    n = next(_counter)
    with app.app_context():
        doc_type = DocumentType(
            code=code or f"type-test-{n}",
            label=label or f"Document test {n}",
            scope=scope,
            validity_months=validity_months,
            until_school_year_end=until_school_year_end,
            health=health,
            active=active,
        )
        db.session.add(doc_type)
        db.session.commit()
        return doc_type.id


def children_of(app, household_id: int) -> list[int]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(HouseholdMember.person_id)
                .where(
                    HouseholdMember.household_id == household_id,
                    HouseholdMember.role == "child",
                )
                .order_by(HouseholdMember.id)
            )
        )


def adult_of(app, household_id: int) -> int:
    with app.app_context():
        return db.session.scalar(
            select(HouseholdMember.person_id).where(
                HouseholdMember.household_id == household_id, HouseholdMember.role == "adult"
            )
        )


def add_child(app, household_id: int, first_name: str = "Benjamin") -> int:
    with app.app_context():
        person = Person(first_name=first_name, last_name="Test", birth_date=date(2019, 5, 5))
        db.session.add(HouseholdMember(household_id=household_id, person=person, role="child"))
        db.session.commit()
        return person.id


def make_document(
    app,
    *,
    household_id: int,
    type_id: int,
    person_id: int | None = None,
    status: str = "pending",
    valid_until: date | None = None,
    refusal_reason: str | None = None,
    content_type: str = "application/pdf",
) -> int:
    """A document row without a file (for rules that only look at the database)."""
    n = next(_counter)
    with app.app_context():
        document = Document(
            household_id=household_id,
            person_id=person_id,
            type_id=type_id,
            status=status,
            storage_key=f"{n:032x}.pdf",
            original_name="test.pdf",
            content_type=content_type,
            size=100,
            sha256="0" * 64,
            valid_until=valid_until,
            refusal_reason=refusal_reason,
        )
        db.session.add(document)
        db.session.commit()
        return document.id


# --- Hostile PDFs: each carries code or an automatic action a viewer would run ----------------

_PAGES = b"<</Type/Pages/Kids[3 0 R]/Count 1>>"
_PAGE = b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>"


def fpdf_document(text: str = "Attestation") -> bytes:
    """A real one-page PDF with text, as fpdf2 (the portal's own invoices) writes it."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.cell(0, 10, text)
    return bytes(pdf.output())


def _rewritten(change) -> bytes:
    """fpdf_document() read and written again by pypdf, `change(writer)` applied between."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(fpdf_document())))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_with_javascript() -> bytes:
    """Document-level JavaScript, added the usual way (pypdf's add_open_action)."""
    from pypdf.actions import JavaScript

    return _rewritten(lambda writer: writer.add_open_action(JavaScript("app.alert('bonjour');")))


def pdf_with_embedded_file() -> bytes:
    return _rewritten(lambda writer: writer.add_attachment("facture.exe", b"MZ\x90\x00"))


def pdf_with_launch_action() -> bytes:
    """Opening the document launches a program."""
    return pdf_file(
        b"<</Type/Catalog/Pages 2 0 R/OpenAction<</S/Launch/F(cmd.exe)>>>>", _PAGES, _PAGE
    )


def pdf_with_obfuscated_javascript() -> bytes:
    """/OpenAction with /J#61vaScript and /J#53: "/JavaScript" and "/JS" once decoded,
    but neither spelled out anywhere in the file's bytes."""
    return pdf_file(
        b"<</Type/Catalog/Pages 2 0 R/OpenAction 4 0 R>>",
        _PAGES,
        _PAGE,
        b"<</Type/Action/S/J#61vaScript/J#53(app.alert(1))>>",
    )


def pdf_with_page_open_action() -> bytes:
    """An additional action (/AA) on the page: it fires when the page is shown."""
    return pdf_file(
        b"<</Type/Catalog/Pages 2 0 R>>",
        _PAGES,
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]/#41A<</O 4 0 R>>>>",
        b"<</S/URI/URI(https://example.org/)>>",
    )


def pdf_with_javascript_in_object_stream() -> bytes:
    """The action lives compressed in an object stream, indexed by a cross-reference
    stream (PDF 1.5): no byte of the file shows it."""
    import zlib

    hidden = b"<</S/JavaScript/JS(app.launchURL('https://example.org'))>>"
    packed = zlib.compress(b"4 0 " + hidden)
    bodies = [
        b"<</Type/Catalog/Pages 2 0 R/OpenAction 4 0 R>>",
        _PAGES,
        _PAGE,
        None,  # object 4: inside object stream 5
        b"<</Type/ObjStm/N 1/First 4/Filter/FlateDecode/Length %d>>stream\n%s\nendstream"
        % (len(packed), packed),
    ]
    out = bytearray(b"%PDF-1.5\n")
    offsets = {}
    for number, body in enumerate(bodies, 1):
        if body is not None:
            offsets[number] = len(out)
            out += b"%d 0 obj%s\nendobj\n" % (number, body)
    offsets[6] = len(out)
    rows = [b"\x00" + (0).to_bytes(4, "big") + b"\xff\xff"]
    for number in range(1, 7):
        if number == 4:
            rows.append(b"\x02" + (5).to_bytes(4, "big") + b"\x00\x00")
        else:
            rows.append(b"\x01" + offsets[number].to_bytes(4, "big") + b"\x00\x00")
    table = b"".join(rows)
    out += (
        b"6 0 obj<</Type/XRef/Size 7/W[1 4 2]/Root 1 0 R/Length %d>>stream\n%s\nendstream\n"
        b"endobj\nstartxref\n%d\n%%%%EOF\n" % (len(table), table, offsets[6])
    )
    return bytes(out)


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose header announces width × height pixels, followed by a few bytes of
    data: what a decompression bomb looks like before it is decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )
