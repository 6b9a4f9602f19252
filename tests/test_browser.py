"""End to end on a phone: Chromium (Debian's, through Playwright) against a live server.

Skipped when Playwright or Chromium is missing. `SCREENSHOTS=1` also saves the
phone pages to docs/screenshots/ (the README shows them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import pytest

from tests import live

pytestmark = pytest.mark.browser

FIRST_NAME = "Amélie"
LAST_NAME = "Durand"
EMAIL = "amelie.durand@example.org"
PASSWORD = "trois chats sur la Loire en été"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def chromium():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    path = live.find_chromium()
    if path is None:
        pytest.skip("no Chromium found (apt install chromium); Playwright's own is not used")
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=path, args=live.CHROMIUM_ARGS)
    except Error as exc:
        playwright.stop()
        pytest.skip(f"Chromium at {path} does not start: {exc}")
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    # The name matters: conftest's `_transaction` leaves tests that use `live_server` alone.
    with live.serve(tmp_path_factory.mktemp("browser")) as server:
        yield server


@dataclass
class Phone:
    page: object
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> None:
        if os.environ.get("SCREENSHOTS") == "1":
            live.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=live.SCREENSHOTS / f"{name}.png")


@pytest.fixture
def phone(chromium, live_server):
    """A fresh phone-sized page; console errors and uncaught exceptions (CSP included) kept."""
    context = chromium.new_context(base_url=live_server.url, **live.PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    phone = Phone(page)
    page.on(
        "console",
        lambda msg: phone.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: phone.errors.append(f"pageerror: {exc}"))
    yield phone
    context.close()


SERVICE_WORKER_SCOPE = """(ms) => Promise.race([
    navigator.serviceWorker.ready.then((r) => (r.active ? r.scope : "no active worker")),
    new Promise((resolve) => setTimeout(() => resolve("timeout"), ms)),
])"""


def test_sign_up_confirm_log_in_and_out_on_a_phone(live_server, phone):
    from playwright.sync_api import expect

    page, url = phone.page, live_server.url

    # Créer mon espace.
    page.goto("/creer-mon-espace")
    expect(page.get_by_role("heading", level=1)).to_have_text("Créer mon espace")
    assert page.evaluate(SERVICE_WORKER_SCOPE, TIMEOUT_MS) == url + "/", "service worker not active"
    page.get_by_label("Prénom", exact=True).fill(FIRST_NAME)
    page.get_by_label("Nom", exact=True).fill(LAST_NAME)
    page.get_by_label("Adresse e-mail", exact=True).fill(EMAIL)
    password = page.get_by_label("Mot de passe", exact=True)
    password.fill(PASSWORD)
    # app.js runs (no CSP block): "Afficher" shows the password, "Masquer" hides it again.
    page.get_by_role("button", name="Afficher").click()
    expect(password).to_have_attribute("type", "text")
    page.get_by_role("button", name="Masquer").click()
    expect(password).to_have_attribute("type", "password")
    phone.screenshot("phone-signup")
    page.get_by_role("button", name="Créer mon espace").click()
    expect(page).to_have_url(url + "/verifiez-vos-mails")
    expect(page.get_by_role("heading", level=1)).to_have_text("Vérifiez votre boîte mail")

    # The confirmation e-mail, and its link: a button, since a GET changes nothing.
    mails = live_server.mails_to(EMAIL)
    assert [m.subject for m in mails] == ["Confirmez votre adresse e-mail"]
    page.goto(live_server.link_in(mails[0], "/confirmer/"))
    page.get_by_role("button", name="Confirmer mon adresse").click()
    expect(page).to_have_url(url + "/connexion")
    expect(page.get_by_role("status")).to_contain_text("Votre adresse est confirmée")

    # Connexion, then the dashboard.
    page.get_by_label("Identifiant", exact=True).fill(EMAIL)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(url + "/tableau-de-bord")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Bonjour {FIRST_NAME}")
    expect(page.get_by_role("region", name="Mon foyer")).to_contain_text(
        f"{FIRST_NAME} {LAST_NAME}"
    )
    phone.screenshot("phone-dashboard")

    # Se déconnecter: back to the login page, and the dashboard is closed.
    page.get_by_role("button", name="Se déconnecter").click()
    expect(page).to_have_url(url + "/connexion")
    expect(page.get_by_role("status")).to_contain_text("Vous êtes déconnecté")
    expect(page.get_by_role("button", name="Se déconnecter")).to_have_count(0)
    page.goto("/tableau-de-bord")
    expect(page).to_have_url(url + "/connexion?next=%2Ftableau-de-bord")
    expect(page.get_by_role("heading", level=1)).to_have_text("Connexion à votre espace famille")
    page.goto("/connexion")
    phone.screenshot("phone-login")

    assert phone.errors == []


MANIFEST_AND_ICONS = """async (href) => {
    const response = await fetch(href);
    const manifest = await response.json();
    const icons = await Promise.all(manifest.icons.map(async (icon) => {
        const res = await fetch(new URL(icon.src, response.url));
        const bitmap = await createImageBitmap(await res.blob());
        return {
            src: icon.src, sizes: icon.sizes, purpose: icon.purpose, status: res.status,
            type: res.headers.get("content-type"), actual: `${bitmap.width}x${bitmap.height}`,
        };
    }));
    return {status: response.status, type: response.headers.get("content-type"), manifest, icons};
}"""


NOT_THE_APPS_FAULT = {"in-incognito"}


def test_the_app_can_be_installed(live_server, phone):
    page = phone.page
    page.goto("/")
    href = page.locator('link[rel="manifest"]').get_attribute("href")
    assert href == "/manifest.webmanifest"

    result = page.evaluate(MANIFEST_AND_ICONS, href)
    assert result["status"] == 200
    assert result["type"].startswith("application/manifest+json")
    manifest = result["manifest"]
    assert manifest["display"] == "standalone"
    assert manifest["start_url"].startswith("/") and manifest["scope"] == "/"
    assert manifest["name"] and manifest["short_name"] == "Citoyens"
    assert manifest["theme_color"] == page.locator('meta[name="theme-color"]').get_attribute(
        "content"
    )
    icons = result["icons"]
    for icon in icons:
        assert icon["status"] == 200, icon
        assert icon["type"] == "image/png", icon
        assert icon["actual"] == icon["sizes"], icon
    sizes = {(icon["sizes"], icon["purpose"]) for icon in icons}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes

    # Chromium's own verdict: the manifest parses without errors, and nothing blocks install.
    cdp = page.context.new_cdp_session(page)
    app_manifest = cdp.send("Page.getAppManifest")
    assert app_manifest["url"] == live_server.url + href
    assert app_manifest["errors"] == []
    blockers = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    # Playwright's contexts are incognito ones, where Chromium never offers to install.
    assert [e for e in blockers if e["errorId"] not in NOT_THE_APPS_FAULT] == []

    assert phone.errors == []
