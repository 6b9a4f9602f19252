"""Reading the families' CSV file (issue 13): bytes in, rows of named cells out.

No database, no request: `read_csv(data)` decodes (UTF-8 with or without BOM, else
Windows-1252), finds the delimiter (`;` or `,`), normalises the header names (case,
accents, spaces) and checks the required columns. Anything it cannot read is an
`ImportFileError` with a French message; nothing is guessed silently.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

from flask import current_app, has_app_context

DEFAULT_MAX_BYTES = 5 * 1024 * 1024
MAX_LINES = 20_000
MAX_CELL = 1000

REQUIRED_COLUMNS = ("reference_famille", "role", "nom", "prenom")
OPTIONAL_COLUMNS = (
    "civilite",
    "date_naissance",
    "email",
    "telephone",
    "adresse",
    "code_postal",
    "ville",
    "ecole",
    "classe",
    "lien",
    "inscriptions",
)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# Other spellings found in spreadsheets, after normalisation.
ALIASES = {
    "reference": "reference_famille",
    "ref_famille": "reference_famille",
    "reference_foyer": "reference_famille",
    "prenoms": "prenom",
    "date_de_naissance": "date_naissance",
    "ne_le": "date_naissance",
    "e_mail": "email",
    "mail": "email",
    "courriel": "email",
    "adresse_e_mail": "email",
    "tel": "telephone",
    "portable": "telephone",
    "commune": "ville",
    "cp": "code_postal",
    "lien_avec_la_famille": "lien",
    "services": "inscriptions",
}


class ImportFileError(ValueError):
    """The file as a whole cannot be read: one French message."""


@dataclass
class Row:
    line: int  # line number in the file, header = 1
    cells: dict[str, str]

    def get(self, name: str) -> str:
        return self.cells.get(name, "")


@dataclass
class ParsedFile:
    rows: list[Row]
    encoding: str  # "UTF-8" or "Windows-1252"
    delimiter: str
    ignored_columns: list[str] = field(default_factory=list)


def max_bytes() -> int:
    if has_app_context():
        return int(current_app.config.get("FAMILY_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))
    return DEFAULT_MAX_BYTES


def too_big_message(limit: int | None = None) -> str:
    limit = limit or max_bytes()
    return (
        f"Le fichier dépasse {limit // (1024 * 1024)} Mo : découpez-le en plusieurs fichiers "
        "(par exemple par ordre alphabétique des familles)."
    )


def normalise_header(name: str) -> str:
    """ "Référence famille " → "reference_famille"; "E-mail" → "e_mail" → "email"."""
    text = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff").lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return ALIASES.get(text, text)


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name): UTF-8 (BOM or not), else Windows-1252; binary refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ImportFileError(
            "Le fichier est en UTF-16 : enregistrez-le en « CSV UTF-8 » ou en CSV "
            "(séparateur point-virgule) depuis votre tableur."
        )
    if b"\x00" in data:
        raise ImportFileError(
            "Ce fichier n'est pas un fichier texte CSV (contenu binaire) : depuis votre "
            "tableur, choisissez « Enregistrer sous » puis le format CSV."
        )
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as error:
        raise ImportFileError(
            "Encodage du fichier non reconnu (ni UTF-8 ni Windows-1252) : enregistrez-le en "
            "« CSV UTF-8 » depuis votre tableur."
        ) from error
    if re.search(r"[\x01-\x08\x0b\x0c\x0e-\x1f]", text):
        raise ImportFileError(
            "Ce fichier n'est pas un fichier texte CSV (caractères de contrôle) : depuis votre "
            "tableur, choisissez « Enregistrer sous » puis le format CSV."
        )
    return text, "Windows-1252"


def _delimiter(header_line: str) -> str:
    try:
        return csv.Sniffer().sniff(header_line, delimiters=";,").delimiter
    except csv.Error:
        return ";" if header_line.count(";") >= header_line.count(",") else ","


def read_csv(data: bytes) -> ParsedFile:
    """The file's rows, each cell stripped, keyed by normalised column name."""
    limit = max_bytes()
    if len(data) > limit:
        raise ImportFileError(too_big_message(limit))
    text, encoding = decode(data)
    if not text.strip():
        raise ImportFileError("Le fichier est vide.")
    header_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = _delimiter(header_line)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as error:
        raise ImportFileError(f"Ligne d'en-tête illisible : {error}.") from error
    names = [normalise_header(cell) for cell in header]
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise ImportFileError(
            "Colonne(s) obligatoire(s) absente(s) : "
            + ", ".join(missing)
            + f". La ligne d'en-tête lue est : {'; '.join(header)[:300]}. "
            "Séparateur attendu : point-virgule ou virgule."
        )
    duplicated = sorted({name for name in names if name and names.count(name) > 1})
    if duplicated:
        raise ImportFileError("Colonne(s) en double : " + ", ".join(duplicated) + ".")
    ignored = [
        cell.strip() for cell, name in zip(header, names, strict=True) if name not in COLUMNS
    ]
    rows: list[Row] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) >= MAX_LINES:
                raise ImportFileError(
                    f"Plus de {MAX_LINES} lignes : découpez le fichier en plusieurs fichiers."
                )
            if len(cells) > len(names):
                extra = cells[len(names) :]
                if any(cell.strip() for cell in extra):
                    raise ImportFileError(
                        f"Ligne {line} : {len(cells)} colonnes pour {len(names)} en-têtes. "
                        "Un séparateur en trop dans une cellule ? Mettez-la entre guillemets."
                    )
            row = {
                name: cell.strip()[:MAX_CELL]
                for name, cell in zip(names, cells, strict=False)
                if name in COLUMNS
            }
            rows.append(Row(line=line, cells=row))
    except csv.Error as error:
        raise ImportFileError(
            f"Ligne {reader.line_num} illisible ({error}) : vérifiez les guillemets."
        ) from error
    if not rows:
        raise ImportFileError("Le fichier ne contient aucune ligne après l'en-tête.")
    return ParsedFile(rows=rows, encoding=encoding, delimiter=delimiter, ignored_columns=ignored)
