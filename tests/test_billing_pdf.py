"""Invoices as PDF: drawn with the shipped DejaVu fonts (the euro sign prints), downloaded
as an attachment that is never cached, and the month's batch of paper invoices."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from importlib import resources

import pytest

from citoyens.billing import pdf, rules
from citoyens.billing.models import Invoice, InvoiceLine
from citoyens.core.models import Commune
from citoyens.extensions import db
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import post
from tests.factories import make_user
from tests.test_billing_views import (
    SEPT,
    bare_households,
    make_credit,
    number_of,
    plain,
    set_invoice,
)

needs_poppler = pytest.mark.skipif(
    not (shutil.which("pdftotext") and shutil.which("pdfinfo")),
    reason="poppler-utils (pdftotext, pdfinfo) not installed",
)


@pytest.fixture(autouse=True)
def frozen_today(monkeypatch):
    monkeypatch.setattr(rules, "today", lambda: date(2030, 11, 20))


def pdf_text(tmp_path, data: bytes) -> str:
    path = tmp_path / "document.pdf"
    path.write_bytes(data)
    result = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, timeout=30
    )
    return plain(result.stdout.decode("utf-8"))


def pdf_pages(tmp_path, data: bytes) -> int:
    path = tmp_path / "pages.pdf"
    path.write_bytes(data)
    info = subprocess.run(
        ["pdfinfo", str(path)], capture_output=True, check=True, timeout=30
    ).stdout.decode()
    return int(next(line for line in info.splitlines() if line.startswith("Pages:")).split()[-1])


def logged_in(app, account):
    client = app.test_client()
    post(client, "/connexion", {"email": account.email, "password": account.password})
    return client


def test_fonts_ship_with_their_licence():
    fonts = resources.files("citoyens").joinpath("data/fonts")
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        assert fonts.joinpath(name).read_bytes()[:4] == b"\x00\x01\x00\x00", name
    licence = fonts.joinpath("LICENSE").read_text("utf-8")
    assert "Bitstream" in licence and "fonts-dejavu-core" in licence


def test_parent_downloads_the_invoice_as_an_attachment(app, parent, tmp_path):
    invoice = make_invoice(app, parent.household_id, month=SEPT, lines=[("Repas", 410, 3)])
    response = logged_in(app, parent).get(f"/factures/{invoice}.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    number = number_of(app, invoice)
    disposition = response.headers["Content-Disposition"]
    assert (
        disposition.startswith("attachment;") and f'filename="facture-{number}.pdf"' in disposition
    )
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@needs_poppler
def test_invoice_pdf_reads_in_french_with_the_euro_sign(app, parent, tmp_path):
    with app.app_context():
        db.session.add(Commune(name="Chalonnes-sur-Loire", address="Place de l'Hôtel de Ville"))
        db.session.commit()
    invoice = make_invoice(
        app, parent.household_id, month=SEPT, lines=[("Restauration scolaire", 410, 3)]
    )
    set_invoice(
        app,
        invoice,
        addressee="Camille Martin",
        address="12 rue des Lilas\n49290 Chalonnes-sur-Loire",
        family_quotient=850,
        band_label="Tranche 3 (QF 801 à 1 100 €)",
        due_on=date(2030, 10, 31),
    )
    text = pdf_text(tmp_path, logged_in(app, parent).get(f"/factures/{invoice}.pdf").data)
    number = number_of(app, invoice)
    assert f"Facture n° {number}" in text
    assert "Ville de Chalonnes-sur-Loire" in text and "Place de l'Hôtel de Ville" in text
    assert "Période facturée : septembre 2030" in text
    assert "Camille Martin" in text and "12 rue des Lilas" in text
    assert "Quotient familial : 850 €" in text and "Tranche 3 (QF 801 à 1 100 €)" in text
    assert "Restauration scolaire" in text and "1er, 2, 3 septembre" in text
    assert "4,10 €" in text and "12,30 €" in text
    assert "À payer avant le 31/10/2030" in text
    assert f"référence {number}" in text and "Trésorerie" in text
    assert "http://localhost" in text  # the portal's address, to pay online


@needs_poppler
def test_credit_note_pdf_names_the_invoice_and_is_negative(app, parent, tmp_path):
    invoice = make_invoice(app, parent.household_id, month=SEPT)
    credit = make_credit(app, invoice, 350, stored_negative=False)
    response = logged_in(app, parent).get(f"/factures/{credit}.pdf")
    assert (
        f'filename="avoir-{number_of(app, credit)}.pdf"' in response.headers["Content-Disposition"]
    )
    text = pdf_text(tmp_path, response.data)
    assert f"Avoir n° {number_of(app, credit)} (sur la facture n° {number_of(app, invoice)})" in (
        " ".join(text.split())
    )
    assert "-3,50 €" in text and "rien à payer" in text


@needs_poppler
def test_direct_debit_pdf_gives_the_debit_date(app, parent, tmp_path):
    mandate = make_mandate(app, parent.household_id)
    invoice = make_invoice(
        app, parent.household_id, month=SEPT, status="direct_debit", mandate_id=mandate
    )
    set_invoice(app, invoice, debit_on=date(2030, 10, 15))
    text = pdf_text(tmp_path, logged_in(app, parent).get(f"/factures/{invoice}.pdf").data)
    assert "Prélèvement le 15/10/2030" in text
    assert "Trésorerie" not in text and "FR7630006000011234567890189" not in text


@needs_poppler
def test_large_amounts_and_many_lines_render(app, tmp_path):
    invoice = Invoice(
        kind="invoice",
        number="F2030-000001",
        month=SEPT,
        due_on=date(2030, 10, 31),
        total_cents=123_456_789,
        status="issued",
        addressee="Famille Œuvre « Ĳssel » — 𝔘nicode 🙂",
        address=None,
    )
    for n in range(40):
        invoice.lines.append(
            InvoiceLine(
                kind="booked",
                child_name=f"Enfant {n}",
                label="Accueil de loisirs (journée complète avec repas)",
                unit_price_cents=3_086_419,
                quantity=1,
                amount_cents=3_086_419,
                days="2030-09-02",
            )
        )
    with app.test_request_context():
        data = pdf.render_invoice(invoice, pdf.Issuer("Chalonnes-sur-Loire"))
    assert data.startswith(b"%PDF")
    assert pdf_pages(tmp_path, data) >= 2
    text = pdf_text(tmp_path, data)
    assert "1 234 567,89 €" in text and "30 864,19 €" in text
    assert "Page 2" in text


@needs_poppler
def test_paper_batch_prints_each_paper_invoice_of_the_month(app, admin, tmp_path):
    households = bare_households(app, 5)
    paper = [make_invoice(app, h, month=SEPT, paperless=False) for h in households[:3]]
    online = make_invoice(app, households[3], month=SEPT, paperless=True)
    other_month = make_invoice(app, households[4], month=date(2030, 10, 1), paperless=False)
    # An agent of no service prints none of them (services.scope).
    loner = logged_in(app, make_user(app, role="staff"))
    assert "Imprimer les factures papier" not in plain(
        loner.get("/admin/factures?mois=2030-09").get_data(as_text=True)
    )
    client = logged_in(app, admin)
    assert "Imprimer les factures papier (3, PDF)" in plain(
        client.get("/admin/factures?mois=2030-09").get_data(as_text=True)
    )
    response = client.get("/admin/factures/papier.pdf?mois=2030-09")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert 'filename="factures-papier-2030-09.pdf"' in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    assert pdf_pages(tmp_path, response.data) >= len(paper)
    text = pdf_text(tmp_path, response.data)
    for invoice in paper:
        assert f"Facture n° {number_of(app, invoice)}" in text
    assert number_of(app, online) not in text and number_of(app, other_month) not in text


def test_empty_paper_batch_is_still_a_pdf(app, staff):
    response = logged_in(app, staff).get("/admin/factures/papier.pdf?mois=2030-09")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")


def test_staff_invoice_pdf_and_parents_only_their_own(app, parent):
    invoice = make_invoice(app, parent.household_id, month=SEPT)
    other = make_user(app, role="parent")
    assert logged_in(app, other).get(f"/factures/{invoice}.pdf").status_code == 404
    # An agent of no service: not theirs (services.scope); an administrator reads it.
    loner = make_user(app, role="staff")
    assert logged_in(app, loner).get(f"/admin/factures/{invoice}.pdf").status_code == 404
    agent = make_user(app, role="admin")
    response = logged_in(app, agent).get(f"/admin/factures/{invoice}.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert logged_in(app, agent).get("/admin/factures/999999.pdf").status_code == 404
