"""Every page a parent, an agent or an administrator reaches is valid HTML (the Nu Html
Checker) and has no serious or critical accessibility violation (axe-core), on a phone and
on a desktop (issue 16).

The demo data is loaded into the live server's own database; `tests/standards.py` crawls
it by following links from each demo account's home. Both checkers are the npm packages
pinned in package.json, installed by `make test` (`npm ci`): the tests skip, saying why,
only where Java, the packages or Chromium are missing.
"""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest

from citoyens.demo import seed
from citoyens.extensions import db
from tests import live, standards

pytestmark = pytest.mark.own_database

AXE_VIEWPORTS = {
    "phone": live.PHONE,
    "desktop": live.DESKTOP,
}
# axe's impacts that fail the build; "moderate" and "minor" are reported by `make audit`.
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    with live.serve(tmp_path_factory.mktemp("standards"), "citoyens_standards") as server:
        with server.app.app_context(), server.app.test_request_context():
            seed()
            db.session.commit()
        yield server


@pytest.fixture(scope="module")
def pages(live_server):
    return standards.all_pages(live_server.app)


def test_the_crawl_reaches_every_part_of_the_product(pages):
    parent, admin = set(pages["parent"]), set(pages["admin"])
    for path in ("/tableau-de-bord", "/mon-foyer", "/mes-documents", "/factures", "/reservations/"):
        assert path in parent, f"the parent's crawl missed {path}"
    for prefix in ("/admin/familles", "/admin/factures", "/admin/demandes", "/admin/inscriptions"):
        assert any(p.startswith(prefix) for p in admin), f"the admin's crawl missed {prefix}"
    assert sum(len(found) for found in pages.values()) >= 150


def test_every_page_is_valid_html(pages, tmp_path):
    missing = standards.vnu_available()
    if missing:
        pytest.skip(missing)
    every = {f"{who} {path}": html for who, found in pages.items() for path, html in found.items()}
    errors = standards.vnu_errors(every, tmp_path)
    summary = Counter(error.split(": ", 1)[1].split(" « ")[0] for error in errors)
    assert not errors, (
        f"{len(errors)} errors over {len(every)} pages:\n"
        + "\n".join(f"{n} × {message}" for n, message in summary.most_common(20))
        + "\n\n"
        + "\n".join(errors[:40])
    )


def axe_targets(pages) -> dict[str, list[str]]:
    """One page of each shape, whoever reaches it first (public, parents, then staff): axe
    is slower than vnu, and an agent's page of a shape is the administrator's too."""
    shapes = set()
    targets = {}
    for who, found in pages.items():
        targets[who] = []
        for path in found:
            kind = standards.shape(path)
            if kind not in shapes:
                shapes.add(kind)
                targets[who].append(path)
    return targets


@pytest.mark.browser
@pytest.mark.parametrize("viewport", AXE_VIEWPORTS)
def test_no_serious_accessibility_violation(live_server, pages, viewport):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed (pip install -e '.[dev]')")
    chromium = live.find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found (apt install chromium); Playwright's own is not used")
    if not standards.AXE_JS.exists():
        pytest.skip(f"{standards.AXE_JS} missing: run `npm ci` (make test does)")
    axe = standards.AXE_JS.read_text(encoding="utf-8")
    found = []
    checked = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=live.CHROMIUM_ARGS)
        try:
            for who, paths in axe_targets(pages).items():
                # The CSP (script-src 'self') would refuse the injected axe script.
                context = browser.new_context(
                    base_url=live_server.url, bypass_csp=True, **AXE_VIEWPORTS[viewport]
                )
                page = context.new_page()
                if who != "public":
                    email, password, _home = standards.ACCOUNTS[who]
                    page.goto("/connexion")
                    page.get_by_label("Identifiant", exact=True).fill(email)
                    page.get_by_label("Mot de passe", exact=True).fill(password)
                    page.get_by_role("button", name="Se connecter").click()
                    page.wait_for_load_state()
                for path in paths:
                    page.goto(path)
                    page.add_script_tag(content=axe)
                    violations = page.evaluate(standards.AXE_RUN)
                    checked += 1
                    for v in violations:
                        if v["impact"] in BLOCKING:
                            found.append(
                                f"{who} {path}: [{v['impact']}] {v['id']}: {v['help']}"
                                f" — {', '.join(v['targets'][:3])}"
                            )
                context.close()
        finally:
            browser.close()
    if os.environ.get("AXE_REPORT"):
        print("\n".join(found))
    assert checked > 40
    assert not found, f"{len(found)} serious or critical violations on {checked} pages:\n" + (
        "\n".join(found[:60])
    )


def test_the_french_reads_right(pages):
    """No « de Emma », no « inscrit(e) », no « 1er relance », no « OGEC : OGEC » on any page."""
    every = {f"{who} {path}": html for who, found in pages.items() for path, html in found.items()}
    slips = standards.french_slips(every)
    assert not slips, f"{len(slips)} slips:\n" + "\n".join(sorted(set(slips))[:60])


def test_the_french_scan_catches_each_slip():
    """The scan itself: each pattern finds its slip and passes its correct form."""
    wrong = {
        "a": "<p>Le dossier de Emma</p>",
        "b": "<p>Léa est inscrit(e) à la cantine</p>",
        "c": "<p>1er relance envoyée</p>",
        "d": "<p>Contact : OGEC : OGEC — ogec@example.org</p>",
        "e": '<button aria-label="Photo de Inès">x</button>',
        "f": "<p>la facture de le mois</p>",
        "g": "<p>Pointé : pointé</p>",
    }
    right = {
        "a": "<p>Le dossier d'Emma, de Léa et de Hugo, le 1er septembre, la 1re relance</p>",
        "c": "<p>La loi oblige à les conserver.</p>",
        "b": "<p>Léa est inscrite à la cantine <script>var x = 'de Emma(e)';</script></p>",
    }
    assert {slip.split(":")[0] for slip in standards.french_slips(wrong)} == set(wrong)
    assert standards.french_slips(right) == []


def test_no_agreement_written_in_parentheses_in_the_sources():
    """E-mails and flashed messages are not crawled: their sources say « inscrite », or a
    wording with no agreement, never « inscrit(e) »."""
    package = standards.ROOT / "citoyens"
    slip = re.compile(r"\w\((?:e|es)\)")
    found = [
        f"{path.relative_to(standards.ROOT)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*"))
        if path.suffix in (".py", ".html", ".txt") and path.name != "formatting.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if slip.search(line)
    ]
    assert not found, "\n".join(found)
