"""Tables for the staff as files: CSV for French Excel and XLSX (openpyxl), one place.

Every export goes through here so the same rules hold everywhere:

- a text cell starting with = + - @ (or a tab or carriage return) is prefixed with an
  apostrophe, so a spreadsheet shows it and never evaluates it (SECURITY.md, ASVS 1.2.10);
  numbers stay numbers (a credit of -12.30 is a number, not a formula);
- CSV is UTF-8 with a BOM and `;` separators, streamed row by row: a large export never
  sits in memory;
- XLSX is written by openpyxl's write-only workbook into a temporary file, then sent from
  disk: memory stays flat whatever the number of rows;
- file names are ASCII slugs, never a path.

Money: pass `Decimal` euros (`cents_to_euros`) so the spreadsheet adds them exactly; the
XLSX cell is formatted `# ##0,00 €`.
"""

from __future__ import annotations

import csv
import io
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from flask import Response, send_file, stream_with_context

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("csv", "xlsx")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MIMETYPES = {"csv": "text/csv; charset=utf-8", "xlsx": XLSX_MIMETYPE}
EURO_FORMAT = '#,##0.00" €";-#,##0.00" €"'


def neutralise(value) -> str:
    """A text cell a spreadsheet shows as text, never evaluates."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cents_to_euros(cents: int | None) -> Decimal | None:
    """12345 → Decimal('123.45'): exact in a spreadsheet, never a float."""
    return None if cents is None else (Decimal(cents) / 100).quantize(Decimal("0.01"))


def slug(text: str, fallback: str = "export") -> str:
    """ "Périscolaire — APS" → "periscolaire-aps": for file names."""
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    words = "".join(ch if ch.isalnum() else " " for ch in ascii_text).lower().split()
    return "-".join(words)[:60] or fallback


@dataclass
class Sheet:
    """One table: a title (the XLSX tab), its column headings and its rows.

    `rows` may be a generator: it is read once, as the file is written."""

    title: str
    columns: Sequence[str]
    rows: Iterable[Sequence] = field(default_factory=list)
    # Indexes of the columns holding euros (Decimal), formatted as money in XLSX.
    money_columns: Sequence[int] = ()


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Oui" if value else "Non"
    if isinstance(value, Decimal):
        return f"{value:.2f}".replace(".", ",")
    if isinstance(value, (int, float)):
        return str(value).replace(".", ",")
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return neutralise(value)


def csv_lines(sheet: Sheet) -> Iterator[str]:
    """The CSV text, one line at a time, the BOM first."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def flush() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writerow([neutralise(column) for column in sheet.columns])
    yield "\ufeff" + flush()
    for row in sheet.rows:
        writer.writerow([csv_cell(value) for value in row])
        yield flush()


def csv_bytes(sheet: Sheet) -> bytes:
    return "".join(csv_lines(sheet)).encode("utf-8")


def xlsx_cell(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "Oui" if value else "Non"
    if isinstance(value, (int, float, Decimal, date, datetime)):
        if isinstance(value, datetime) and value.tzinfo is not None:
            return value.replace(tzinfo=None)
        return value
    return neutralise(value)


def write_xlsx(sheets: Sequence[Sheet], target) -> None:
    """Write the sheets into `target` (a path or a binary file object), row by row."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    bold = Font(bold=True)
    for sheet in sheets:
        worksheet = workbook.create_sheet(title=_sheet_title(sheet.title))
        header = []
        for column in sheet.columns:
            cell = WriteOnlyCell(worksheet, value=neutralise(column))
            cell.font = bold
            header.append(cell)
        worksheet.append(header)
        money = set(sheet.money_columns)
        for row in sheet.rows:
            cells = []
            for index, value in enumerate(row):
                cell = WriteOnlyCell(worksheet, value=xlsx_cell(value))
                if index in money:
                    cell.number_format = EURO_FORMAT
                elif isinstance(value, datetime):
                    cell.number_format = "DD/MM/YYYY HH:MM"
                elif isinstance(value, date):
                    cell.number_format = "DD/MM/YYYY"
                cells.append(cell)
            worksheet.append(cells)
    workbook.save(target)


def _sheet_title(title: str) -> str:
    # Excel: at most 31 characters, none of []:*?/\
    cleaned = " ".join("".join(" " if ch in "[]:*?/\\" else ch for ch in title).split())
    return (cleaned or "Feuille")[:31]


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    buffer = io.BytesIO()
    write_xlsx(sheets, buffer)
    return buffer.getvalue()


def table_bytes(fmt: str, sheets: Sequence[Sheet]) -> bytes:
    """The file's bytes (for the worker, which stores it): CSV holds the first sheet only."""
    if fmt == "xlsx":
        return xlsx_bytes(sheets)
    if fmt == "csv":
        return csv_bytes(sheets[0])
    raise ValueError(f"unknown export format {fmt!r}")


def _download_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def send_stored(stream, fmt: str, filename: str) -> Response:
    """A file written earlier by `table_bytes` (an open binary stream) as a download,
    with the same headers and name rules as `send_table`."""
    if fmt not in MIMETYPES:
        raise ValueError(f"unknown export format {fmt!r}")
    response = send_file(
        stream,
        mimetype=MIMETYPES[fmt],
        as_attachment=True,
        download_name=f"{slug(filename)}.{fmt}",
        max_age=0,
    )
    return _download_headers(response)


def send_table(fmt: str, filename: str, sheets: Sequence[Sheet]) -> Response:
    """The sheets as a download: CSV streams the first sheet (a CSV has one table; pass
    one), XLSX is written to a temporary file and sent from disk. `filename` has no
    extension; it is slugged here."""
    name = slug(filename)
    if fmt == "xlsx":
        # Deleted when closed, once the response is sent.
        spool = tempfile.TemporaryFile()  # noqa: SIM115
        write_xlsx(sheets, spool)
        spool.seek(0)
        response = send_file(
            spool, mimetype=XLSX_MIMETYPE, as_attachment=True, download_name=f"{name}.xlsx"
        )
    elif fmt == "csv":
        lines = csv_lines(sheets[0])
        response = Response(
            stream_with_context(line.encode("utf-8") for line in lines),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
        response.charset = "utf-8"
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    return _download_headers(response)


def read_xlsx(data: bytes) -> dict[str, list[list]]:
    """The workbook's sheets as lists of rows (values only): for tests and imports. Rows
    are padded with None to the sheet's widest one (a file may leave empty cells out)."""
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        book = {}
        for worksheet in workbook.worksheets:
            rows = [list(row) for row in worksheet.iter_rows(values_only=True)]
            width = max((len(row) for row in rows), default=0)
            book[worksheet.title] = [row + [None] * (width - len(row)) for row in rows]
        return book
    finally:
        workbook.close()
