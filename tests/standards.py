"""Every page a parent, an agent or an administrator reaches, for the standards checks.

`crawl` follows the links of the demo data from each account's home with a Flask test
client (no browser), keeping at most `PER_SHAPE` pages of one shape (`/factures/12` and
`/factures/13` are one shape), so that the Nu Html Checker (`vnu`) and axe see every kind
of page in bounded time. The checkers are the npm packages pinned in package.json
(`make test` installs them with `npm ci`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess  # nosec B404: runs the pinned vnu.jar on files this module wrote
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from tests.conftest import post

ROOT = Path(__file__).resolve().parent.parent
VNU_JAR = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"

# (e-mail, password, first page)
ACCOUNTS = {
    "parent": ("parent@example.org", "citoyens-demo-parent", "/tableau-de-bord"),
    "debit": ("prelevement@example.org", "citoyens-demo-parent", "/tableau-de-bord"),
    "agent": ("agent@example.org", "citoyens-demo-agent", "/admin/"),
    "admin": ("admin@example.org", "citoyens-demo-admin", "/admin/"),
}
PUBLIC = [
    "/connexion",
    "/creer-mon-espace",
    "/mot-de-passe-oublie",
    "/renvoyer-le-lien",
    "/verifiez-vos-mails",
    "/accessibilite",
    "/confidentialite",
    "/hors-ligne",
]
PER_SHAPE = 2
MAX_PAGES = 250
# Not pages: files, feeds, the bank simulator, state changes reached by GET.
SKIP = re.compile(
    r"\.(pdf|csv|xlsx|ics|png|jpe?g|webp|heic|json|js|css|zip)(\?|$)|/deconnexion|"
    r"/banque-simulee/|/static/|/fichier|/apercu|/telecharger|/calendrier/[^/]+\.ics"
)
HREF = re.compile(r'\shref="([^"#]*)(?:#[^"]*)?"')


def shape(path: str) -> str:
    """ "/factures/12?mois=2026-09" → "/factures/N?mois": pages of one kind."""
    parts = urlsplit(path)
    keys = sorted(k.split("=")[0] for k in parts.query.split("&") if k)
    return re.sub(r"/\d+", "/N", parts.path) + ("?" + "&".join(keys) if keys else "")


def login(client, email: str, password: str) -> None:
    response = post(client, "/connexion", {"email": email, "password": password})
    assert response.status_code == 303, f"cannot log in as {email}"


def crawl(client, start: str, limit: int = MAX_PAGES) -> dict[str, str]:
    """{path: html} of the HTML pages reachable from `start` by GET links."""
    pages: dict[str, str] = {}
    seen_shapes: dict[str, int] = {}
    queue = deque([start])
    queued = {start}
    while queue and len(pages) < limit:
        path = queue.popleft()
        response = client.get(path)
        # A download streamed in its own app context ends when closed, as a server does.
        response.close()
        assert response.status_code < 500, f"GET {path}: {response.status_code}"
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        html = response.get_data(as_text=True)
        pages[path] = html
        for href in HREF.findall(html):
            url = urljoin("http://localhost" + path, href.replace("&amp;", "&"))
            parts = urlsplit(url)
            if parts.netloc != "localhost" or SKIP.search(url):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            kind = shape(target)
            if target in queued or seen_shapes.get(kind, 0) >= PER_SHAPE:
                continue
            seen_shapes[kind] = seen_shapes.get(kind, 0) + 1
            queued.add(target)
            queue.append(target)
    return pages


def all_pages(app) -> dict[str, dict[str, str]]:
    """{account: {path: html}}: the public pages, then each demo account's crawl."""
    found = {"public": {}}
    client = app.test_client()
    for path in PUBLIC:
        response = client.get(path)
        if response.status_code == 200:
            found["public"][path] = response.get_data(as_text=True)
    for name, (email, password, home) in ACCOUNTS.items():
        client = app.test_client()
        login(client, email, password)
        found[name] = crawl(client, home)
    return found


def vnu_available() -> str | None:
    """Why vnu cannot run here, or None."""
    if shutil.which("java") is None:
        return "no Java found (apt install default-jre-headless)"
    if not VNU_JAR.exists():
        return f"{VNU_JAR} missing: run `npm ci` (make test does)"
    return None


def vnu_errors(pages: dict[str, str], folder: Path) -> list[str]:
    """The Nu Html Checker's errors over the pages, as "path: message « extract »"."""
    names = {}
    for index, (path, html) in enumerate(pages.items()):
        file = folder / f"page-{index:04d}.html"
        file.write_text(html, encoding="utf-8")
        names[file.name] = path
    result = subprocess.run(  # nosec B603: fixed arguments, our own files
        [
            "java",
            "-Xss4m",
            "-jar",
            str(VNU_JAR),
            "--errors-only",
            "--format",
            "json",
            "--skip-non-html",
            str(folder),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    messages = json.loads(result.stderr or result.stdout or '{"messages": []}')["messages"]
    return [
        f"{names.get(m.get('url', '').rsplit('/', 1)[-1], m.get('url'))}:{m.get('lastLine', '?')}:"
        f" {m['message']}"
        f" « {(m.get('extract') or '').strip()[:120]} »"
        for m in messages
        if m.get("type") == "error"
    ]


# axe-core over the page as it stands, WCAG 2.1 A and AA rules; only what the test needs.
AXE_RUN = """async () => {
  const result = await axe.run(document, {
    runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
    resultTypes: ["violations"],
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map((n) => n.target.join(" ")),
  }));
}"""


# French slips a reader notices (issue 16), found in the visible text and the accessible
# names of every crawled page. Each: (what it is, pattern).
FRENCH_SLIPS = [
    ("« de » not elided before a vowel", re.compile(r"\b[Dd]e (?=[AEIOUÉÈÊÂÎÔaeiouéèêâîôœ]\w)")),
    # (a pronoun before an infinitive is right: « oblige à les conserver »)
    (
        "« de le / de les / à le / à les »",
        re.compile(r"\b(?:[Dd]e|[àÀ]) (?:le|les) (?!\w+(?:er|ir|re)\b)"),
    ),
    ("an agreement written (e)", re.compile(r"\w\((?:e|es|s\))\)|\w\(e\)s?\b|\w·e\b")),
    (
        "« 1er » before a feminine noun",
        re.compile(
            r"\b1er (?:fois|relance|échéance|période|semaine|facture|année|inscription|heure|"
            r"demande|journée|séance|classe)\b"
        ),
    ),
    ("an ordinal other than 1 written « er »", re.compile(r"\b(?:[02-9]|\d{2,})er\b")),
    ("a label repeated after its colon", re.compile(r"\b(\w{3,}) : \1\b", re.I)),
]
# Words that begin with a vowel but take « de » (none yet) and exact phrases allowed.
FRENCH_ALLOWED = re.compile(r"de (?:Oui|Ouest)\b")
_SCRIPT_OR_STYLE = re.compile(r"<(script|style|template)\b.*?</\1>", re.S | re.I)
_ACCESSIBLE_NAME = re.compile(r'\s(?:aria-label|title|alt|placeholder)="([^"]*)"')
_TAG = re.compile(r"<[^>]+>")


def readable_text(html_text: str) -> str:
    """What a reader meets on a page: the text between tags and the accessible names."""
    import html

    body = _SCRIPT_OR_STYLE.sub(" ", html_text)
    names = " | ".join(_ACCESSIBLE_NAME.findall(body))
    text = _TAG.sub(" ", body)
    return re.sub(r"\s+", " ", html.unescape(f"{text} | {names}"))


def french_slips(pages: dict[str, str]) -> list[str]:
    """ "where: what — «…excerpt…»" for every slip found in `pages` (name → HTML)."""
    found = []
    for where, html_text in pages.items():
        text = readable_text(html_text)
        for what, pattern in FRENCH_SLIPS:
            for match in pattern.finditer(text):
                excerpt = text[max(0, match.start() - 30) : match.end() + 30]
                if FRENCH_ALLOWED.search(excerpt):
                    continue
                found.append(f"{where}: {what} — «{excerpt.strip()}»")
    return found
