"""One activity day's list for the staff: a CSV for French Excel and a printable PDF; and
the labels of a booking's status and attendance that every attendance export shares
(the period export, `period_exports.py`, uses them too).

The CSV goes through `citoyens.tabular` (UTF-8 with a BOM, `;` separators, formulas
neutralised: SECURITY.md, ASVS 1.2.10). The PDF uses fpdf2's core Helvetica: latin-1
only, so text is first folded into latin-1 (typographic quotes, œ, dashes...).
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from citoyens.forms import PARIS
from citoyens.reservations.models import ATTENDANCES, BOOKING_STATUSES, Booking
from citoyens.reservations.staff import DaySheet, day_label
from citoyens.tabular import Sheet, csv_bytes

CSV_COLUMNS = ["Nom", "Prénom", "Classe", "Allergies", "PAI", "Régime", "Statut", "Présence"]
LATE_CANCELLATION = "Annulé hors délai"


def status_label(status: str, late: bool = False) -> str:
    """ "Réservé", "Liste d'attente", "Présent sans réservation", "Annulé hors délai"..."""
    if status == "cancelled" and late:
        return LATE_CANCELLATION
    return BOOKING_STATUSES.get(status, status)


def attendance_label(attendance: str | None) -> str:
    """ "Présent", "Absent", "Absent justifié", or "" when not pointed."""
    return ATTENDANCES.get(attendance or "", "")


def export_name(sheet: DaySheet, extension: str) -> str:
    """ "presences-aps-matin-2030-09-02.pdf": ASCII, no path, no surprise."""
    ascii_name = (
        unicodedata.normalize("NFKD", sheet.activity.name).encode("ascii", "ignore").decode()
    )
    slug = "-".join("".join(ch if ch.isalnum() else " " for ch in ascii_name).lower().split())
    return f"presences-{slug[:60] or 'activite'}-{sheet.day.day.isoformat()}.{extension}"


def _lines(sheet: DaySheet) -> list[Booking]:
    return sheet.present + sheet.waiting


def day_table(sheet: DaySheet) -> Sheet:
    """The day's list as a table: the children expected, then the waiting list."""
    rows = []
    for booking in _lines(sheet):
        child = booking.child
        rows.append(
            [
                child.last_name,
                child.first_name,
                child.class_level,
                child.allergies,
                bool(child.pai),
                child.diet,
                status_label(booking.status, booking.late),
                attendance_label(booking.attendance),
            ]
        )
    return Sheet("Liste d'appel", CSV_COLUMNS, rows)


def day_csv(sheet: DaySheet) -> bytes:
    return csv_bytes(day_table(sheet))


# --- PDF --------------------------------------------------------------------------------------

LATIN1_FOLDS = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u0153": "oe",
        "\u0152": "OE",
        "\u20ac": "EUR",
        "\u202f": " ",
        "\u2009": " ",
    }
)


def latin1(text) -> str:
    """Text the core fonts can draw: common typography folded, the rest as "?"."""
    value = unicodedata.normalize("NFC", "" if text is None else str(text))
    value = value.translate(LATIN1_FOLDS)
    value = "".join(ch if ch.isprintable() else " " for ch in value)
    return value.encode("latin-1", "replace").decode("latin-1")


def flags(child) -> str:
    parts = []
    if child.allergies:
        parts.append(f"ALLERGIE : {child.allergies.strip()}")
    if child.pai:
        parts.append("PAI")
    if child.diet:
        parts.append(f"Régime : {child.diet}")
    return " ; ".join(parts)


class _ListPDF(FPDF):
    footer_text = ""

    def footer(self):
        self.set_y(-12)
        self.set_font("Helvetica", size=8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 5, latin1(self.footer_text), align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no()}/{{nb}}", align="R")


def day_pdf(sheet: DaySheet, commune_name: str, printed_at: datetime) -> bytes:
    """A4 list to print: commune, activity, date, children with class and health flags,
    an empty "Présent" column to tick; the waiting list after."""
    activity = sheet.activity
    pdf = _ListPDF(orientation="P", unit="mm", format="A4")
    pdf.footer_text = f"{commune_name} · imprimé le {printed_at.astimezone(PARIS):%d/%m/%Y à %H:%M}"
    pdf.set_title(latin1(f"{activity.name} - {sheet.day.day:%d/%m/%Y}"))
    pdf.set_author(latin1(commune_name))
    pdf.set_creator("Citoyens")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(15, 15, 15)
    pdf.add_page()

    pdf.set_font("Helvetica", size=10)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(0, 5, latin1(f"Ville de {commune_name}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(0, 8, latin1(activity.name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("Helvetica", size=12)
    start, end = activity.start_time, activity.end_time
    pdf.cell(
        0,
        7,
        latin1(
            f"{day_label(sheet.day.day).capitalize()} · {start:%H:%M}-{end:%H:%M}"
            f" · {activity.service.name}"
        ),
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    summary = f"{sheet.day.booked} réservé(s) sur {sheet.day.capacity} places"
    if sheet.walk_in_count:
        summary += f" · {sheet.walk_in_count} sans réservation"
    if sheet.waiting:
        summary += f" · {len(sheet.waiting)} en liste d'attente"
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, latin1(summary), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if sheet.day.closed:
        pdf.set_font("Helvetica", "B", 11)
        reason = f" : {sheet.day.closed_reason}" if sheet.day.closed_reason else ""
        pdf.cell(0, 7, latin1(f"FERMÉ{reason}"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(3)

    if sheet.present:
        pdf.set_font("Helvetica", size=10)
        with pdf.table(
            col_widths=(58, 18, 80, 24),
            text_align=("LEFT", "LEFT", "LEFT", "CENTER"),
            line_height=8,
            repeat_headings=1,
        ) as table:
            heading = table.row()
            for title in ("Enfant", "Classe", "Allergies, PAI, régime", "Présent"):
                heading.cell(latin1(title))
            for booking in sheet.present:
                child = booking.child
                name = f"{child.last_name.upper()} {child.first_name}"
                if booking.status == "walk_in":
                    name += " (sans réservation)"
                row = table.row()
                row.cell(latin1(name))
                row.cell(latin1(child.class_level or ""))
                row.cell(latin1(flags(child)))
                row.cell("")
    else:
        pdf.set_font("Helvetica", "I", 11)
        pdf.cell(
            0, 7, latin1("Aucun enfant réservé ce jour-là."), new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    if sheet.waiting:
        pdf.ln(4)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 7, latin1("Liste d'attente"), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("Helvetica", size=10)
        for rank, booking in enumerate(sheet.waiting, start=1):
            child = booking.child
            text = f"{rank}. {child.last_name.upper()} {child.first_name}"
            if child.class_level:
                text += f" ({child.class_level})"
            if flags(child):
                text += f" - {flags(child)}"
            pdf.multi_cell(0, 6, latin1(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
