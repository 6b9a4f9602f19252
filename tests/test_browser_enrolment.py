"""End to end: a parent enrols a child on a phone, an agent accepts it on a desktop.

The demo (citoyens.demo.seed) on a live server of this module's own (its own database,
its own upload folder): Camille Martin enrols Léa at "Restauration scolaire" for
2026-2027, sending the two missing documents in place; Nadia, the agent, accepts the
request in the back office; the parent sees "Acceptée" and has the decision by e-mail.
Skipped when Playwright or Chromium is missing. `SCREENSHOTS=1` also saves
phone-enrolment.png to docs/screenshots/.
"""

from __future__ import annotations

import re

import pytest

from tests import live
from tests.test_browser import TIMEOUT_MS, Phone, chromium, phone  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

PARENT = ("parent@example.org", "citoyens-demo-parent")
AGENT = ("agent@example.org", "citoyens-demo-agent")
CHILD = "Léa Martin"
SERVICE = "Restauration scolaire"
YEAR = "2026-2027"
ACTIVITY = "Repas du midi"
# What the demo family has not sent yet for the canteen: Léa's (its proof of address is
# accepted, and expires soon: the dashboard's "Documents à renouveler").
DOCUMENTS = (
    "Attestation de responsabilité civile",
    "Vaccinations",
)
MESSAGE = "Bienvenue à la cantine, Léa mange au premier service."
DESKTOP = live.DESKTOP


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The live app with the whole demo, storing uploads in a temp folder.

    The name matters: conftest's `_transaction` leaves tests that use `live_server` alone.
    """
    from citoyens.demo import seed
    from citoyens.extensions import db

    tmp = tmp_path_factory.mktemp("browser-enrolment")
    with live.serve(tmp, database="citoyens_browser_enrolment") as server:
        server.app.config["UPLOAD_FOLDER"] = str(tmp / "uploads")
        with server.app.app_context():
            seed()
            db.session.commit()
        yield server


@pytest.fixture
def desktop(chromium, live_server):  # noqa: F811 (the imported fixture)
    """A second, desktop-sized browser context (the agent's), console errors kept."""
    context = chromium.new_context(base_url=live_server.url, **DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    screen = Phone(page)
    page.on(
        "console",
        lambda msg: screen.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: screen.errors.append(f"pageerror: {exc}"))
    yield screen
    context.close()


@pytest.fixture
def png_file(tmp_path):
    """A small PNG (a scanned page would be bigger), made by Pillow."""
    from PIL import Image

    path = tmp_path / "scan.png"
    Image.new("RGB", (120, 160), (250, 250, 245)).save(path, "PNG")
    return path


def log_in(page, url: str, credentials: tuple[str, str], home: str) -> None:
    from playwright.sync_api import expect

    page.goto("/connexion")
    page.get_by_label("Identifiant", exact=True).fill(credentials[0])
    page.get_by_label("Mot de passe", exact=True).fill(credentials[1])
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(url + home)


def nav(page, label: str) -> None:
    live.nav(page, label)


def test_a_parent_enrols_a_child_and_an_agent_accepts_it(
    live_server,
    phone,  # noqa: F811 (the imported fixture)
    desktop,
    png_file,
):
    from playwright.sync_api import expect

    page, url = phone.page, live_server.url
    log_in(page, url, PARENT, "/tableau-de-bord")
    expect(page.get_by_role("heading", level=1)).to_have_text("Bonjour Camille")

    # 1. Inscriptions → Nouvelle inscription: Léa, the canteen, 2026-2027 (htmx on each change).
    nav(page, "Inscriptions")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes inscriptions")
    page.get_by_role("link", name="Nouvelle inscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Nouvelle inscription")
    page.get_by_label("Enfant", exact=True).select_option(label=CHILD)
    page.get_by_label("Service", exact=True).select_option(label=SERVICE)
    page.get_by_label("Année scolaire", exact=True).select_option(label=YEAR)
    suite = page.locator("#inscription-suite")
    expect(suite).to_contain_text(f"Léa remplit les conditions d'accès à {SERVICE} pour {YEAR}.")
    expect(page).to_have_url(
        re.compile(r"/inscriptions/nouvelle\?enfant=\d+&service=\d+&annee=\d+$")
    )

    # 2. The missing documents, sent in place; the section refreshes after each one.
    documents = suite.get_by_role("region", name="3. Documents demandés")
    # (the proof of address expiring soon has a warning of its own)
    missing = documents.locator(".notice-warning", has_text="À fournir")
    expect(
        documents.locator("li.doc-line").filter(
            has=page.get_by_role("heading", name="Justificatif de domicile", exact=True)
        )
    ).to_contain_text("Expire le")
    for label in DOCUMENTS:
        expect(missing).to_contain_text(label)
    for label in DOCUMENTS:
        line = documents.locator("li.doc-line").filter(
            has=page.get_by_role("heading", name=label, exact=True)
        )
        expect(line.locator(".badge")).to_have_text("À envoyer")
        line.get_by_label(re.compile(r"^Fichier")).set_input_files(png_file)
        line.get_by_role("button", name=re.compile(r"^Envoyer")).click()
        # `documents-changed` re-renders the whole section: this one is no longer missing.
        expect(line.locator(".badge")).to_have_text("En attente")
        expect(
            documents.get_by_text(re.compile(rf"^{re.escape(label)}.*: manquant"))
        ).to_have_count(0)
    expect(documents).to_contain_text("Tous les documents demandés sont là.")
    expect(missing).to_have_count(0)

    # 3. Repas du midi, then "Envoyer la demande".
    request_form = suite.get_by_role("region", name="4. Activités")
    request_form.get_by_role("checkbox", name=re.compile(rf"^{ACTIVITY} ·")).check()
    request_form.get_by_role("button", name="Envoyer la demande").click()
    expect(page).to_have_url(re.compile(re.escape(url) + r"/inscriptions/\d+$"))
    enrolment_url = page.url
    expect(page.get_by_role("status").first).to_contain_text(
        "Votre demande d'inscription est envoyée"
    )
    expect(page.get_by_role("heading", level=1)).to_contain_text(SERVICE)
    facts = page.locator(".req-facts")
    expect(facts).to_contain_text("En attente de validation")
    expect(page.locator(".people")).to_contain_text(ACTIVITY)

    # 4. The agent, on a desktop: Inscriptions → Léa's file → Accepter, with a message.
    admin = desktop.page
    log_in(admin, url, AGENT, "/admin/")
    nav(admin, "Inscriptions")
    expect(admin.get_by_role("heading", level=1)).to_have_text("Inscriptions")
    row = (
        admin.get_by_role("row")
        .filter(has_text=SERVICE)
        .filter(has_text=YEAR)
        .filter(has=admin.get_by_role("link", name=CHILD, exact=True))
    )
    expect(row).to_have_count(1)
    expect(row).to_contain_text("En attente de validation")
    expect(row).to_contain_text(ACTIVITY)
    row.get_by_role("link", name=CHILD, exact=True).click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text(f"Inscription de {CHILD}")
    staff_documents = admin.get_by_role("region", name="Documents demandés par le service")
    expect(staff_documents.locator(".badge-pending")).to_have_count(len(DOCUMENTS))
    follow_up = admin.locator("#inscription-suivi")
    follow_up.get_by_label("Message à la famille").fill(MESSAGE)
    follow_up.get_by_role("button", name="Accepter", exact=True).click()
    expect(admin.locator("#annonce-inscription")).to_contain_text(
        "Inscription acceptée. La famille est prévenue par e-mail."
    )
    expect(follow_up.locator(".req-facts")).to_contain_text("Acceptée")
    expect(follow_up.get_by_role("button", name="Accepter")).to_have_count(0)
    expect(follow_up).to_contain_text(MESSAGE)

    # 5. Back on the phone: the enrolment is accepted, and the decision came by e-mail.
    page.reload()
    expect(facts).to_contain_text("Acceptée")
    expect(page.locator(".notice-success")).to_contain_text(
        "Inscription acceptée : Léa a sa place à Restauration scolaire pour 2026-2027."
    )
    assert page.url == enrolment_url
    nav(page, "Inscriptions")
    # The demo's Hugo eats at the canteen too: Léa's section only.
    lea = page.get_by_role("region", name=CHILD)
    item = lea.locator(".req-item").filter(has_text=f"{SERVICE} · {YEAR}")
    expect(item.locator(".badge")).to_have_text("Acceptée")
    lea.get_by_role("link", name=f"{SERVICE} · {YEAR}").click()
    expect(facts).to_contain_text("Acceptée")
    phone.screenshot("phone-enrolment")

    decisions = [
        m
        for m in live_server.mails_to(PARENT[0])
        if m.subject == f"Inscription de Léa — {SERVICE} {YEAR} : acceptée"
    ]
    assert len(decisions) == 1, [m.subject for m in live_server.mails_to(PARENT[0])]
    assert MESSAGE in decisions[0].body
    assert enrolment_url in decisions[0].body

    assert phone.errors == []
    assert desktop.errors == []
