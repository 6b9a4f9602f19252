"""Files in and out: checking an upload before anything is stored, serving a stored file
(SECURITY.md "Input and files").

The type comes from the content (`filetype`), never from the name or the
browser's Content-Type. Images are decoded and re-encoded by Pillow, which
drops EXIF (GPS position, phone model...) and anything hidden after the
pixels; HEIC photos from iPhones become JPEG. PDFs are kept as sent, once
`pdf_safety` has found no code or automatic action in them.

Images cannot stall the server: the size is read from the header and checked
before any pixel is decoded (`UPLOAD_MAX_PIXELS`); JPEGs are decoded at the
reduced scale the stored copy needs (`Image.draft`: a 48 Mpx photo decodes to
12 Mpx), and at most `UPLOAD_IMAGE_SLOTS` images are decoded at once per
process, so parallel uploads wait their turn instead of multiplying memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import filetype
import pillow_heif
from flask import Response, current_app, has_app_context
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from citoyens.documents.pdf_safety import UnsafePdf, check_pdf

MAX_FILE_SIZE = 10 * 1024 * 1024
# Defaults of the settings below (app config, else environment, else these).
# 48 Mpx phone cameras (8064 × 6048) must pass; anything bigger is refused before decoding.
UPLOAD_MAX_PIXELS = 50_000_000
# Images decoded at the same time in one process; the others wait up to the timeout.
UPLOAD_IMAGE_SLOTS = 2
UPLOAD_IMAGE_WAIT_SECONDS = 30
# A photo of a paper document needs no more: bigger ones are scaled down when re-encoded.
MAX_IMAGE_SIDE = 4000
JPEG_QUALITY = 85

# Pillow warns above MAX_IMAGE_PIXELS and raises above twice that (before decoding): kept
# equal to the cap (`_limits` follows the setting), so a bomb fails in Image.open already.
# (A process-wide setting: no image this big has any business in a commune's portal.)
Image.MAX_IMAGE_PIXELS = UPLOAD_MAX_PIXELS
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
        try:
            check_pdf(data)
        except UnsafePdf as exc:
            raise UploadError(str(exc)) from None
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


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = UPLOAD_MAX_PIXELS
    slots: int = UPLOAD_IMAGE_SLOTS
    wait_seconds: float = UPLOAD_IMAGE_WAIT_SECONDS


def _setting(name: str, default: int) -> int:
    value = current_app.config.get(name) if has_app_context() else None
    if value in (None, ""):
        value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def image_limits() -> ImageLimits:
    """The settings `UPLOAD_MAX_PIXELS`, `UPLOAD_IMAGE_SLOTS`, `UPLOAD_IMAGE_WAIT_SECONDS`."""
    return ImageLimits(
        max_pixels=_setting("UPLOAD_MAX_PIXELS", UPLOAD_MAX_PIXELS),
        slots=max(1, _setting("UPLOAD_IMAGE_SLOTS", UPLOAD_IMAGE_SLOTS)),
        wait_seconds=_setting("UPLOAD_IMAGE_WAIT_SECONDS", UPLOAD_IMAGE_WAIT_SECONDS),
    )


_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


@contextmanager
def decoding_slot(limits: ImageLimits):
    """One of the process's `limits.slots` places to decode an image, or UploadError when
    none frees up within `limits.wait_seconds`."""
    with _slots_lock:
        slots = _slots.setdefault(limits.slots, threading.BoundedSemaphore(limits.slots))
    if not slots.acquire(timeout=limits.wait_seconds):
        raise UploadError(
            "Le serveur traite beaucoup d'images en ce moment : réessayez dans une minute."
        )
    try:
        yield
    finally:
        slots.release()


def reencode(
    data: bytes, formats: set[str], extension: str, limits: ImageLimits | None = None
) -> bytes:
    """Decode the image and write a fresh JPEG or PNG: pixels (and colour profile) only."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # a global someone might flip: truncated files must fail
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    limits = limits or image_limits()
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    try:
        # Image.open reads the header only. Pillow raises DecompressionBombError above
        # twice the limit; between the two it only warns, so the size is checked here,
        # before any pixel is decoded. (No warnings.catch_warnings(): not thread-safe.)
        with Image.open(io.BytesIO(data)) as source:
            if source.format not in formats:
                raise _wrong_type()
            if source.width * source.height > limits.max_pixels:
                raise _too_many_pixels(limits.max_pixels)
            with decoding_slot(limits):
                # JPEG: decode at 1/2, 1/4 or 1/8 scale when the stored copy is that small.
                source.draft(None, _stored_size(source.size))
                source.load()
                icc_profile = source.info.get("icc_profile")
                # In place: no full-size copy is ever made.
                source.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
                ImageOps.exif_transpose(source, in_place=True)
                return _encode(source, extension, icc_profile)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(limits.max_pixels) from exc
    except UploadError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UploadError(
            "Cette image est illisible ou incomplète. Reprenez la photo ou choisissez un autre "
            "fichier."
        ) from exc


def _stored_size(size: tuple[int, int]) -> tuple[int, int]:
    """The size `thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))` will give (aspect kept)."""
    width, height = size
    scale = min(1.0, MAX_IMAGE_SIDE / max(width, height, 1))
    return max(1, int(width * scale)), max(1, int(height * scale))


def _too_many_pixels(max_pixels: int = UPLOAD_MAX_PIXELS) -> UploadError:
    return UploadError(
        f"Cette image est trop grande (plus de {max(1, max_pixels // 1_000_000)} millions de "
        "pixels). "
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
