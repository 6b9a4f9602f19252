"""A counter receipt as PDF (fpdf2, the invoices' fonts and page): who paid, how (mode,
number, bank, date received), the invoices it paid and how much of each, and the credit
kept. Drawn on demand, never stored; a reversed receipt says so in bold."""

from __future__ import annotations

from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from citoyens.billing.counter_list import ReceiptLine
from citoyens.billing.counter_models import CounterReceipt
from citoyens.billing.money import euros

# The invoices' document, fonts and line drawing: one look for every billing PDF.
from citoyens.billing.pdf import FONT, Issuer, _line, _new_document, _text
from citoyens.billing.rules import receipt_label
from citoyens.formatting import date_fr, month_fr


def filename(receipt: CounterReceipt) -> str:
    return f"recu-{receipt.number}.pdf"


def render_receipt(receipt: CounterReceipt, lines: list[ReceiptLine], issuer: Issuer) -> bytes:
    heading = f"Reçu n° {receipt.number}"
    pdf = _new_document(issuer)
    pdf.set_title(heading)
    pdf.footer_text = f"Ville de {issuer.name} · {heading}"
    pdf.add_page()

    _line(pdf, 6, f"Ville de {issuer.name}", size=12, bold=True, w=85)
    for part in (issuer.address or "").splitlines():
        if part.strip():
            pdf.set_x(pdf.l_margin)
            _line(pdf, 4.5, part, size=9, grey=True, w=85)
    pdf.set_xy(105, 15)
    pdf.set_font(FONT, "B", 15)
    pdf.multi_cell(90, 7, heading, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    pdf.set_x(105)
    pdf.multi_cell(90, 5, f"Établi le {date_fr(receipt.recorded_at)}", align="R", new_x=XPos.LEFT)
    pdf.set_xy(pdf.l_margin, 50)

    addressee = lines[0].addressee if lines else ""
    _line(pdf, 7, "Reçu de paiement", size=13, bold=True)
    pdf.ln(1)
    facts = [
        ("Reçu de", addressee),
        ("Montant reçu", euros(receipt.amount_cents)),
        ("Mode de paiement", receipt_label(receipt)),
    ]
    if receipt.note:
        facts.append(("Note", receipt.note))
    for label, value in facts:
        pdf.set_font(FONT, "B", 10)
        pdf.cell(45, 6, f"{label} :")
        pdf.set_font(FONT, "", 10)
        pdf.multi_cell(0, 6, _text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(4)

    _line(pdf, 6, "Factures réglées par ce paiement", size=11, bold=True)
    pdf.set_font(FONT, "", 9.5)
    with pdf.table(
        col_widths=(60, 75, 45),
        text_align=("LEFT", "LEFT", "RIGHT"),
        line_height=5.5,
        padding=1.5,
        headings_style=FontFace(emphasis="BOLD", fill_color=(232, 238, 247)),
    ) as table:
        heading_row = table.row()
        for label in ("Facture", "Mois facturé", "Montant affecté"):
            heading_row.cell(label)
        for line in lines:
            row = table.row()
            row.cell(_text(line.invoice_number))
            row.cell(month_fr(line.month))
            row.cell(euros(line.payment.amount_cents))
    pdf.ln(3)
    pdf.set_font(FONT, "B", 11)
    pdf.cell(145, 7, "Total affecté aux factures :", align="R")
    pdf.cell(35, 7, euros(receipt.allocated_cents), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if receipt.credit_cents:
        pdf.cell(145, 7, "Gardé au crédit de la famille :", align="R")
        pdf.cell(35, 7, euros(receipt.credit_cents), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(1)
        _line(
            pdf,
            5,
            "Le crédit sera déduit de votre prochaine facture, ou remboursé sur demande.",
            size=9,
            grey=True,
        )
    pdf.ln(4)
    if receipt.reversed_at is not None:
        _line(
            pdf,
            7,
            f"Paiement annulé le {date_fr(receipt.reversed_at)} : les factures ci-dessus "
            "sont de nouveau à payer.",
            size=12,
            bold=True,
        )
    return bytes(pdf.output())
