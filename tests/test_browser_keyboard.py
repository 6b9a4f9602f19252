"""Keyboard only, on the demo data: log in, book a day of a child's month and cancel it,
then pay an invoice through the simulated bank — with Tab, Shift+Tab, Space and Enter,
never a click nor a tap.

What the keyboard path needs (RGAA 7.3, 10.7, 12.7; WCAG 2.4.3, 2.4.7, 4.1.3):
- the skip link is the first stop and leads into the main content;
- every stop on the way shows a visible focus indicator;
- after the htmx swap of a day, the focus is back on that day's checkbox (a fresh element),
  not lost on <body>, so that the next Tab continues from there;
- the result of each tap is said in the page's `aria-live` region.

A live server of this module's own, with the Chalonnes-sur-Loire demo (`flask seed-demo`),
on the real clock: Léa's month has days still open to booking (or the next month has), and
the household has invoices to pay. Skipped when Playwright or Chromium is missing.
"""

from __future__ import annotations

import re

import pytest

from tests import live
from tests.test_browser import TIMEOUT_MS, Phone, chromium  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

EMAIL, PASSWORD = "parent@example.org", "citoyens-demo-parent"
# Tab stops allowed to reach one control: a month has about sixty.
MAX_TABS = 250
DESKTOP = live.DESKTOP


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The live app with the demo data, paying through the simulated bank.

    The name matters: conftest's `_transaction` leaves tests that use `live_server` alone.
    """
    from citoyens.demo import seed
    from citoyens.extensions import db

    tmp = tmp_path_factory.mktemp("browser-keyboard")
    with live.serve(tmp, database="citoyens_browser_keyboard") as server:
        server.app.config["PAYMENT_BACKEND"] = "simulated"
        with server.app.app_context():
            seed()
            db.session.commit()
        yield server


@pytest.fixture(params=["phone", "desktop"])
def keyboard(request, chromium, live_server):  # noqa: F811 (the fixture imported above)
    """A fresh page (phone or desktop); console errors and uncaught exceptions kept."""
    settings = live.PHONE if request.param == "phone" else DESKTOP
    context = chromium.new_context(base_url=live_server.url, **settings)
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


# --- Helpers ----------------------------------------------------------------------------------

FOCUSED = "(element) => element === document.activeElement"
# What shows the focus (WCAG 2.4.7, and 1.4.11's 3:1 for the indicator): an outline of at
# least 2 px whose colour contrasts 3:1 with the background it is drawn on (the nearest
# opaque background outside the element, the outline being offset), or a box-shadow ring.
FOCUS_RING = """() => {
    const e = document.activeElement;
    const style = getComputedStyle(e);
    if (style.outlineStyle === "none" || parseFloat(style.outlineWidth) < 2) {
        return style.boxShadow !== "none" ? "" : "no outline";
    }
    const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
        const f = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let back = [255, 255, 255];
    for (let n = e.parentElement; n; n = n.parentElement) {
        const c = rgb(getComputedStyle(n).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] === 1)) { back = c.slice(0, 3); break; }
    }
    const [a, b] = [lum(rgb(style.outlineColor)), lum(back)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    return ratio >= 3 ? "" : `outline ${style.outlineColor} on rgb(${back}): ${ratio.toFixed(2)}:1`;
}"""
ACTIVE = """() => {
    const e = document.activeElement;
    if (!e || e === document.body) return "body";
    return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.name ? "[" + e.name + "]" : "")
        + " " + (e.textContent || "").trim().slice(0, 40);
}"""


def tab_to(page, target, *, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until `target` (a locator) has the focus; each stop on the
    way must show where the focus is."""
    seen = []
    for _ in range(MAX_TABS):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if target.evaluate(FOCUSED):
            assert not (ring := page.evaluate(FOCUS_RING)), f"{page.evaluate(ACTIVE)}: {ring}"
            return
        where = page.evaluate(ACTIVE)
        if where != "body":
            assert not (ring := page.evaluate(FOCUS_RING)), f"{where} ({page.url}): {ring}"
        seen.append(where)
    raise AssertionError(f"{target} not reached in {MAX_TABS} tabs; last stops: {seen[-8:]}")


def log_in(page) -> None:
    from playwright.sync_api import expect

    page.goto("/connexion")
    email = page.get_by_label("Identifiant", exact=True)
    # The login form may put the focus on its first field; else Tab goes there.
    if not email.evaluate(FOCUSED):
        tab_to(page, email)
    page.keyboard.type(EMAIL)
    tab_to(page, page.get_by_label("Mot de passe", exact=True))
    page.keyboard.type(PASSWORD)
    tab_to(page, page.get_by_role("button", name="Se connecter"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/tableau-de-bord$"))

    # On a page that does not place the focus, the first stop is the skip link: visible
    # when focused, it leads into the main content, and the next Tab goes on from there.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Aller au contenu")
    assert skip.evaluate(FOCUSED), f"first Tab stop: {page.evaluate(ACTIVE)}"
    expect(skip).to_be_in_viewport()
    assert not (ring := page.evaluate(FOCUS_RING)), f"skip link: {ring}"
    page.keyboard.press("Enter")
    main = page.get_by_role("main")
    assert main.evaluate(FOCUSED), page.evaluate(ACTIVE)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)"), (
        f"after the skip link, Tab went to {page.evaluate(ACTIVE)}"
    )


def follow(page, link) -> None:
    """Tab to a link and press Enter."""
    tab_to(page, link)
    page.keyboard.press("Enter")


def open_month_with_a_free_day(page):
    """From the dashboard to Léa's month, then the next months until one has a day still
    open to booking and not booked; that day's checkbox."""
    from playwright.sync_api import expect

    menu = page.get_by_role("navigation", name="Navigation principale")
    follow(page, menu.get_by_role("link", name="Réservations", exact=True))
    expect(page.get_by_role("heading", level=1)).to_have_text("Réservations")
    follow(page, page.get_by_role("link", name="Voir le calendrier de Léa"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Réservations de Léa")
    for _ in range(3):
        free = page.locator(".rv-cell .rv-toggle input[type=checkbox]:not([checked])")
        if free.count():
            return free.first
        follow(page, page.get_by_role("link", name="Mois suivant"))
    raise AssertionError("no day open to booking in Léa's next three months")


def toggle_with_space(page, checkbox, *, booked: bool, name: str) -> object:
    """Space on the focused checkbox; after the htmx swap, the focus is on the new checkbox
    of the same day and the live region says what was done. Returns the new checkbox."""
    from playwright.sync_api import expect

    page.keyboard.press("Space")
    fresh = page.locator(f'input[type=checkbox][name="{name}"]')
    expect(fresh).to_be_checked(checked=booked)
    cell = page.locator(".rv-cell", has=fresh)
    expect(cell).to_have_class(re.compile(r"\brv-booked\b" if booked else r"\brv-available\b"))
    announce = page.locator("#annonce-reservation")
    expect(announce).to_have_attribute("aria-live", "polite")
    expect(announce).to_have_attribute("role", "status")
    expect(announce).to_have_text(re.compile(r"réservé|annulé", re.IGNORECASE))
    # The focus came back to the day just changed, not to <body>.
    page.wait_for_function(
        f"() => document.activeElement && document.activeElement.name === {name!r}"
    )
    assert not (ring := page.evaluate(FOCUS_RING)), f"after the swap, {name}: {ring}"
    return fresh


# --- The path ---------------------------------------------------------------------------------


def test_book_a_day_and_pay_an_invoice_with_the_keyboard_alone(live_server, keyboard):
    from playwright.sync_api import expect

    page = keyboard.page
    log_in(page)

    # 1. Book a free day of Léa's month with Space, then cancel it, by keyboard.
    checkbox = open_month_with_a_free_day(page)
    name = checkbox.get_attribute("name")
    tab_to(page, checkbox)
    booked = toggle_with_space(page, checkbox, booked=True, name=name)
    said = page.locator("#annonce-reservation").inner_text()
    assert "réservé" in said.lower(), said
    # The next Tab goes on from the day, not from the top of the page.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    assert booked.evaluate(FOCUSED), f"focus after Shift+Tab, Tab: {page.evaluate(ACTIVE)}"
    toggle_with_space(page, booked, booked=False, name=name)

    # 2. An invoice to pay, « Payer en ligne », the bank's « Payer », back on the invoice.
    menu = page.get_by_role("navigation", name="Navigation principale")
    invoices = menu.get_by_role("link", name="Factures", exact=True)
    # From the calendar's day, the menu is behind on a desktop and ahead (bottom bar) on a phone.
    tab_to(page, invoices, backwards=menu.evaluate("(nav) => !nav.closest('.tabbar')"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mes factures")
    due = page.locator(".inv-item", has=page.locator(".inv-badge-late, .inv-badge-due"))
    follow(page, due.first.get_by_role("link"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Facture de "))
    invoice_url = page.url
    pay = page.get_by_role("button", name=re.compile(r"^Payer en ligne"))
    tab_to(page, pay)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/banque-simulee/paiement/[0-9a-f]{32}$"))
    tab_to(page, page.get_by_role("button", name="Payer", exact=True))
    page.keyboard.press("Enter")
    expect(page).to_have_url(invoice_url)
    expect(page.locator(".flashes .notice-success")).to_have_text(
        "Paiement enregistré : merci ! Un reçu vous est envoyé par e-mail."
    )
    # The message has the focus on arrival: a screen reader reads it, and Tab goes on from it.
    flashes = page.locator(".flashes")
    expect(flashes).to_have_attribute("aria-live", "polite")
    expect(flashes).to_be_focused()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)"), (
        f"after the message, Tab went to {page.evaluate(ACTIVE)}"
    )
    expect(page.get_by_role("button", name=re.compile(r"^Payer en ligne"))).to_have_count(0)
    assert keyboard.errors == []
