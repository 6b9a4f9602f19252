"""End to end on a phone, as a parent: open an invoice, pay it through the simulated bank
(refused once, then paid), see it paid; sign a SEPA mandate after one mistyped IBAN.

A live server of this module's own (its own database), on the real clock, with the
simulated bank (PAYMENT_BACKEND=simulated). Camille's household has one issued invoice,
September 2030, two lines, 12,30 €, due 31 October 2030: always in the future. Skipped
when Playwright or Chromium is missing. `SCREENSHOTS=1` also saves billing-invoice.png,
billing-paid.png and billing-mandate.png to docs/screenshots/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import pytest

from tests import live
from tests.live import assert_fits_the_phone, nav
from tests.test_browser import TIMEOUT_MS, Phone, chromium, phone  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

PASSWORD = "le héron pêche à Montsoreau avant l'aube"
PARENT_FIRST, LAST_NAME = "Camille", "Mercier"
EMAIL = "camille.mercier@example.org"
HOLDER = "Camille Mercier"

MONTH = date(2030, 9, 1)
DUE_ON = date(2030, 10, 31)
# (label, unit price in cents, quantity): 8,20 € + 4,10 € = 12,30 €.
LINES = [("Repas du midi", 410, 2), ("Accueil du soir", 205, 2)]
TOTAL = "12,30 €"

# La Banque postale's test RIB, typed as a parent copies it from paper: with spaces.
IBAN = "FR76 3000 6000 0112 3456 7890 189"
IBAN_DIGITS = "30006000011234567890189"
BAD_IBAN = "FR76 3000 6000 0112 3456 7890 188"  # one digit changed: the RIB key fails

# Chromium logs CSP violations as console errors already; this says it in our words too.
CSP_REPORTER = """document.addEventListener("securitypolicyviolation", function (event) {
    console.error("CSP violation: " + event.violatedDirective + " " + event.blockedURI);
});"""
# A refused form answers 422 (on purpose): Chromium logs the status of that navigation.
REFUSED_FORM = (
    "console: Failed to load resource: the server responded with a status of 422 "
    "(UNPROCESSABLE ENTITY)"
)


@dataclass
class Family:
    household_id: int
    invoice_id: int
    number: str


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The live app on a database of its own, paying through the simulated bank.

    The name matters: conftest's `_transaction` leaves tests that use `live_server` alone.
    """
    tmp = tmp_path_factory.mktemp("browser-billing")
    with live.serve(tmp, database="citoyens_browser_billing") as server:
        # The default outside production; said here so that a developer's PAYMENT_BACKEND
        # does not send the test to PayFiP. Every use reads the config at request time.
        server.app.config["PAYMENT_BACKEND"] = "simulated"
        yield server


@pytest.fixture(scope="module")
def family(live_server) -> Family:
    """A confirmed parent whose household has one issued invoice to pay."""
    from citoyens.accounts.models import User
    from citoyens.accounts.passwords import hash_password
    from citoyens.billing.models import Invoice
    from citoyens.database import utcnow
    from citoyens.extensions import db
    from citoyens.households.models import Household, HouseholdMember, Person
    from tests.billing_factories import make_invoice

    app = live_server.app
    with app.app_context():
        household = Household()
        adult = Person(first_name=PARENT_FIRST, last_name=LAST_NAME, mobile_phone="+33612345678")
        household.memberships.append(HouseholdMember(person=adult, role="adult"))
        db.session.add(
            User(
                email=EMAIL,
                password_hash=hash_password(PASSWORD),
                role="parent",
                first_name=PARENT_FIRST,
                last_name=LAST_NAME,
                household=household,
                person=adult,
                confirmed_at=utcnow(),
            )
        )
        db.session.commit()
        household_id = household.id
    invoice_id = make_invoice(app, household_id, month=MONTH, lines=LINES, due_on=DUE_ON)
    with app.app_context():
        number = db.session.get(Invoice, invoice_id).number
    return Family(household_id, invoice_id, number)


# --- Helpers ----------------------------------------------------------------------------------


def log_in(page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto("/connexion")
    page.get_by_label("Identifiant", exact=True).fill(EMAIL)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(url + "/tableau-de-bord")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Bonjour {PARENT_FIRST}")


def invoice_status(app, invoice_id: int) -> str:
    from citoyens.billing.models import Invoice
    from citoyens.extensions import db

    with app.app_context():
        return db.session.get(Invoice, invoice_id).status


def attempts(app, invoice_id: int) -> list[tuple[int, str, int]]:
    """(id, status, cents) of the invoice's payment attempts, oldest first."""
    from sqlalchemy import select

    from citoyens.billing.models import PaymentAttempt
    from citoyens.extensions import db

    with app.app_context():
        rows = db.session.execute(
            select(PaymentAttempt.id, PaymentAttempt.status, PaymentAttempt.amount_cents)
            .where(PaymentAttempt.invoice_id == invoice_id)
            .order_by(PaymentAttempt.id)
        )
        return [tuple(row) for row in rows]


def mandates(app, household_id: int) -> list:
    """The household's mandates, detached: (rum, iban, bic, first_month, revoked_at)."""
    from sqlalchemy import select

    from citoyens.billing.models import Mandate
    from citoyens.extensions import db

    with app.app_context():
        return [
            (m.rum, m.iban, m.bic, m.first_month, m.revoked_at)
            for m in db.session.scalars(select(Mandate).where(Mandate.household_id == household_id))
        ]


def subjects(server) -> list[str]:
    return [m.subject for m in server.mails_to(EMAIL)]


def go_to_the_bank(page, number: str):
    """« Payer en ligne » on the invoice page; the simulated bank's page, checked."""
    from playwright.sync_api import expect

    page.get_by_role("button", name=re.compile(r"^Payer en ligne")).click()
    expect(page).to_have_url(re.compile(r"/banque-simulee/paiement/[0-9a-f]{32}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Paiement de {TOTAL}")
    facts = page.locator("dl.req-facts")
    expect(facts.locator("div").filter(has_text="Montant").locator("dd")).to_have_text(TOTAL)
    expect(facts.locator("div").filter(has_text="Objet").locator("dd")).to_have_text(
        f"Facture {number}"
    )
    # The invoice number's letters and digits, "P", the attempt id (payments.bank_reference).
    reference = facts.locator("div").filter(has_text="Référence").locator("dd")
    compact = re.sub(r"[^A-Za-z0-9]", "", number)
    expect(reference).to_have_text(re.compile(rf"^{compact}P\d+$"))
    assert_fits_the_phone(page)
    return reference.inner_text()


# --- The test ---------------------------------------------------------------------------------


def test_a_parent_pays_an_invoice_and_signs_a_mandate_on_a_phone(
    live_server,
    family,
    phone,  # noqa: F811 (the imported fixture)
):
    from playwright.sync_api import expect

    from citoyens.billing.bank_details import IBAN_INVALID
    from citoyens.billing.mandates import add_months, of_month
    from citoyens.forms import today_in_paris

    page, url, app = phone.page, live_server.url, live_server.app
    page.context.add_init_script(CSP_REPORTER)
    invoice_url = f"{url}/factures/{family.invoice_id}"
    log_in(page, url)
    assert subjects(live_server) == []

    # 1. Factures: what is left to pay, and the invoice with its due date.
    nav(page, "Factures")
    expect(page).to_have_url(url + "/factures")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes factures")
    balance = page.get_by_role("region", name="Reste à payer")
    expect(balance.locator(".inv-big")).to_have_text(TOTAL)
    item = page.locator(".inv-item").filter(has_text=family.number)
    expect(item).to_have_count(1)
    expect(item.get_by_role("heading")).to_have_text(re.compile(r"^Septembre 2030"))
    expect(item.locator(".inv-amount")).to_have_text(TOTAL)
    expect(item.locator(".inv-badge")).to_have_text("À payer avant le 31/10/2030")
    assert_fits_the_phone(page)

    # 2. The invoice: its lines, its total, the pay button.
    item.get_by_role("link").click()
    expect(page).to_have_url(invoice_url)
    expect(page.get_by_role("heading", level=1)).to_have_text("Facture de septembre 2030")
    expect(page.locator(".inv-badge").first).to_have_text("À payer avant le 31/10/2030")
    facts = page.locator("dl.inv-facts")
    expect(facts).to_contain_text(family.number)
    expect(facts.locator(".inv-amount")).to_have_text(TOTAL)
    table = page.get_by_role("table", name=f"Détail de la facture n° {family.number}")
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(len(LINES))
    for row, (label, expected) in zip(
        rows.all(),
        [
            ("Repas du midi", ("2 × 4,10 €", "8,20 €")),
            ("Accueil du soir", ("2 × 2,05 €", "4,10 €")),
        ],
        strict=True,
    ):
        expect(row.get_by_role("rowheader")).to_contain_text(label)
        expect(row.get_by_role("rowheader")).to_contain_text("1er, 2 septembre")
        expect(row.locator("td")).to_have_text(list(expected))
    expect(table.locator("tfoot")).to_have_text(re.compile(r"Total\s*12,30\s€"))
    pay_block = page.get_by_role("region", name="Paiement en ligne")
    pay_button = pay_block.get_by_role("button", name=re.compile(r"^Payer en ligne"))
    expect(pay_button).to_have_text(f"Payer en ligne {TOTAL}")
    assert_fits_the_phone(page)
    pay_block.evaluate("(element) => element.scrollIntoView({block: 'end'})")
    phone.screenshot("billing-invoice")

    # 3. The bank refuses: back on the invoice, nothing paid, still to pay.
    first_reference = go_to_the_bank(page, family.number)
    page.get_by_role("button", name="Refuser", exact=True).click()
    expect(page).to_have_url(invoice_url)
    expect(page.locator(".flashes .notice-error")).to_have_text(
        "Paiement refusé par la banque : aucune somme n'a été prélevée."
    )
    expect(page.locator(".inv-badge").first).to_have_text("À payer avant le 31/10/2030")
    expect(page.get_by_role("region", name="Paiement en ligne")).to_be_visible()
    assert invoice_status(app, family.invoice_id) == "issued"
    [(first_id, status, cents)] = attempts(app, family.invoice_id)
    assert (status, cents) == ("refused", 1230)
    assert first_reference.endswith(f"P{first_id}")
    assert subjects(live_server) == []
    assert_fits_the_phone(page)

    # 4. Again, and the bank pays: a new attempt, the invoice paid, one receipt.
    second_reference = go_to_the_bank(page, family.number)
    assert second_reference != first_reference
    page.get_by_role("button", name="Payer", exact=True).click()
    expect(page).to_have_url(invoice_url)
    expect(page.locator(".flashes .notice-success")).to_have_text(
        "Paiement enregistré : merci ! Un reçu vous est envoyé par e-mail."
    )
    today = today_in_paris()
    expect(page.locator(".inv-badge").first).to_have_text(f"Payée le {today:%d/%m/%Y}")
    expect(page.get_by_role("region", name="Comment payer")).to_contain_text(
        "Cette facture est réglée. Merci."
    )
    expect(page.get_by_role("button", name=re.compile(r"^Payer en ligne"))).to_have_count(0)
    received = page.get_by_role("region", name="Paiements reçus")
    expect(received.locator(".inv-amount")).to_have_text(TOTAL)
    assert invoice_status(app, family.invoice_id) == "paid"
    assert [(s, c) for _, s, c in attempts(app, family.invoice_id)] == [
        ("refused", 1230),
        ("paid", 1230),
    ]
    receipts = live_server.mails_to(EMAIL)
    assert [m.subject for m in receipts] == [f"Paiement reçu : facture {family.number}"]
    assert receipts[0].recipients == [EMAIL]
    assert family.number in receipts[0].body and invoice_url in receipts[0].body
    assert_fits_the_phone(page)
    phone.screenshot("billing-paid")

    # Factures: nothing left to pay.
    nav(page, "Factures")
    expect(balance.locator(".inv-big")).to_have_text("0,00 €")
    expect(balance).to_contain_text("Vous n'avez rien à payer pour le moment.")
    expect(item.locator(".inv-badge")).to_have_text(f"Payée le {today:%d/%m/%Y}")
    expect(page.get_by_role("region", name="Mes paiements")).to_contain_text(family.number)
    assert_fits_the_phone(page)

    # 5. Prélèvement automatique, from the Factures page.
    page.get_by_role("link", name="Mettre en place le prélèvement automatique").click()
    expect(page).to_have_url(url + "/prelevement")
    expect(page.get_by_role("heading", level=1)).to_have_text("Prélèvement automatique")
    # The next invoice to be issued: last month's (the household has none for it).
    first_month = of_month(add_months(today.replace(day=1), -1))
    expect(page.locator("#premiere-facture")).to_contain_text(
        f"à partir de la facture {first_month}"
    )
    assert_fits_the_phone(page)

    def fill_the_mandate(iban: str) -> None:
        page.get_by_label("Titulaire du compte", exact=True).fill(HOLDER)
        page.get_by_label("IBAN", exact=True).fill(iban)
        page.get_by_label("J'ai lu le mandat ci-dessus et j'autorise ce prélèvement.").check()
        page.get_by_label("Mot de passe de votre espace famille", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Signer le mandat").click()

    # A mistyped IBAN: the error is the field's, nothing is signed, the IBAN is not echoed.
    fill_the_mandate(BAD_IBAN)
    expect(page).to_have_url(url + "/prelevement/signer")
    summary = page.get_by_role("alert").filter(has_text="Le formulaire contient")
    expect(summary).to_contain_text("Le formulaire contient 1 erreur.")
    expect(summary.get_by_role("link")).to_have_text(f"IBAN : {IBAN_INVALID}")
    iban = page.get_by_label("IBAN", exact=True)
    expect(iban).to_have_attribute("aria-invalid", "true")
    expect(iban).to_have_accessible_description(re.compile(re.escape(IBAN_INVALID) + "$"))
    expect(page.locator("#iban-erreur")).to_have_text(IBAN_INVALID)
    expect(iban).to_have_value("")
    expect(page.get_by_label("Titulaire du compte", exact=True)).to_have_value(HOLDER)
    assert "3456 7890 188" not in page.content()
    assert mandates(app, family.household_id) == []
    assert len(live_server.mails_to(EMAIL)) == 1
    assert_fits_the_phone(page)

    # The right IBAN, with its spaces: signed, shown masked with its RUM and first month.
    fill_the_mandate(IBAN)
    expect(page).to_have_url(url + "/prelevement")
    [(rum, stored_iban, bic, stored_month, revoked_at)] = mandates(app, family.household_id)
    assert stored_iban == "FR76" + IBAN_DIGITS and revoked_at is None
    expect(page.locator(".flashes .notice-success")).to_have_text(
        f"Votre mandat de prélèvement est signé (référence {rum}). Il s'applique à partir "
        f"de la facture {of_month(stored_month)}. Un e-mail de confirmation vous a été envoyé."
    )
    assert of_month(stored_month) == first_month
    card = page.get_by_role("region", name="Votre mandat de prélèvement")
    facts = card.locator("dl.sepa-facts")

    def fact(term: str):
        return facts.locator("div").filter(has=page.locator("dt", has_text=term)).locator("dd")

    expect(fact("Titulaire")).to_have_text(HOLDER)
    expect(fact("IBAN")).to_contain_text("FR76 •••• •••• •••• •••• •••• 189")
    expect(fact("IBAN")).to_contain_text("masqué, se terminant par 189")
    expect(fact("BIC")).to_have_text(bic)
    expect(fact("Référence du mandat (RUM)")).to_have_text(rum)
    expect(fact("Signé le")).to_have_text(f"{today:%d/%m/%Y}")
    expect(card).to_contain_text(f"Il s'applique à partir de la facture {first_month}.")
    expect(page.get_by_role("region", name="Révoquer le mandat")).to_be_visible()
    html = page.content()
    assert IBAN_DIGITS not in html and IBAN not in html
    mails = live_server.mails_to(EMAIL)
    assert [m.subject for m in mails][1:] == ["Votre mandat de prélèvement SEPA est signé"]
    mandate_mail = mails[1]
    assert rum in mandate_mail.body and first_month in mandate_mail.body
    assert IBAN_DIGITS not in mandate_mail.body and IBAN_DIGITS not in (mandate_mail.html or "")
    assert_fits_the_phone(page)
    card.evaluate("(element) => element.scrollIntoView({block: 'start'})")
    phone.screenshot("billing-mandate")

    # Factures says so too.
    nav(page, "Factures")
    expect(page.get_by_role("link", name="Gérer le prélèvement automatique")).to_be_visible()
    assert IBAN_DIGITS not in page.content()

    # The one 422 is the mistyped IBAN's; anything else (a CSP violation) fails.
    assert phone.errors.count(REFUSED_FORM) == 1, phone.errors
    assert [error for error in phone.errors if error != REFUSED_FORM] == []
