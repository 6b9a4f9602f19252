"""Refuse PDFs that carry code or automatic actions (SECURITY.md "Input and files").

A staff member opens the families' PDFs in a viewer: a PDF that runs JavaScript, launches
a program, opens an embedded file or fires actions on its own is refused, and the family
is told how to send a plain one (print it to PDF).

Two passes:
1. a byte scan for names that no plain document needs (`/JavaScript`, `/Launch`,
   `/EmbeddedFile`): a cheap early refusal for the obvious cases;
2. the real check: pypdf parses the file (object streams decompressed, `#xx` escapes in
   names decoded, so `/J#61vaScript` is `/JavaScript`) and every object reachable from the
   trailer is visited - catalog, names tree, pages, annotations, form fields, outlines,
   actions and what they point at. Stream contents are not decoded: only their
   dictionaries can hold actions.
A file pypdf cannot parse is refused as unreadable: what cannot be inspected is not kept.
"""

from __future__ import annotations

import io
import logging
import re

from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

ACTIVE_CONTENT = (
    "Ce PDF contient du code ou des actions automatiques : enregistrez-le à nouveau en PDF "
    "simple (Imprimer > Enregistrer en PDF) puis envoyez-le."
)
UNREADABLE = (
    "Ce PDF est illisible : enregistrez-le à nouveau (Imprimer > Enregistrer en PDF) "
    "ou choisissez un autre fichier."
)
PROTECTED = (
    "Ce PDF est protégé par un mot de passe : enregistrez-le sans mot de passe "
    "(Imprimer > Enregistrer en PDF) puis envoyez-le."
)

# Whole names followed by a delimiter: long enough never to occur by chance in binary data.
_OBVIOUS = re.compile(rb"/(?:JavaScript|Launch|EmbeddedFiles?)(?=[\s/<>\[\]()%]|$)")

# Keys whose mere presence means code, automatic actions or attached files.
_ACTIVE_KEYS = {
    "/JS",  # JavaScript action's script
    "/JavaScript",  # names tree of document-level scripts
    "/AA",  # additional actions: on open, close, page view, field focus...
    "/EmbeddedFiles",  # names tree of attached files
    "/EF",  # a file specification's embedded file streams
    "/XFA",  # XML forms, which carry their own scripts
    "/RichMedia",
}
# Action types (/S) that run something or open something other than the document.
_ACTIVE_ACTIONS = {
    "/JavaScript",
    "/Launch",
    "/GoToE",
    "/ImportData",
    "/RichMediaExecute",
    "/Rendition",
}
# A plain document of 10 MB has a few thousand objects; far more is refused, not walked.
MAX_OBJECTS = 200_000


# pypdf logs (at WARNING) each oddity it recovers from; a family's odd file is not a server
# problem worth a log line each.
logging.getLogger("pypdf").setLevel(logging.ERROR)


class UnsafePdf(ValueError):
    """The PDF is refused; the message is French and says what to do."""


def check_pdf(data: bytes) -> None:
    """Return if the PDF is a plain document; raise UnsafePdf otherwise."""
    if _OBVIOUS.search(data):
        raise UnsafePdf(ACTIVE_CONTENT)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnsafePdf(PROTECTED)
        _walk(reader.trailer)
    except UnsafePdf:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means "cannot be inspected"
        raise UnsafePdf(UNREADABLE) from exc


def _walk(root) -> None:
    """Visit every dictionary and array reachable from `root`, each indirect object once."""
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            ref = (item.idnum, item.generation)
            if ref in seen:
                continue
            seen.add(ref)
            if len(seen) > MAX_OBJECTS:
                raise UnsafePdf(UNREADABLE)
            item = item.get_object()
        if isinstance(item, DictionaryObject):  # stream objects too (their dictionary)
            _check_dictionary(item)
            stack.extend(item.values())
        elif isinstance(item, ArrayObject):
            stack.extend(item)


def _check_dictionary(obj: DictionaryObject) -> None:
    if any(key in _ACTIVE_KEYS for key in obj):
        raise UnsafePdf(ACTIVE_CONTENT)
    action = obj.get("/S")
    if isinstance(action, NameObject) and action in _ACTIVE_ACTIONS:
        raise UnsafePdf(ACTIVE_CONTENT)
    if obj.get("/Type") == "/EmbeddedFile":  # an attached file's stream, wherever it hangs
        raise UnsafePdf(ACTIVE_CONTENT)
