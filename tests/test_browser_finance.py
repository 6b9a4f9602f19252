"""End to end on a desktop, as the finance office and a service (issue 14): record a cheque
over two invoices, print its receipt, export the month in XLSX and read it back with
openpyxl, send a closure message and see it in the family's portal.

A live server of this module's own (its own database) with the Chalonnes demo. Skipped
when Playwright or Chromium is missing.
"""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from pypdf import PdfReader

from citoyens.tabular import read_xlsx
from tests import live
from tests.test_browser import TIMEOUT_MS, chromium  # noqa: F401 (fixture)
from tests.test_browser_staff import ADMIN, DESKTOP, log_in, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The name matters: conftest's `_transaction` leaves tests that use `live_server` alone."""
    with live.serve(
        tmp_path_factory.mktemp("browser-finance"), database="citoyens_browser_finance"
    ) as server:
        from citoyens.demo import seed
        from citoyens.extensions import db

        with server.app.test_request_context(base_url=server.url):
            seed()
            db.session.commit()
        yield server


def open_invoices(app, reference: str):
    """The demo family's invoices still to pay, oldest first: (id, number, month, cents)."""
    from sqlalchemy import select

    from citoyens.billing.models import Invoice
    from citoyens.extensions import db
    from citoyens.households.models import Household

    with app.app_context():
        household = db.session.scalar(select(Household).where(Household.external_ref == reference))
        rows = db.session.execute(
            select(Invoice.id, Invoice.number, Invoice.month, Invoice.total_cents)
            .where(
                Invoice.household_id == household.id,
                Invoice.kind == "invoice",
                Invoice.status == "issued",
            )
            .order_by(Invoice.due_on)
        ).all()
        return household.id, rows


def month_total(app, month) -> int:
    from sqlalchemy import func, select

    from citoyens.billing.models import Invoice
    from citoyens.extensions import db

    with app.app_context():
        return db.session.scalar(
            select(func.sum(Invoice.total_cents)).where(
                Invoice.month == month, Invoice.kind == "invoice"
            )
        )


def download(page, link) -> bytes:
    with page.expect_download() as info:
        link.click()
    with open(info.value.path(), "rb") as file:
        return file.read()


def test_cheque_over_two_invoices_receipt_and_the_month_in_xlsx(live_server, chromium):  # noqa: F811
    from playwright.sync_api import expect

    from citoyens.forms import today_in_paris

    household_id, invoices = open_invoices(live_server.app, "DEMO-0001")
    assert len(invoices) >= 2, "the demo family has two invoices to pay"
    first, second = invoices[:2]
    amount = first.total_cents + second.total_cents
    typed = f"{amount // 100} {amount % 100:02d}".replace(" ", ",")

    errors: list[str] = []
    context = chromium.new_context(base_url=live_server.url, accept_downloads=True, **DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    log_in(page, *ADMIN)

    # The first invoice's page → « Enregistrer un paiement », the second ticked too.
    page.goto(f"/admin/factures/{first.id}")
    page.get_by_role("link", name="Enregistrer un paiement").click()
    page.get_by_label("Mode de paiement").select_option(label="Chèque")
    page.get_by_label("Montant reçu (en euros)").fill(typed)
    page.get_by_label("Numéro du chèque ou du titre").fill("0007788")
    page.get_by_label("Banque ou émetteur").fill("Crédit Agricole Anjou")
    for invoice in (first, second):
        page.get_by_label(f"Facture n° {invoice.number}", exact=False).check()
    page.get_by_role("button", name="Enregistrer le paiement").click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Reçu n° R")
    receipt_number = page.get_by_role("heading", level=1).inner_text().split("n° ")[1].strip()
    screenshot(page, "staff-receipt")
    pdf = download(page, page.get_by_role("link", name="Imprimer le reçu (PDF)"))
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    assert receipt_number in text and "0007788" in text
    assert first.number in text and second.number in text

    # Both invoices are paid now.
    _id, still_open = open_invoices(live_server.app, "DEMO-0001")
    assert {row.id for row in still_open}.isdisjoint({first.id, second.id})

    # The month billed, in XLSX: its invoice lines add up to the run's total, to the cent.
    page.goto(f"/admin/comptabilite?mois={second.month:%Y-%m}")
    book = read_xlsx(download(page, page.get_by_role("link", name="Classeur Excel (XLSX)")))
    assert {"Lignes de factures", "Avoirs", "Paiements", "Totaux"} <= set(book)
    lines = book["Lignes de factures"]
    amount_column = lines[0].index("Montant")
    total = sum(Decimal(str(row[amount_column] or 0)) for row in lines[1:])
    assert total == Decimal(month_total(live_server.app, second.month)) / 100

    # The month the cheque was received: its payments sheet has it, by mode.
    page.goto(f"/admin/comptabilite?mois={today_in_paris():%Y-%m}")
    book = read_xlsx(download(page, page.get_by_role("link", name="Classeur Excel (XLSX)")))
    payments = book["Paiements"]
    mode, money = payments[0].index("Code du mode"), payments[0].index("Montant")
    number = payments[0].index("Facture")
    cheques = [
        row
        for row in payments[1:]
        if row[mode] == "cheque" and row[number] in (first.number, second.number)
    ]
    received = sum(Decimal(str(row[money])) for row in cheques)
    assert len(cheques) == 2 and received == Decimal(amount) / 100, payments
    assert not errors
    context.close()


def next_school_weekday(app, service_code: str):
    """An opening day of the service at least two weeks ahead."""
    from datetime import timedelta

    from sqlalchemy import select

    from citoyens.extensions import db
    from citoyens.forms import today_in_paris
    from citoyens.reservations.models import ActivityDay
    from citoyens.services.models import Activity, Service

    with app.app_context():
        return db.session.scalar(
            select(ActivityDay.day)
            .join(Activity, Activity.id == ActivityDay.activity_id)
            .join(Service, Service.id == Activity.service_id)
            .where(
                Service.code == service_code, ActivityDay.day >= today_in_paris() + timedelta(14)
            )
            .order_by(ActivityDay.day)
            .limit(1)
        )


def test_a_closure_message_reaches_the_familys_portal(live_server, chromium):  # noqa: F811
    from playwright.sync_api import expect

    from tests.test_browser_staff import ADMIN as STAFF

    day = next_school_weekday(live_server.app, "aps")
    assert day is not None
    context = chromium.new_context(base_url=live_server.url, **DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    log_in(page, *STAFF)

    page.goto("/admin/calendrier/fermetures")
    page.get_by_label("Service").select_option(label="Accueil périscolaire (APS)")
    page.get_by_label("Premier jour fermé").fill(day.isoformat())  # <input type="date">
    page.get_by_label("Motif").fill("Formation des animateurs")
    page.get_by_role("button", name="Enregistrer la fermeture").click()
    page.locator("#prevenir").get_by_role("link", name="Prévenir les familles").click()
    expect(page.get_by_label("Objet")).to_have_value(re.compile("Fermeture"))
    subject = page.get_by_label("Objet").input_value()
    page.get_by_role("button", name="Voir l'aperçu").click()
    page.get_by_role("button", name=re.compile(r"Envoyer à \d+ famille")).click()
    expect(page.locator("body")).to_contain_text(subject)
    screenshot(page, "staff-message")
    context.close()

    # The demo parent sees it in « Messages », unread, and opens it.
    phone = chromium.new_context(base_url=live_server.url, **live.PHONE)
    phone.set_default_timeout(TIMEOUT_MS)
    page = phone.new_page()
    log_in(page, "parent@example.org", "citoyens-demo-parent")
    page.goto("/mes-messages")
    expect(page.get_by_role("link", name=subject)).to_be_visible()
    page.get_by_role("link", name=subject).click()
    expect(page.locator("main")).to_contain_text("Formation des animateurs")
    phone.close()
