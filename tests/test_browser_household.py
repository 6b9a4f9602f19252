"""End to end on a phone, as a parent: "Mon foyer", "Documents", then the requests they open.

Chromium (Debian's, through Playwright) against a live server of this module's own
(its own database, its own upload folder). Skipped when Playwright or Chromium is
missing. `SCREENSHOTS=1` also saves phone-household.png and phone-documents.png to
docs/screenshots/.
"""

from __future__ import annotations

import itertools
import re
from datetime import date

import pytest

from citoyens.documents.rules import today_in_paris
from tests import live
from tests.test_browser import TIMEOUT_MS, Phone, chromium, phone  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

PASSWORD = "des hérons gris au bord de la Loire"
CHILD_FIRST, CHILD_LAST = "Léo", "Bernard"
CHILD = f"{CHILD_FIRST} {CHILD_LAST}"
INSURANCE = "Attestation de responsabilité civile"
PROOF_OF_ADDRESS = "Justificatif de domicile"
REASON = "Léo vit désormais chez son père."
DATETIME_FR = re.compile(r"\d{2}/\d{2}/\d{4} à \d{2}:\d{2}")

_accounts = itertools.count(1)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The live app, with the demo document types and schools, storing uploads in a temp folder.

    The name matters: conftest's `_transaction` leaves tests that use `live_server` alone.
    """
    from citoyens.documents.demo import seed_demo as seed_document_types
    from citoyens.extensions import db
    from citoyens.households.demo import seed_demo as seed_schools

    tmp = tmp_path_factory.mktemp("browser-household")
    with live.serve(tmp, database="citoyens_browser_household") as server:
        server.app.config["UPLOAD_FOLDER"] = str(tmp / "uploads")
        with server.app.app_context():
            seed_document_types()
            seed_schools()  # only the schools: there is no demo household to complete
            db.session.commit()
        yield server


def make_parent(server, first_name: str, last_name: str, children=()) -> str:
    """A confirmed parent with a household and its adult person; returns the e-mail."""
    from citoyens.accounts.models import User
    from citoyens.accounts.passwords import hash_password
    from citoyens.database import utcnow
    from citoyens.extensions import db
    from citoyens.households.models import Household, HouseholdMember, Person

    email = f"parent{next(_accounts)}.{last_name.lower()}@example.org"
    with server.app.app_context():
        household = Household()
        adult = Person(first_name=first_name, last_name=last_name, mobile_phone="+33612345678")
        household.memberships.append(HouseholdMember(person=adult, role="adult"))
        for child_first, birth_date in children:
            child = Person(first_name=child_first, last_name=last_name, birth_date=birth_date)
            household.memberships.append(HouseholdMember(person=child, role="child"))
        db.session.add(
            User(
                email=email,
                password_hash=hash_password(PASSWORD),
                role="parent",
                first_name=first_name,
                last_name=last_name,
                household=household,
                person=adult,
                confirmed_at=utcnow(),
            )
        )
        db.session.commit()
    return email


def log_in(page, url: str, email: str, first_name: str) -> None:
    from playwright.sync_api import expect

    page.goto("/connexion")
    page.get_by_label("Identifiant", exact=True).fill(email)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(url + "/tableau-de-bord")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Bonjour {first_name}")


def nav(page, label: str) -> None:
    live.nav(page, label)


def document_line(page, section: str, label: str):
    """One line of "Mes documents": in the section headed `section`, the document `label`."""
    return (
        page.get_by_role("region", name=section, exact=True)
        .get_by_role("listitem")
        .filter(has=page.get_by_role("heading", name=label, exact=True))
    )


@pytest.fixture
def png_file(tmp_path):
    """A small PNG (a scanned page would be bigger), made by Pillow."""
    from PIL import Image

    path = tmp_path / "attestation.png"
    Image.new("RGB", (120, 160), (250, 250, 245)).save(path, "PNG")
    return path


def test_a_parent_adds_a_child_sends_a_document_and_asks_for_a_removal(
    live_server,
    phone,  # noqa: F811 (the imported fixture)
    png_file,
):
    from playwright.sync_api import expect

    page, url = phone.page, live_server.url
    email = make_parent(live_server, "Camille", CHILD_LAST)
    log_in(page, url, email, "Camille")

    # 1. Mon foyer → Ajouter un enfant.
    nav(page, "Mon foyer")
    expect(page).to_have_url(url + "/mon-foyer")
    children = page.get_by_role("region", name=re.compile(r"^Enfants"))
    expect(children).to_contain_text("Aucun enfant n'est encore enregistré")
    page.get_by_role("link", name="Ajouter un enfant").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Ajouter un enfant")
    page.get_by_label("Prénom", exact=True).fill(CHILD_FIRST)
    page.get_by_label("Nom", exact=True).fill(CHILD_LAST)
    page.get_by_label("Date de naissance", exact=True).fill("2019-05-14")
    page.get_by_label("Garçon", exact=True).check()
    page.get_by_label("École", exact=True).select_option(label="École élémentaire publique")
    page.get_by_label("Classe", exact=True).select_option("CP")
    page.get_by_label("Régime alimentaire", exact=True).select_option(label="Sans porc")
    page.get_by_label("Allergies et précisions", exact=True).fill("Arachides.")
    page.get_by_label("Médecin traitant", exact=True).fill("Dr Petit")
    page.get_by_label("Téléphone du médecin", exact=True).fill("02 61 91 00 03")
    page.get_by_label("J'autorise mon enfant à participer aux sorties").check()
    # Inline validation (htmx) has checked each field as it changed: no error shown.
    expect(page.locator(".field.has-error")).to_have_count(0)
    page.get_by_role("button", name="Enregistrer").click()

    expect(page).to_have_url(re.compile(re.escape(url + "/mon-foyer#membre-") + r"\d+$"))
    expect(page.get_by_role("status").first).to_contain_text(
        f"{CHILD} fait maintenant partie de votre foyer."
    )
    card = children.get_by_role("listitem").filter(
        has=page.get_by_role("heading", name=re.compile(CHILD))
    )
    expect(card).to_have_count(1)
    expect(card).to_contain_text(re.compile(r"Né le\s*14/05/2019"))
    expect(card).to_contain_text("École élémentaire publique · CP")
    expect(card).to_contain_text("Sans porc")
    expect(card).to_contain_text("Arachides.")
    expect(card).to_contain_text("Dr Petit · 02 61 91 00 03")
    phone.screenshot("phone-household")

    # 2. Documents: the child's insurance certificate, sent through htmx.
    nav(page, "Documents")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes documents")
    line = document_line(page, CHILD, INSURANCE)
    expect(line.locator(".badge")).to_have_text("À envoyer")
    line.get_by_label(re.compile(r"^Fichier")).set_input_files(png_file)
    line.get_by_role("button", name=re.compile(r"^Envoyer")).click()
    expect(line.locator(".badge")).to_have_text("En attente")
    expect(line).to_contain_text("Le service va le vérifier")
    expect(line.get_by_role("link", name=re.compile(r"^Télécharger"))).to_be_visible()
    expect(page.locator("#doc-announce")).to_have_text(
        f"Document envoyé : {INSURANCE} de {CHILD_FIRST}."
    )
    expect(page.locator("#doc-summary")).to_contain_text("1 en cours de vérification")
    assert page.url == url + "/mes-documents", "htmx swapped the line, no page load"
    phone.screenshot("phone-documents")

    # 3. Mon foyer → Demander la suppression (in a <details>), with a reason.
    nav(page, "Mon foyer")
    card.get_by_text("Demander la suppression").click()
    card.get_by_label("Motif (facultatif)").fill(REASON)
    card.get_by_role("button", name="Envoyer la demande").click()
    expect(page).to_have_url(url + "/mon-foyer")
    expect(page.get_by_role("status").first).to_contain_text(
        f"Votre demande de retrait de {CHILD} est envoyée."
    )
    expect(card).to_contain_text("Retrait demandé, en attente des services")
    expect(card.get_by_text("Demander la suppression")).to_have_count(0)

    # 4. Accueil: both open requests, just sent.
    nav(page, "Accueil")
    expect(page).to_have_url(url + "/tableau-de-bord")
    requests = page.get_by_role("region", name="Mes demandes")
    removal = requests.get_by_role("listitem").filter(
        has=page.get_by_role("link", name=f"Retirer {CHILD} du foyer")
    )
    review = requests.get_by_role("listitem").filter(
        # The household's one review request: its documents are checked together.
        has=page.get_by_role("link", name="Documents à vérifier", exact=True)
    )
    expect(removal).to_contain_text("Envoyée")
    expect(removal).to_contain_text("Suppression d'un membre du foyer")
    expect(review).to_contain_text("Envoyée")
    expect(review).to_contain_text("Vérification d'un document")
    expect(requests.get_by_role("listitem")).to_have_count(2)

    # 5. The removal request's page, and its dated history.
    removal.get_by_role("link").click()
    expect(page).to_have_url(re.compile(re.escape(url + "/mes-demandes/") + r"\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Retirer {CHILD} du foyer")
    expect(page.locator(".req-facts")).to_contain_text("Envoyée")
    expect(page.locator(".req-facts")).to_contain_text(CHILD)
    history = page.get_by_role("region", name="Historique")
    events = history.get_by_role("listitem")
    expect(events).to_have_count(1)
    expect(events.first).to_contain_text("Demande envoyée")
    expect(events.first).to_contain_text(REASON)
    expect(events.first).to_contain_text("Vous")
    sent_at = events.first.locator("time")
    expect(sent_at).to_have_text(DATETIME_FR)
    expect(sent_at).to_contain_text(today_in_paris().strftime("%d/%m/%Y"))

    assert phone.errors == []


@pytest.fixture
def phone_without_js(chromium, live_server):  # noqa: F811 (the imported fixture)
    """A phone-sized page with JavaScript off: the forms must still work on their own."""
    context = chromium.new_context(
        base_url=live_server.url, java_script_enabled=False, **live.PHONE
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    device = Phone(page)
    page.on("pageerror", lambda exc: device.errors.append(f"pageerror: {exc}"))
    yield device
    context.close()


def test_a_document_can_be_sent_without_javascript(live_server, phone_without_js, png_file):
    from playwright.sync_api import expect

    page, url = phone_without_js.page, live_server.url
    email = make_parent(live_server, "Sami", "Haddad", children=[("Inès", date(2016, 2, 9))])
    log_in(page, url, email, "Sami")

    nav(page, "Documents")
    line = document_line(page, "Pour le foyer", PROOF_OF_ADDRESS)
    expect(line.locator(".badge")).to_have_text("À envoyer")
    line.get_by_label(re.compile(r"^Fichier")).set_input_files(png_file)
    line.get_by_role("button", name=re.compile(r"^Envoyer")).click()

    # A full page again (303), scrolled to the line, which is now pending.
    expect(page).to_have_url(re.compile(re.escape(url + "/mes-documents#doc-") + r"\d+-foyer$"))
    expect(page.get_by_role("status").first).to_contain_text(
        f"Document envoyé : {PROOF_OF_ADDRESS}. Il sera vérifié par le service"
    )
    expect(line.locator(".badge")).to_have_text("En attente")
    expect(line).to_contain_text("Le service va le vérifier")
    # The child's lines are untouched.
    expect(document_line(page, "Inès Haddad", INSURANCE).locator(".badge")).to_have_text(
        "À envoyer"
    )

    assert phone_without_js.errors == []


FOCUS_IN = "(id) => document.getElementById(id).contains(document.activeElement)"


def test_focus_stays_on_the_line_after_an_upload(
    live_server,
    phone,  # noqa: F811 (the imported fixture)
    png_file,
):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    page, url = phone.page, live_server.url
    email = make_parent(live_server, "Yanis", "Moreau", children=[("Lina", date(2018, 6, 1))])
    log_in(page, url, email, "Yanis")
    nav(page, "Documents")
    line = document_line(page, "Lina Moreau", INSURANCE)
    line_id = line.get_attribute("id")
    line.get_by_label(re.compile(r"^Fichier")).set_input_files(png_file)
    line.get_by_role("button", name=re.compile(r"^Envoyer")).click()
    expect(line.locator(".badge")).to_have_text("En attente")
    assert phone.errors == []
    try:  # htmx settles a moment after the swap: a fix may move focus then
        page.wait_for_function(FOCUS_IN, arg=line_id, timeout=1000)
    except PlaywrightTimeout:
        pytest.fail("focus lost: " + page.evaluate("document.activeElement.tagName"))
