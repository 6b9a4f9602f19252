"""Invoices and credit notes as PDF (fpdf2), drawn on demand and never stored.

The shipped DejaVu Sans fonts (citoyens/data/fonts, Bitstream Vera licence) carry the
euro sign and the no-break spaces Babel puts in French amounts; the PDF core fonts are
latin-1 only. One document per invoice, or one file for a whole batch (the paper
invoices of a month), each invoice starting on a new page with its own page numbers.
The addressee sits where a French window envelope (fenêtre à droite) shows it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from flask import current_app, has_request_context, request
from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace

from citoyens.billing.models import Invoice
from citoyens.billing.money import euros
from citoyens.billing.rules import days_compact, signed_total
from citoyens.core import settings
from citoyens.documents.uploads import content_disposition
from citoyens.formatting import date_fr, month_fr

FONT = "DejaVu"
GREY = (90, 90, 90)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Issuer:
    """Who issues the invoices: the commune, and where families pay online."""

    name: str  # "Chalonnes-sur-Loire"
    address: str | None = None
    portal_url: str | None = None  # "https://famille.example.org"


def current_issuer() -> Issuer:
    """The commune as set (citoyens.core.settings: name, address) and the portal's
    public address: PUBLIC_URL behind a proxy, else this host."""
    commune = settings.current()
    portal = current_app.config.get("PUBLIC_URL") or (
        request.host_url if has_request_context() else ""
    )
    return Issuer(
        name=commune.name,
        address=commune.address,
        portal_url=portal.rstrip("/") or None,
    )


def pdf_response(body: bytes, name: str):
    """A download, never cached (the invoice is personal data)."""
    response = current_app.response_class(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = content_disposition(name)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def filename(invoice: Invoice) -> str:
    """ "facture-F2026-000042.pdf" or "avoir-A2026-000003.pdf"."""
    prefix = "avoir" if invoice.kind == "credit" else "facture"
    return f"{prefix}-{invoice.number}.pdf"


def title(invoice: Invoice, original_number: str | None = None) -> str:
    if invoice.kind == "credit":
        on = f" (sur la facture n° {original_number})" if original_number else ""
        return f"Avoir n° {invoice.number}{on}"
    return f"Facture n° {invoice.number}"


def _text(value) -> str:
    """Text fit to draw: no control characters (a stray one would print as a box)."""
    return _CONTROL.sub(" ", "" if value is None else str(value)).strip()


def how_to_pay(invoice: Invoice, issuer: Issuer, original_number: str | None = None) -> list[str]:
    """The lines under "Comment payer", in words a parent understands."""
    if invoice.kind == "credit":
        on = f" n° {original_number}" if original_number else ""
        return [f"Cet avoir corrige la facture{on} : vous n'avez rien à payer pour lui."]
    if invoice.status == "cancelled":
        return ["Cette facture a été annulée par un avoir : vous n'avez rien à payer."]
    if invoice.total_cents == 0:
        return ["Vous n'avez rien à payer pour cette facture."]
    if invoice.mandate_id or invoice.status in ("direct_debit", "debited"):
        when = f"le {date_fr(invoice.debit_on)}" if invoice.debit_on else "à l'échéance"
        return [
            f"Prélèvement automatique {when} sur le compte de votre mandat SEPA : "
            "vous n'avez rien à faire."
        ]
    lines = []
    if issuer.portal_url:
        lines.append(
            f"En ligne, par carte bancaire : {issuer.portal_url}, rubrique « Factures » "
            f"(paiement sécurisé PayFiP), référence {invoice.number}."
        )
    else:
        lines.append(
            "En ligne, par carte bancaire : dans votre espace famille, rubrique « Factures » "
            f"(paiement sécurisé PayFiP), référence {invoice.number}."
        )
    lines.append(f"À la Trésorerie, en rappelant la référence {invoice.number}.")
    return lines


class _InvoicePDF(FPDF):
    footer_text = ""
    first_page = 1

    def footer(self):
        self.set_y(-12)
        self.set_font(FONT, size=8)
        self.set_text_color(*GREY)
        self.cell(0, 5, self.footer_text, align="L")
        self.set_x(self.l_margin)
        self.cell(0, 5, f"Page {self.page_no() - self.first_page + 1}", align="R")


def _new_document(issuer: Issuer) -> _InvoicePDF:
    pdf = _InvoicePDF(orientation="P", unit="mm", format="A4")
    fonts = resources.files("citoyens").joinpath("data/fonts")
    with resources.as_file(fonts / "DejaVuSans.ttf") as regular:
        pdf.add_font(FONT, "", regular)
    with resources.as_file(fonts / "DejaVuSans-Bold.ttf") as bold:
        pdf.add_font(FONT, "B", bold)
    pdf.set_author(f"Ville de {issuer.name}")
    pdf.set_creator("Citoyens")
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(15, 15, 15)
    return pdf


def _line(pdf: FPDF, height: float, text: str, *, size=10, bold=False, grey=False, w=0):
    pdf.set_font(FONT, "B" if bold else "", size)
    pdf.set_text_color(*(GREY if grey else (0, 0, 0)))
    pdf.multi_cell(w, height, _text(text), align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(0, 0, 0)


def _draw(pdf: _InvoicePDF, invoice: Invoice, issuer: Issuer, original_number: str | None):
    heading = title(invoice, original_number)
    pdf.footer_text = f"Ville de {issuer.name} · {heading}"
    pdf.add_page()
    pdf.first_page = pdf.page_no()

    # The commune, top left; the document's title and dates, top right.
    _line(pdf, 6, f"Ville de {issuer.name}", size=12, bold=True, w=85)
    for part in (issuer.address or "").splitlines() or [""]:
        if part.strip():
            pdf.set_x(pdf.l_margin)
            _line(pdf, 4.5, part, size=9, grey=True, w=85)
    left_bottom = pdf.get_y()
    pdf.set_xy(105, 15)
    pdf.set_font(FONT, "B", 15)
    pdf.multi_cell(90, 7, _text(heading), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    for fact in (
        f"Émise le {date_fr(invoice.issued_at)}",
        f"Période facturée : {month_fr(invoice.month)}",
    ):
        pdf.set_x(105)
        pdf.multi_cell(90, 5, fact, align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)

    # The addressee, in the envelope's window.
    pdf.set_xy(110, max(45, pdf.get_y() + 6))
    pdf.set_font(FONT, "B", 11)
    pdf.multi_cell(85, 5.5, _text(invoice.addressee), new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(FONT, "", 10)
    for part in (invoice.address or "").splitlines():
        if part.strip():
            pdf.set_x(110)
            pdf.multi_cell(85, 5, _text(part), new_x=XPos.LEFT, new_y=YPos.NEXT)
    address_bottom = pdf.get_y()

    # What the price depends on.
    pdf.set_xy(pdf.l_margin, max(left_bottom + 8, 45))
    qf = f"{invoice.family_quotient} €" if invoice.family_quotient is not None else "non connu"
    facts = [f"Quotient familial : {qf}"]
    if invoice.band_label:
        facts.append(f"Tarif : {invoice.band_label}")
    facts.append(f"Référence à rappeler : {invoice.number}")
    for fact in facts:
        _line(pdf, 5, fact, size=9, w=90)
    pdf.set_y(max(pdf.get_y(), address_bottom) + 8)

    # The lines.
    pdf.set_font(FONT, "", 9)
    with pdf.table(
        col_widths=(26, 40, 50, 22, 14, 28),
        text_align=("LEFT", "LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT"),
        line_height=5,
        padding=1.5,
        repeat_headings=1,
        headings_style=FontFace(emphasis="BOLD", fill_color=(232, 238, 247)),
    ) as table:
        heading_row = table.row()
        for label in ("Enfant", "Activité", "Jours", "Prix unitaire", "Qté", "Montant"):
            heading_row.cell(label)
        for line in invoice.lines:
            row = table.row()
            row.cell(_text(line.child_name))
            row.cell(_text(line.label))
            row.cell(days_compact(line.days))
            row.cell(euros(line.unit_price_cents))
            row.cell(str(line.quantity))
            amount = -abs(line.amount_cents) if invoice.kind == "credit" else line.amount_cents
            row.cell(euros(amount))
    pdf.ln(3)

    total_label = "Montant de l'avoir" if invoice.kind == "credit" else "Total"
    pdf.set_font(FONT, "B", 12)
    pdf.cell(130, 8, f"{total_label} :", align="R")
    pdf.cell(50, 8, euros(signed_total(invoice)), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2)

    if invoice.kind == "invoice" and invoice.total_cents == 0:
        _line(pdf, 7, "Rien à payer : les avoirs couvrent ce mois.", size=12, bold=True)
        pdf.ln(2)
    elif invoice.kind == "invoice" and invoice.status != "cancelled":
        if invoice.mandate_id or invoice.status in ("direct_debit", "debited"):
            due = (
                f"Prélèvement le {date_fr(invoice.debit_on)}"
                if invoice.debit_on
                else "Prélèvement automatique"
            )
        else:
            due = f"À payer avant le {date_fr(invoice.due_on)}"
        _line(pdf, 7, due, size=12, bold=True)
        pdf.ln(2)

    _line(pdf, 6, "Comment payer" if invoice.kind == "invoice" else "À savoir", size=11, bold=True)
    for text in how_to_pay(invoice, issuer, original_number):
        _line(pdf, 5, f"• {text}", size=10)


def render_invoices(
    invoices: Sequence[Invoice], issuer: Issuer, originals: dict[int, str] | None = None
) -> bytes:
    """One PDF, each invoice (lines loaded) from a new page. `originals` gives, for a
    credit note's `credit_for_id`, the number of the invoice it corrects."""
    originals = originals or {}
    pdf = _new_document(issuer)
    if len(invoices) == 1:
        pdf.set_title(title(invoices[0], originals.get(invoices[0].credit_for_id)))
    else:
        pdf.set_title(f"Factures ({len(invoices)}) · Ville de {issuer.name}")
    for invoice in invoices:
        _draw(pdf, invoice, issuer, originals.get(invoice.credit_for_id))
    if not invoices:
        pdf.add_page()
        _line(pdf, 6, "Aucune facture à imprimer.", size=11)
    return bytes(pdf.output())


def render_invoice(invoice: Invoice, issuer: Issuer, original_number: str | None = None) -> bytes:
    originals = {invoice.credit_for_id: original_number} if original_number else None
    return render_invoices([invoice], issuer, originals)
