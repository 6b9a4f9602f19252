"""End to end on a desktop, as the commune's administrator on the first day (issue 13):
import the sample file of families (checked first, nothing written, then for real), find
one of them, create an agent's account for the canteen only, and see the back office as
that agent sees it.

A live server of this module's own (its own database) with the Chalonnes demo. Skipped
when Playwright or Chromium is missing. `SCREENSHOTS=1` also saves staff-import.png and
staff-agent.png to docs/screenshots/.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests import live
from tests.test_browser import TIMEOUT_MS, chromium  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser

SAMPLE = Path(__file__).resolve().parent.parent / "docs" / "import-familles.csv"
ADMIN = ("admin@example.org", "citoyens-demo-admin")
AGENT_EMAIL = "cantine.agent@example.org"
AGENT_PASSWORD = "la cantine ouvre à midi pile"
DESKTOP = {"viewport": {"width": 1280, "height": 900}, "locale": "fr-FR"}


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The live app on its own database, with the demo loaded.

    The name matters: conftest's `_transaction` leaves tests that use `live_server` alone.
    """
    with live.serve(
        tmp_path_factory.mktemp("browser-staff"), database="citoyens_browser_staff"
    ) as server:
        from citoyens.demo import seed
        from citoyens.extensions import db

        with server.app.test_request_context(base_url=server.url):
            seed()
            db.session.commit()
        yield server


def household_count(app) -> int:
    from sqlalchemy import func, select

    from citoyens.extensions import db
    from citoyens.households.models import Household

    with app.app_context():
        return db.session.scalar(select(func.count(Household.id)))


def screenshot(page, name: str) -> None:
    if os.environ.get("SCREENSHOTS") == "1":
        live.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=live.SCREENSHOTS / f"{name}.png", full_page=True)


def log_in(page, email: str, password: str) -> None:
    page.goto("/connexion")
    page.get_by_label("Identifiant", exact=True).fill(email)
    page.get_by_label("Mot de passe", exact=True).fill(password)
    page.get_by_role("button", name="Se connecter").click()


def test_import_the_sample_then_give_an_agent_the_canteen(live_server, chromium):  # noqa: F811
    from playwright.sync_api import expect

    errors: list[str] = []
    context = chromium.new_context(base_url=live_server.url, **DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    log_in(page, *ADMIN)
    expect(page).to_have_url(re.compile(r"/admin/?$"))

    # Import: checked first, nothing written.
    before = household_count(live_server.app)
    page.goto("/admin/familles")
    page.get_by_role("link", name=re.compile("Importer des familles")).click()
    page.get_by_label("Fichier CSV des familles").set_input_files(str(SAMPLE))
    page.get_by_role("button", name="Vérifier le fichier").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import des familles : vérification")
    expect(page.get_by_text("Rien n'est encore enregistré.")).to_be_visible()
    assert household_count(live_server.app) == before
    screenshot(page, "staff-import")

    # Then for real.
    page.get_by_role("button", name="Importer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import des familles terminé")
    assert household_count(live_server.app) == before + 11

    # Find a family of the file.
    page.goto("/admin/familles")
    page.get_by_label("Rechercher une famille").fill("Garnier")
    page.get_by_role("button", name="Rechercher").click()
    row = page.get_by_role("row", name=re.compile("Garnier"))
    expect(row).to_have_count(1)
    row.get_by_role("link", name="F0010").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Famille F0010")
    expect(page.locator("main")).to_contain_text("Garnier")
    expect(page.locator("main")).to_contain_text("Arthur")

    # An agent for the canteen only: the account, the e-mailed link, the password.
    page.goto("/admin/equipe/nouveau")
    page.get_by_label("Prénom", exact=True).fill("Inès")
    page.get_by_label("Nom", exact=True).fill("Cantine")
    page.get_by_label("Adresse e-mail", exact=True).fill(AGENT_EMAIL)
    page.get_by_label("Restauration scolaire").check()
    page.get_by_role("button", name="Créer le compte et envoyer le lien").click()
    expect(page.locator("main")).to_contain_text(AGENT_EMAIL)
    context.close()

    [welcome] = live_server.mails_to(AGENT_EMAIL)
    link = live_server.link_in(welcome, "/")
    agent_context = chromium.new_context(base_url=live_server.url, **DESKTOP)
    agent_context.set_default_timeout(TIMEOUT_MS)
    agent = agent_context.new_page()
    agent.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    agent.goto(link)
    agent.get_by_label("Nouveau mot de passe", exact=True).fill(AGENT_PASSWORD)
    agent.get_by_role("button", name=re.compile("mot de passe|Activer", re.I)).first.click()
    log_in(agent, AGENT_EMAIL, AGENT_PASSWORD)
    expect(agent).to_have_url(re.compile(r"/admin/?$"))

    # What the canteen's agent sees: the canteen, not the other services; no staff pages.
    agent.goto("/admin/reservations")
    overview = agent.locator("main")
    expect(overview).to_contain_text("Repas du midi")
    expect(overview).not_to_contain_text("Accueil du soir")
    expect(overview).not_to_contain_text("Mercredi journée")
    # Families: those enrolled at the canteen (Garnier), not a Goulidons-only one (Guérin).
    agent.goto("/admin/familles")
    families = agent.locator("#resultats")
    expect(families).to_contain_text("Garnier")
    expect(families).not_to_contain_text("Guérin")
    assert agent.goto("/admin/familles?q=Gu%C3%A9rin").ok
    expect(agent.locator("#resultats")).to_contain_text("Aucune famille")
    assert agent.goto("/admin/equipe").status == 403
    assert agent.goto("/admin/familles/import").status == 403
    screenshot(agent, "staff-agent")
    agent_context.close()
    assert errors == []
