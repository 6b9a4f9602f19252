"""Files in and out: checking an upload before anything is stored, serving a stored file
(SECURITY.md "Input and files").

The type comes from the content (`filetype`), never from the name or the
browser's Content-Type. Images are decoded and re-encoded by Pillow, which
drops EXIF (GPS position, phone model...) and anything hidden after the
pixels; HEIC photos from iPhones become JPEG. PDFs are kept as sent.
"""

from __future__ import annotations

import hashlib
import io
import os
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote

import filetype
import pillow_heif
from flask import Response
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

MAX_FILE_SIZE = 10 * 1024 * 1024
# 48 Mpx phone cameras (8064 × 6048) must pass; anything bigger is refused before decoding.
MAX_IMAGE_PIXELS = 50_000_000
# A photo of a paper document needs no more: bigger ones are scaled down when re-encoded.
MAX_IMAGE_SIDE = 4000
JPEG_QUALITY = 85

# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that; both are refused below.
# (A process-wide setting: no image this big has any business in a commune's portal.)
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
pillow_heif.register_heif_opener()

ACCEPTED_FORMATS = "PDF, JPEG, PNG ou HEIC"
ACCEPT_ATTRIBUTE = (
    "application/pdf,image/jpeg,image/png,image/heic,image/heif,.pdf,.jpg,.jpeg,.png,.heic,.heif"
)

# Detected MIME type -> (Pillow formats it may open as, stored MIME type, stored extension).
IMAGE_TYPES = {
    "image/jpeg": ({"JPEG", "MPO"}, "image/jpeg", "jpg"),
    "image/png": ({"PNG"}, "image/png", "png"),
    "image/heic": ({"HEIF"}, "image/jpeg", "jpg"),
    "image/heif": ({"HEIF"}, "image/jpeg", "jpg"),
}


class UploadError(ValueError):
    """A refused file; the message is French and tells the parent what to do."""


@dataclass(frozen=True)
class CheckedFile:
    """A file ready to store: its bytes, what they are, and their fingerprint."""

    data: bytes
    content_type: str
    extension: str
    original_name: str
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def read_limited(stream, limit: int = MAX_FILE_SIZE) -> bytes:
    """Read at most `limit` + 1 bytes: enough to know a file is too big without reading it all."""
    return stream.read(limit + 1)


def clean_filename(name: str | None, default: str = "document") -> str:
    """The user's filename as harmless metadata: last component, printable, ≤ 255 characters."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip(" .")
    if not name:
        return default
    if len(name) > 255:
        stem, ext = os.path.splitext(name)
        ext = ext[:16]
        name = stem[: 255 - len(ext)] + ext
    return name


def check_upload(data: bytes, filename: str | None) -> CheckedFile:
    """Return the file to store, or raise UploadError with a French message."""
    if not data:
        raise UploadError("Le fichier est vide. Choisissez un autre fichier.")
    if len(data) > MAX_FILE_SIZE:
        raise UploadError(
            "Le fichier dépasse 10 Mo. Choisissez un fichier plus léger "
            "ou photographiez le document avec une résolution plus faible."
        )
    mime = filetype.guess_mime(data)
    original = clean_filename(filename)
    if mime == "application/pdf":
        if not data.startswith(b"%PDF-"):
            raise _wrong_type()
        return _checked(data, "application/pdf", "pdf", original)
    if mime in IMAGE_TYPES:
        formats, content_type, extension = IMAGE_TYPES[mime]
        return _checked(reencode(data, formats, extension), content_type, extension, original)
    raise _wrong_type()


def _wrong_type() -> UploadError:
    return UploadError(
        f"Ce fichier n'est pas un document accepté. Envoyez un fichier {ACCEPTED_FORMATS}."
    )


def _checked(data: bytes, content_type: str, extension: str, original: str) -> CheckedFile:
    return CheckedFile(
        data=data,
        content_type=content_type,
        extension=extension,
        original_name=original,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def reencode(data: bytes, formats: set[str], extension: str) -> bytes:
    """Decode the image and write a fresh JPEG or PNG: pixels (and colour profile) only."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a global someone might flip: truncated files must fail
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    try:
        # Pillow itself raises DecompressionBombError above twice the limit; between the
        # two it only warns, so the size is checked here, before any pixel is decoded.
        # (No warnings.catch_warnings(): it is not thread-safe.)
        with Image.open(io.BytesIO(data)) as source:
            if source.format not in formats:
                raise _wrong_type()
            if source.width * source.height > MAX_IMAGE_PIXELS:
                raise _too_many_pixels()
            source.load()
            icc_profile = source.info.get("icc_profile")
            image = ImageOps.exif_transpose(source)
        image.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
        return _encode(image, extension, icc_profile)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels() from exc
    except UploadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(
            "Cette image est illisible ou incomplète. Reprenez la photo ou choisissez un autre "
            "fichier."
        ) from exc


def _too_many_pixels() -> UploadError:
    return UploadError(
        "Cette image est trop grande (plus de 50 millions de pixels). "
        "Reprenez la photo avec une résolution plus faible."
    )


def _encode(image: Image.Image, extension: str, icc_profile: bytes | None) -> bytes:
    # A new info dict: nothing of the original (EXIF, XMP, comments, text chunks) is carried,
    # except PNG transparency, which is part of the picture.
    transparency = image.info.get("transparency")
    image.info = {}
    wanted = ("RGB", "L") if extension == "jpg" else ("1", "L", "LA", "P", "RGB", "RGBA")
    if image.mode not in wanted:
        image = image.convert("RGB" if extension == "jpg" else "RGBA")
        icc_profile = None  # a profile of the old mode (e.g. CMYK) would now lie
    elif transparency is not None and extension == "png":
        image.info["transparency"] = transparency
    options = {"icc_profile": icc_profile} if icc_profile else {}
    out = io.BytesIO()
    if extension == "jpg":
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, **options)
    else:
        image.save(out, "PNG", optimize=True, **options)
    return out.getvalue()


def download_name(original_name: str, extension: str) -> str:
    """The name offered on download: the parent's name with the stored type's extension."""
    stem, _ = os.path.splitext(clean_filename(original_name))
    return f"{stem or 'document'}.{extension}"


def extension_of(content_type: str) -> str:
    return {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}.get(
        content_type, "bin"
    )


# --- Serving a stored file -------------------------------------------------------------


def file_response(document, stream, *, attachment: bool) -> Response:
    """Send a stored file: exact type, no sniffing, no cache, nothing it could run.

    The file (10 MB at most) is read and closed at once, so no handle outlives the request.
    """
    with stream:
        data = stream.read()
    response = Response(data, mimetype=document.content_type)
    name = download_name(document.original_name, extension_of(document.content_type))
    response.headers["Content-Disposition"] = content_disposition(
        name, "attachment" if attachment else "inline"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """`filename` in plain ASCII for old clients, `filename*` in UTF-8 for the others."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    fallback = "".join(ch if ch.isalnum() or ch in " ._-()" else "_" for ch in ascii_name)
    fallback = fallback.strip(" .") or "document"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
