"""Assets (issue 15): compressed responses, content-hashed static files cached a year, the
service worker's cache named from those hashes."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Response, stream_with_context, url_for

from citoyens import assets, create_app
from citoyens.extensions import db
from citoyens.tabular import Sheet, send_table
from tests import conftest
from tests.conftest import decoded

STATIC = Path(__file__).parent.parent / "citoyens" / "static"
HASHED = re.compile(r"^/static/(?P<stem>.+)\.(?P<hash>[0-9a-f]{10})(?P<ext>\.\w+)$")
IMMUTABLE = "public, max-age=31536000, immutable"
BROWSER = "gzip, deflate, br, zstd"  # what Chromium sends


def other_app(app, **overrides):
    """Another app on the same database: another folder of static files, another mode."""
    return create_app(conftest.test_config(app.config["SQLALCHEMY_DATABASE_URI"], **overrides))


def dispose(*apps):
    for other in apps:
        with other.app_context():
            db.engine.dispose()


@pytest.fixture
def static_copy(tmp_path):
    def make(name: str, css_extra: str = "") -> Path:
        folder = tmp_path / name
        shutil.copytree(STATIC, folder)
        if css_extra:
            with (folder / "css" / "app.css").open("a") as css:
                css.write(css_extra)
        return folder

    return make


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value and value.startswith("/static/"):
                self.urls.append(value)


def static_links(response) -> list[str]:
    parser = Links()
    parser.feed(decoded(response).decode())
    return parser.urls


def service_worker(client) -> tuple[str, list[str], object]:
    response = client.get("/sw.js")
    body = response.get_data(as_text=True)
    name = json.loads(re.search(r"const CACHE = (\".*?\");", body).group(1))
    precache = json.loads(re.search(r"const PRECACHE = (\[.*?\]);", body).group(1))
    return name, precache, response


# --- content-hashed URLs ------------------------------------------------------------------


def test_pages_link_every_static_file_by_the_hash_of_what_is_served(app, client):
    for path in ("/connexion", "/hors-ligne"):
        links = static_links(client.get(path))
        assert links, path
        for url in links:
            match = HASHED.match(url)
            assert match, f"{path}: {url} is not content-hashed"
            served = client.get(url)
            assert served.status_code == 200, url
            assert hashlib.sha256(served.data).hexdigest()[:10] == match["hash"], url
    with app.test_request_context():
        css = url_for("static", filename="css/app.css")
    assert HASHED.match(css)["stem"] == "css/app"
    assert css in static_links(client.get("/connexion"))


def test_hashed_files_are_cached_a_year_without_cookie(client, auth, parent):
    auth.login(parent)  # a session that Flask-Login reads on every response
    css = static_links(client.get("/hors-ligne"))[0]
    for encoding in ("br", "gzip", ""):
        response = client.get(css, headers={"Accept-Encoding": encoding})
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == IMMUTABLE
        assert response.headers.getlist("Set-Cookie") == []
        assert "cookie" not in response.headers.get("Vary", "").lower()
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        etag = response.headers["ETag"]
        again = client.get(css, headers={"Accept-Encoding": encoding, "If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""
    assert client.get("/tableau-de-bord").status_code == 200  # still logged in


def test_unhashed_or_stale_urls_serve_the_current_file_with_a_short_cache(client):
    current = client.get(static_links(client.get("/hors-ligne"))[0])
    for url in ("/static/css/app.css", "/static/css/app.0123456789.css"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.data == current.data, url
        assert response.headers["Cache-Control"] == "public, no-cache", url
        assert response.headers["ETag"] == current.headers["ETag"]
    for url in (
        "/static/css/nulle-part.0123456789.css",
        "/static/css/nulle-part.css",
        "/static/css/app.css.0123456789",
        "/static/../citoyens/__init__.py",
        "/static/%2e%2e/__init__.py",
        "/static/css/",
        "/static/.0123456789.css",
    ):
        assert client.get(url).status_code == 404, url


def test_css_and_script_are_minified_and_htmx_is_served_as_published(app, client):
    links = static_links(client.get("/connexion"))
    served = {HASHED.match(url)["stem"] + HASHED.match(url)["ext"]: url for url in links}
    css = client.get(served["css/app.css"]).data
    source = (STATIC / "css" / "app.css").read_bytes()
    assert len(css) < 0.9 * len(source) and b"/*" not in css
    assert b":root{--blue:" in css  # rules kept, whitespace gone
    script = client.get(served["js/app.js"]).data
    assert len(script) < 0.9 * len((STATIC / "js" / "app.js").read_bytes())
    assert b"htmx:configRequest" in script
    htmx = client.get(served[app.config["HTMX_FILE"]]).data
    assert htmx == (STATIC / app.config["HTMX_FILE"]).read_bytes()


# --- compression --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (BROWSER, "br"),
        ("br", "br"),
        ("gzip, deflate", "gzip"),
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("*", "br"),
        ("zstd", None),
        ("identity", None),
        ("", None),
    ],
)
def test_brotli_where_accepted_gzip_otherwise(client, accept, expected):
    css = static_links(client.get("/hors-ligne"))[0]
    plain_css = client.get(css).data
    for path in ("/connexion", "/manifest.webmanifest", css):
        response = client.get(path, headers={"Accept-Encoding": accept})
        assert response.status_code == 200, path
        assert response.headers.get("Content-Encoding") == expected, (path, accept)
        assert "Accept-Encoding" in response.headers["Vary"], path
        assert int(response.headers["Content-Length"]) == len(response.data), path
        body = decoded(response)
        if path == css:
            assert body == plain_css
        elif path == "/connexion":
            assert b"<h1>Connexion" in body
        else:
            assert json.loads(body)["short_name"] == "Citoyens"


def test_compressed_pages_keep_their_security_headers(client):
    plain = client.get("/connexion")
    compressed = client.get("/connexion", headers={"Accept-Encoding": "br"})
    assert compressed.headers["Content-Encoding"] == "br"
    assert len(compressed.data) < len(plain.data) / 2
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy"):
        assert compressed.headers[name] == plain.headers[name], name
    assert compressed.headers["Cache-Control"] == plain.headers["Cache-Control"]


def test_small_responses_images_and_downloads_are_not_compressed(client, auth, admin):
    small = client.get("/healthz", headers={"Accept-Encoding": "br"})
    assert small.status_code == 200 and len(small.data) < 500
    assert "Content-Encoding" not in small.headers
    png = client.get("/static/icons/icon-512.png", headers={"Accept-Encoding": "br"})
    assert png.status_code == 200 and "Content-Encoding" not in png.headers
    auth.login(admin)
    export = client.get("/admin/journal.csv", headers={"Accept-Encoding": "br"})
    assert export.status_code == 200 and "attachment" in export.headers["Content-Disposition"]
    assert "Content-Encoding" not in export.headers


def streamed_text(rows):
    """A streamed response of a compressible type: it must go out as it is produced too."""

    def lines():
        yield "début\n"
        for first, second in rows:
            yield f"{first};{second}\n"

    return Response(stream_with_context(lines()), mimetype="text/plain")


@pytest.mark.parametrize(
    "kind",
    [
        "csv",  # citoyens.tabular, as every export
        "text",
    ],
)
def test_a_streamed_response_still_streams(app, kind):
    progress = {"rows": 0, "done": False}

    def rows():
        for n in range(5000):
            progress["rows"] += 1
            yield [f"ligne {n}", n]
        progress["done"] = True

    def view():
        if kind == "csv":
            return send_table("csv", "essai", [Sheet("Essai", ["a", "b"], rows())])
        return streamed_text(rows())

    other = other_app(app)
    other.add_url_rule("/essai", "essai", view)
    try:
        client = other.test_client()
        response = client.get("/essai", headers={"Accept-Encoding": BROWSER}, buffered=False)
        assert response.status_code == 200 and response.is_streamed
        assert "Content-Encoding" not in response.headers
        assert "Content-Length" not in response.headers
        chunks = iter(response.response)
        next(chunks)  # the BOM and header row, or the first line
        assert not progress["done"] and progress["rows"] < 5000
        rest = b"".join(chunks)
        assert progress["done"] and b"ligne 4999;4999" in rest
        response.close()
    finally:
        dispose(other)


@pytest.mark.parametrize(
    ("site", "compressed"),
    [
        (None, True),
        ("none", True),
        ("same-origin", True),
        ("same-site", False),
        ("cross-site", False),
    ],
)
def test_pages_asked_by_another_site_are_not_compressed(client, site, compressed):
    """BREACH: a page carrying a session-bound token is compressed only for the portal itself."""
    headers = {"Accept-Encoding": "br"} | ({"Sec-Fetch-Site": site} if site else {})
    page = client.get("/connexion", headers=headers)
    assert ("Content-Encoding" in page.headers) is compressed
    assert "Sec-Fetch-Site" in page.headers["Vary"]
    # Public files carry no secret: compressed for everyone.
    css = client.get(static_links(client.get("/hors-ligne"))[0], headers=headers)
    assert css.headers["Content-Encoding"] == "br"


# --- the service worker -------------------------------------------------------------------


def test_service_worker_precaches_the_hashed_files_and_is_never_cached(client):
    name, precache, response = service_worker(client)
    assert re.fullmatch(r"citoyens-[0-9a-f]{12}", name)
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers.getlist("Set-Cookie") == []
    assert precache[0] == "/hors-ligne"
    for url in precache[1:]:
        assert HASHED.match(url), url
    assert set(static_links(client.get("/hors-ligne"))) <= set(precache)


def test_a_changed_stylesheet_gets_a_new_url_and_a_new_worker_cache(app, static_copy):
    """Three deploys: A, then B (one rule added to the CSS), then A again elsewhere."""
    deploys = [
        other_app(app, STATIC_FOLDER=str(static_copy("a"))),
        other_app(app, STATIC_FOLDER=str(static_copy("b", ".nouveau{color:red}"))),
        other_app(app, STATIC_FOLDER=str(static_copy("a-again"))),
    ]
    try:
        seen = []
        for deploy in deploys:
            client = deploy.test_client()
            links = static_links(client.get("/connexion"))
            css = next(url for url in links if HASHED.match(url)["stem"] == "css/app")
            name, precache, _ = service_worker(client)
            assert css in precache
            seen.append((css, name, client.get(css).data))
        (css_a, name_a, body_a), (css_b, name_b, body_b), (css_a2, name_a2, _) = seen
        assert css_b != css_a and name_b != name_a
        assert b".nouveau{color:red}" in body_b and b".nouveau" not in body_a
        # The same files give the same names, whatever the folder (every worker agrees).
        assert (css_a2, name_a2) == (css_a, name_a)
        # An old page's link still gets a stylesheet from the new deploy, checked each time.
        stale = deploys[1].test_client().get(css_a)
        assert stale.status_code == 200 and stale.data == body_b
        assert stale.headers["Cache-Control"] == "public, no-cache"
    finally:
        dispose(*deploys)


def test_a_changed_offline_page_renames_the_worker_cache(client, monkeypatch):
    from citoyens.pwa import views

    before, _, _ = service_worker(client)
    original = views.offline_page
    monkeypatch.setattr(views, "offline_page", lambda: original() + "<!-- v2 -->")
    after, _, _ = service_worker(client)
    assert after != before


def test_development_picks_up_an_edited_stylesheet(app, static_copy, monkeypatch):
    monkeypatch.setattr(assets, "WATCH_INTERVAL", 0)
    folder = static_copy("dev")
    watching = other_app(app, STATIC_FOLDER=str(folder), ASSETS_WATCH=True)
    fixed = other_app(app, STATIC_FOLDER=str(folder), ASSETS_WATCH=False)
    try:
        with watching.test_request_context():
            before = url_for("static", filename="css/app.css")
        with (folder / "css" / "app.css").open("a") as css:
            css.write(".edite{color:blue}")
        with watching.test_request_context():
            after = url_for("static", filename="css/app.css")
        assert after != before
        assert b".edite{color:blue}" in watching.test_client().get(after).data
        with fixed.test_request_context():
            assert url_for("static", filename="css/app.css") == before  # production: at start
    finally:
        dispose(watching, fixed)
