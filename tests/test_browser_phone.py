"""On a phone (390 × 844), as a parent: the bottom bar, a calendar tap with no network,
the offline page's « Réessayer », and a big photo sent through the documents page.

Chromium (Debian's, through Playwright) against a live server of this module's own (its
own database and upload folder), with the family of tests/test_browser_reservations.py
(two children enrolled in the morning and evening care around today). Skipped when
Playwright or Chromium is missing. `SCREENSHOTS=1` also saves phone-nav-dashboard.png,
phone-nav-calendar.png and phone-nav-plus.png to docs/screenshots/.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest

from tests import live
from tests.test_browser import TIMEOUT_MS, Phone, chromium, phone  # noqa: F401 (fixtures)
from tests.test_browser_reservations import family, log_in  # noqa: F401 (a fixture)

pytestmark = pytest.mark.browser

MIN_TARGET = 44  # px, WCAG 2.5.5 and the platforms' guidelines
PROOF_OF_ADDRESS = "Justificatif de domicile"
BOTTOM_BAR = ["Accueil", "Réservations", "Factures", "Foyer", "Plus"]

# Every box of `selector` that is shown and narrower or lower than the minimum.
SMALL_TARGETS = """([selector, min]) => Array.from(document.querySelectorAll(selector))
    .filter((el) => el.getClientRects().length && getComputedStyle(el).visibility !== "hidden")
    .map((el) => [el.outerHTML.slice(0, 90), el.getBoundingClientRect()])
    .filter(([, r]) => r.width < min || r.height < min)
    .map(([html, r]) => `${html} ${Math.round(r.width)}x${Math.round(r.height)}`)"""

# What the upload's status line said, in order (a MutationObserver records it).
RECORD_PROGRESS = """() => {
    window.progressSeen = [];
    window.progressBars = 0;
    new MutationObserver(() => {
        const text = document.querySelector(".upload-percent");
        const said = text ? text.textContent : "";
        if (said && window.progressSeen[window.progressSeen.length - 1] !== said) {
            window.progressSeen.push(said);
        }
        const bar = document.querySelector(".upload-progress:not([hidden]) progress");
        if (bar) window.progressBars += 1;
    }).observe(document.body, {subtree: true, childList: true, characterData: true,
                               attributes: true});
}"""

WORKER_CONTROLS = """(ms) => Promise.race([
    navigator.serviceWorker.ready.then(() => new Promise((resolve) => {
        if (navigator.serviceWorker.controller) return resolve(true);
        navigator.serviceWorker.addEventListener("controllerchange", () => resolve(true));
    })),
    new Promise((resolve) => setTimeout(() => resolve(false), ms)),
])"""


def worker_in_charge(page, tries: int = 3) -> None:
    """Wait until the service worker controls the page.

    A busy machine can fail the worker's install (a precache request cut short); the browser
    then tries again at the next navigation, as a parent's next page would: so does this.
    """
    for _ in range(tries):
        if page.evaluate(WORKER_CONTROLS, TIMEOUT_MS):
            return
        page.reload()
    raise AssertionError(f"no service worker in charge after {tries} page loads")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The live app with the demo document types, storing uploads in a temp folder.

    The name matters: conftest's `_transaction` leaves tests that use `live_server` alone.
    """
    from citoyens.documents.demo import seed_demo as seed_document_types
    from citoyens.extensions import db

    tmp = tmp_path_factory.mktemp("browser-phone")
    with live.serve(tmp, database="citoyens_browser_phone") as server:
        server.app.config["UPLOAD_FOLDER"] = str(tmp / "uploads")
        with server.app.app_context():
            seed_document_types()
            db.session.commit()
        yield server


# What Chromium and htmx log when the network is gone: the point of these tests, not a fault.
NETWORK_ERRORS = re.compile(r"ERR_INTERNET_DISCONNECTED|^console: htmx:(afterRequest|sendError)$")


def forget_network_errors(device: Phone) -> None:
    device.errors[:] = [e for e in device.errors if not NETWORK_ERRORS.search(e)]


def small_targets(page, selector: str) -> list[str]:
    return page.evaluate(SMALL_TARGETS, [selector, MIN_TARGET])


def calendar_of_next_month(page, family) -> None:  # noqa: F811
    """Léa's calendar next month (days past no cut-off), through the bottom bar."""
    from playwright.sync_api import expect

    from citoyens.forms import today_in_paris

    live.nav(page, "Réservations")
    expect(page.get_by_role("heading", level=1)).to_have_text("Réservations")
    month = (today_in_paris().replace(day=1) + timedelta(days=40)).strftime("%Y-%m")
    page.goto(f"/reservations/enfant/{family.child_ids[0]}?mois={month}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Réservations de Léa")


# --- Navigation -------------------------------------------------------------------------------


def test_the_bottom_bar_takes_a_parent_everywhere_with_big_targets(
    live_server,
    family,  # noqa: F811
    phone,  # noqa: F811
):
    from playwright.sync_api import expect

    page = phone.page
    log_in(page, live_server.url)
    bar = page.get_by_role("navigation", name="Navigation principale")
    expect(bar).to_have_count(1)  # the desktop menu is hidden on a phone
    expect(page.locator(".main-nav")).to_be_hidden()
    expect(page.locator(".tabbar")).to_be_visible()
    links = bar.get_by_role("link")
    expect(links).to_have_text(BOTTOM_BAR)
    expect(bar.locator('[aria-current="page"]')).to_have_text("Accueil")
    # Fixed at the bottom of the screen, every place a full 44 × 44 target.
    box = page.locator(".tabbar").bounding_box()
    assert abs(box["y"] + box["height"] - live.PHONE["viewport"]["height"]) < 1, box
    assert small_targets(page, ".tabbar a") == []
    assert small_targets(page, ".site-header a, .site-header button, .site-footer a") == []
    live.assert_fits_the_phone(page)
    phone.screenshot("phone-nav-dashboard")

    # The calendar: days, period arrows and links are all big enough to tap.
    calendar_of_next_month(page, family)
    expect(bar.locator('[aria-current="page"]')).to_have_text("Réservations")
    assert small_targets(page, ".rv-toggle, .rv-period .button, .rv-switch a, .rv-tabs a") == []
    # A checkbox's target is its label (checked above), not the box alone.
    controls = "main button, main .button, main input:not([type=hidden]):not(label input)"
    assert small_targets(page, controls) == []
    live.assert_fits_the_phone(page)
    # The end of the page is not hidden behind the bar.
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    footer = page.locator(".site-footer .wrap").bounding_box()
    assert footer["y"] + footer["height"] <= box["y"] + 1, (footer, box)
    phone.screenshot("phone-nav-calendar")

    # « Plus »: the other places, each a full-width line.
    bar.get_by_role("link", name="Plus").click()
    expect(page).to_have_url(live_server.url + "/plus")
    expect(page.get_by_role("heading", level=1)).to_have_text("Plus")
    expect(bar.locator('[aria-current="page"]')).to_have_text("Plus")
    items = page.get_by_role("main").get_by_role("link")
    expect(items).to_have_text(
        [
            "Documents",
            "Demandes",
            "Inscriptions",
            "Messages",
            "Prélèvement automatique",
            "Mon compte",
            "Aide et accessibilité",
        ]
    )
    assert small_targets(page, "main a, main button") == []
    live.assert_fits_the_phone(page)
    phone.screenshot("phone-nav-plus")
    items.filter(has_text="Documents").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes documents")
    expect(bar.locator('[aria-current="page"]')).to_have_text("Plus")
    assert small_targets(page, "main input[type=file], main button, summary") == []
    bar.get_by_role("link", name="Foyer").click()
    expect(bar.locator('[aria-current="page"]')).to_have_text("Foyer")
    assert phone.errors == []


def test_a_desktop_keeps_the_top_menu(live_server, family, chromium):  # noqa: F811
    from playwright.sync_api import expect

    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 800}, locale="fr-FR"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        log_in(page, live_server.url)
        expect(page.locator(".tabbar")).to_be_hidden()
        menu = page.get_by_role("navigation", name="Navigation principale")
        expect(menu).to_have_count(1)
        expect(menu.get_by_role("link", name="Documents", exact=True)).to_be_visible()
        expect(menu.locator('[aria-current="page"]')).to_have_text("Accueil")
    finally:
        context.close()


# --- Offline ----------------------------------------------------------------------------------


def test_a_tap_without_network_puts_the_day_back_and_says_so(
    live_server,
    family,  # noqa: F811
    phone,  # noqa: F811
):
    from playwright.sync_api import expect

    page = phone.page
    log_in(page, live_server.url)
    calendar_of_next_month(page, family)
    cell = page.locator(".rv-cell:has(.rv-toggle)").first
    box = cell.locator('input[type="checkbox"]')
    was_checked = box.is_checked()
    classes = cell.get_attribute("class")
    announce = page.locator("#annonce-reservation")

    page.context.set_offline(True)
    box.click()
    expect(announce).to_contain_text("Pas de connexion")
    expect(announce).to_contain_text("Rien n'a été enregistré")
    expect(announce).to_contain_text("reste " + ("réservé" if was_checked else "non réservé"))
    # The checkbox is back to the true state, in agreement with its card.
    expect(box).to_be_checked(checked=was_checked)
    assert cell.get_attribute("class") == classes
    expect(announce).to_have_attribute("aria-live", "polite")
    forget_network_errors(phone)

    # Back online, the same tap works.
    page.context.set_offline(False)
    box.click()
    expect(box).to_be_checked(checked=not was_checked)
    expect(announce).not_to_contain_text("Pas de connexion")
    cell = page.locator(f"#{cell.get_attribute('id')}")
    expect(cell).to_have_class(re.compile(r"rv-booked" if not was_checked else r"rv-available"))
    box.click()  # as it was, for the other tests
    expect(box).to_be_checked(checked=was_checked)
    assert phone.errors == []


def test_retry_on_the_offline_page_reloads_the_page_the_parent_was_on(
    live_server,
    family,  # noqa: F811
    phone,  # noqa: F811
):
    from playwright.sync_api import expect

    page = phone.page
    log_in(page, live_server.url)
    worker_in_charge(page)
    calendar_of_next_month(page, family)
    wanted = page.url

    page.context.set_offline(True)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pas de connexion")
    assert page.url == wanted  # the worker answers at the address asked for
    page.context.set_offline(False)
    page.get_by_role("link", name="Réessayer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Réservations de Léa")
    assert page.url == wanted
    forget_network_errors(phone)
    assert phone.errors == []


# --- Uploads ----------------------------------------------------------------------------------


def phone_photo(path, size=(4032, 3024)) -> int:
    """A phone-sized photo (smooth, like a real one: a few megabytes); returns its size."""
    from PIL import Image, ImageFilter

    small = Image.effect_noise((size[0] // 24, size[1] // 24), 60).convert("RGB")
    photo = small.resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.DETAIL)
    photo.save(path, "JPEG", quality=95)
    return path.stat().st_size


def stored_image_size(app, household_id: int) -> tuple[tuple[int, int], str, int]:
    """(width, height), content type and stored size of the household's latest document."""
    from PIL import Image
    from sqlalchemy import select

    from citoyens.documents.models import Document
    from citoyens.documents.storage import get_storage
    from citoyens.extensions import db

    with app.app_context():
        doc = db.session.scalars(
            select(Document)
            .where(Document.household_id == household_id)
            .order_by(Document.id.desc())
            .limit(1)
        ).one()
        with get_storage().open(doc.storage_key) as stream:
            data = stream.read()
        return Image.open(io.BytesIO(data)).size, doc.content_type, len(data)


def test_a_big_photo_is_shrunk_sent_with_progress_and_clears_an_old_error(
    live_server,
    family,  # noqa: F811
    phone,  # noqa: F811
    tmp_path,
):
    from playwright.sync_api import expect

    photo = tmp_path / "IMG_2041.jpg"
    original = phone_photo(photo)
    assert original > 1_500_000, original
    broken = tmp_path / "scan.pdf"
    broken.write_bytes(b"%PDF-1.4 not really a pdf")

    page = phone.page
    log_in(page, live_server.url)
    live.nav(page, "Documents")
    line = page.locator(".doc-line").filter(has_text=PROOF_OF_ADDRESS).first
    file_input = line.get_by_label(re.compile(r"^(Nouveau )?[Ff]ichier"))

    # A first try with a broken file: the server refuses it, the line says why.
    file_input.set_input_files(broken)
    line.get_by_role("button", name=re.compile(r"^Envoyer")).click()
    line = page.locator(".doc-line").filter(has_text=PROOF_OF_ADDRESS).first
    expect(line.locator(".error")).to_be_visible()
    expect(line.locator('input[type="file"]')).to_have_attribute("aria-invalid", "true")

    # A new file chosen: the old error goes at once.
    page.evaluate(RECORD_PROGRESS)
    line.locator('input[type="file"]').set_input_files(photo)
    expect(line.locator(".error")).to_have_count(0)
    expect(line.locator('input[type="file"]')).not_to_have_attribute("aria-invalid", "true")
    line.get_by_role("button", name=re.compile(r"^Envoyer")).click()
    line = page.locator(".doc-line").filter(has_text=PROOF_OF_ADDRESS).first
    expect(line.locator(".badge")).to_have_text("En attente")
    expect(line.locator(".error")).to_have_count(0)

    seen = page.evaluate("() => window.progressSeen")
    assert seen[0] == "Préparation de la photo…", seen
    assert "Envoi : 0 %" in seen and any(s.startswith("Envoi : 100 %") for s in seen), seen
    assert page.evaluate("() => window.progressBars") > 0

    # Shrunk in the browser: the long side at 2000 px (the server alone would keep 4000).
    (width, height), content_type, stored = stored_image_size(live_server.app, family.household_id)
    assert max(width, height) <= 2000 and max(width, height) >= 1990, (width, height)
    assert (width, height) == (2000, 1500)
    assert content_type == "image/jpeg" and stored < original / 3, (stored, original)
    assert phone.errors == []


def test_a_small_image_is_sent_as_it_is(
    live_server,
    family,  # noqa: F811
    phone,  # noqa: F811
    tmp_path,
):
    """A JPEG would be bigger than this little PNG: the original goes."""
    from playwright.sync_api import expect

    from tests.documents_factories import png

    small = tmp_path / "plan.png"
    small.write_bytes(png((60, 40)))
    page = phone.page
    log_in(page, live_server.url)
    live.nav(page, "Documents")
    line = page.locator(".doc-line").filter(has_text=PROOF_OF_ADDRESS).first
    replace = line.locator("summary")  # the line is complete: « Remplacer le fichier »
    if replace.count():
        replace.click()
    line.locator('input[type="file"]').set_input_files(small)
    line.get_by_role("button", name=re.compile(r"^Envoyer")).click()
    expect(page.locator("#doc-announce")).to_contain_text("Document envoyé", timeout=3000)
    (width, height), content_type, _ = stored_image_size(live_server.app, family.household_id)
    assert (width, height) == (60, 40) and content_type == "image/png"
    assert phone.errors == []
