"""`make screenshots`: the README's pictures, taken from the demo data.

    make screenshots      (or: .venv/bin/python scripts/screenshots.py)

Builds a throwaway SQLite database with the demo data (`flask db upgrade`, `seed-demo`),
serves it with gunicorn as in production, and photographs with Debian's Chromium the
first screen a parent sees on a 390×844 phone (dashboard, a child's month, an invoice,
the household, the documents, the direct debit) and the staff home on a desktop.
Writes docs/screenshots/*.png, the files the README shows.
"""

from __future__ import annotations

import re
import sys
import urllib.request
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.audit import demo_server, login_cookie  # noqa: E402
from tests import live, standards  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
PHONE = {**live.PHONE, "device_scale_factor": 2}
DESKTOP = live.DESKTOP


def first_link(base: str, cookie: str, page: str, pattern: str) -> str:
    """The first link of `page` matching `pattern`, as the account sees it."""
    request = urllib.request.Request(f"{base}{page}", headers={"Cookie": cookie})  # noqa: S310 (http, our server)
    html = urllib.request.urlopen(request).read().decode()  # noqa: S310  # nosec B310: our server
    found = re.search(pattern, html)
    if found is None:
        raise SystemExit(f"no link matching {pattern} on {page}: is the demo complete?")
    return found.group(0).replace("&amp;", "&")


def shots(base: str) -> dict[str, tuple[str, str, dict]]:
    """{file name: (account, path, browser settings)}."""
    parent = login_cookie(base, *standards.ACCOUNTS["parent"][:2])
    child = first_link(base, parent, "/reservations/", r"/reservations/enfant/\d+")
    invoice = first_link(base, parent, "/factures", r"/factures/\d+(?=\")")
    month = date.today().strftime("%Y-%m")
    return {
        "phone-dashboard.png": ("parent", "/tableau-de-bord", PHONE),
        "reservations-month.png": ("parent", f"{child}?mois={month}", PHONE),
        "billing-invoice.png": ("parent", invoice, PHONE),
        "phone-household.png": ("parent", "/mon-foyer", PHONE),
        "phone-documents.png": ("parent", "/mes-documents", PHONE),
        "billing-mandate.png": ("debit", "/prelevement", PHONE),
        "desktop-staff-home.png": ("admin", "/admin/", DESKTOP),
    }


def main() -> int:
    from playwright.sync_api import sync_playwright

    chromium = live.find_chromium()
    if chromium is None:
        raise SystemExit("no Chromium found: apt install chromium")
    OUT.mkdir(parents=True, exist_ok=True)
    with demo_server("citoyens-screenshots-") as (base, _env), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=live.CHROMIUM_ARGS)
        for name, (who, path, settings) in shots(base).items():
            context = browser.new_context(base_url=base, **settings)
            email, password, _home = standards.ACCOUNTS[who]
            cookie = login_cookie(base, email, password).split(";")[0]
            key, value = cookie.split("=", 1)
            context.add_cookies([{"name": key, "value": value, "url": base}])
            page = context.new_page()
            page.goto(path)
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(OUT / name))
            print(f"{OUT.relative_to(ROOT) / name}  ({who} {path})")
            context.close()
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
