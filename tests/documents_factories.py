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

PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
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
