"""Response headers, cookies, inline scripts and error pages (SECURITY.md "Headers")."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser

import pytest
from flask import url_for

from citoyens import create_app
from citoyens.extensions import db
from tests import conftest
from tests.conftest import decoded, post


def extra_app(app, **overrides):
    """Another app on the same database, for settings the shared `app` does not have."""
    return create_app(conftest.test_config(app.config["SQLALCHEMY_DATABASE_URI"], **overrides))


def dispose(other):
    with other.app_context():
        db.engine.dispose()


def login_client(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303
    return client


def csp_directives(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no CSP on {response.request.path}"
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def set_cookies(response) -> dict[str, dict[str, str | bool]]:
    """Set-Cookie headers by cookie name: {"value": …, "httponly": True, "samesite": "Lax", …}."""
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        cookie: dict[str, str | bool] = {"value": value}
        for attribute in attributes:
            key, sep, val = attribute.partition("=")
            cookie[key.lower()] = val if sep else True
        cookies[name] = cookie
    return cookies


# --- Pages of every kind ------------------------------------------------------------------


@pytest.fixture
def responses(app, client, parent, staff):
    """A public page, personal pages, a staff page and error pages."""
    anonymous = client
    family = login_client(app, parent)
    agent = login_client(app, staff)
    return {
        "public": anonymous.get("/"),
        "login": anonymous.get("/connexion"),
        "dashboard": family.get("/tableau-de-bord"),
        "account": family.get("/mon-compte"),
        "admin": agent.get("/admin/"),
        "forbidden": family.get("/admin/"),
        "not found": anonymous.get("/nulle-part"),
        "not found (logged in)": family.get("/nulle-part"),
        "method": anonymous.get("/deconnexion"),
        "csrf": anonymous.post("/connexion", data={"email": "a@example.org"}),
    }


EXPECTED_STATUS = {
    "public": 200,
    "login": 200,
    "dashboard": 200,
    "account": 200,
    "admin": 200,
    "forbidden": 403,
    "not found": 404,
    "not found (logged in)": 404,
    "method": 405,
    "csrf": 400,
}


PUBLIC = {"public", "login"}


def test_security_headers_on_every_kind_of_page(responses):
    """One test, many pages: each login hashes a password, so the pages are fetched once."""
    assert {name: r.status_code for name, r in responses.items()} == EXPECTED_STATUS
    for name, response in responses.items():
        header = response.headers["Content-Security-Policy"]
        for unsafe in ("unsafe-inline", "unsafe-eval", "unsafe-hashes"):
            assert unsafe not in header, (name, unsafe)
        directives = csp_directives(response)
        assert directives["object-src"] == ["'none'"], name
        assert directives["base-uri"] == ["'none'"], name
        assert directives["frame-ancestors"] == ["'none'"], name
        assert directives["default-src"] == ["'self'"], name
        script_sources = directives.get("script-src", directives["default-src"])
        assert not {"*", "data:", "blob:", "http:", "https:"} & set(script_sources), name

        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", name
        cache_control = response.headers.get("Cache-Control", "")
        if name in PUBLIC:  # kept by the browser alone (back/forward cache), checked each time
            assert cache_control == "private, no-cache", name
        else:  # personal pages and error pages
            assert "no-store" in cache_control, name
        # every one is built by citoyens.web.render (error pages through errors._page)
        assert "HX-Request" in response.headers.get("Vary", ""), name


def test_login_answers_are_not_stored(client, parent):
    response = post(client, "/connexion", {"email": parent.email, "password": "mauvais mot"})
    assert "no-store" in response.headers["Cache-Control"]
    response = post(client, "/connexion", {"email": parent.email, "password": parent.password})
    assert response.status_code == 303
    assert "no-store" in response.headers["Cache-Control"]


PUBLIC_PAGES = ("/", "/connexion", "/creer-mon-espace", "/accessibilite", "/donnees-personnelles")


def test_public_pages_may_enter_the_back_forward_cache_personal_pages_never(client, auth, parent):
    """`no-store` keeps a page out of the back/forward cache: only personal pages have it."""
    for path in PUBLIC_PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        # the browser alone, checked on each visit: a shared cache never gets the CSRF token
        assert response.headers["Cache-Control"] == "private, no-cache", path
    assert client.get("/connexion?next=/mes-documents").headers["Cache-Control"] == (
        "private, no-cache"
    )
    offline = client.get("/hors-ligne").headers["Cache-Control"]
    assert offline.startswith("public") and "no-store" not in offline
    # Pages with a token in their address, a form's answer, an error: never stored.
    for response in (
        client.get("/nouveau-mot-de-passe/x"),
        client.get("/confirmer/x"),
        post(client, "/connexion", {"email": "x@example.org", "password": "y"}),
        client.get("/nulle-part"),
    ):
        assert response.headers["Cache-Control"] == "no-store", response.request.path
    # Logged in, every page is personal: the public ones show the account's navigation.
    auth.login(parent)
    for path in ("/accessibilite", "/donnees-personnelles", "/tableau-de-bord", "/mon-compte"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path


# --- HSTS -----------------------------------------------------------------------------------


def test_no_hsts_without_the_setting(app, client):
    response = client.get("/")
    if app.config.get("HSTS"):
        assert "Strict-Transport-Security" in response.headers
    else:
        assert "Strict-Transport-Security" not in response.headers


def test_hsts_when_the_app_has_it(app):
    secure = extra_app(app, HSTS=True)
    try:
        client = secure.test_client()
        for path in ("/", "/connexion", "/nulle-part", "/static/css/app.css"):
            header = client.get(path, base_url="https://localhost").headers.get(
                "Strict-Transport-Security", ""
            )
            directives = [d.strip().lower() for d in header.split(";")]
            max_age = [int(d.split("=", 1)[1]) for d in directives if d.startswith("max-age=")]
            assert max_age and max_age[0] >= 365 * 24 * 3600, (path, header)
            assert "includesubdomains" in directives, (path, header)
    finally:
        dispose(secure)


# --- Cookies ------------------------------------------------------------------------------


def test_session_cookie_flags_after_login(app, client, parent):
    response = post(client, "/connexion", {"email": parent.email, "password": parent.password})
    cookies = set_cookies(response)
    session = cookies[app.config["SESSION_COOKIE_NAME"]]
    assert session.get("httponly") is True
    assert session.get("samesite") == "Lax"
    assert session.get("path") == "/"
    assert "domain" not in session


def _expiry(cookie) -> datetime:
    if "max-age" in cookie:
        return datetime.now(UTC) + timedelta(seconds=int(cookie["max-age"]))
    assert "expires" in cookie, "a persistent cookie without Expires or Max-Age"
    return parsedate_to_datetime(cookie["expires"])


PRODUCTION_COOKIES = {
    "SESSION_COOKIE_SECURE": True,
    "SESSION_COOKIE_NAME": "__Host-session",
    "REMEMBER_COOKIE_NAME": "__Host-remember",
    "REMEMBER_COOKIE_SECURE": True,
    "PREFERRED_URL_SCHEME": "https",
}


def test_production_cookies_are_host_prefixed_secure_and_short_lived(app, parent):
    production = extra_app(app, **PRODUCTION_COOKIES)
    try:
        client = production.test_client()
        client.environ_base["wsgi.url_scheme"] = "https"
        response = post(
            client,
            "/connexion",
            {"email": parent.email, "password": parent.password, "remember": "y"},
            # Flask-WTF checks the Referer on HTTPS (WTF_CSRF_SSL_STRICT), as browsers send it.
            headers={"Referer": "https://localhost/connexion"},
        )
        assert response.status_code == 303
        cookies = set_cookies(response)
        assert set(cookies) == {"__Host-session", "__Host-remember"}, set(cookies)
        now = datetime.now(UTC)
        for name, cookie in cookies.items():
            # __Host-: Secure, Path=/, no Domain, or the browser drops the cookie.
            assert cookie.get("secure") is True, name
            assert cookie.get("httponly") is True, name
            assert cookie.get("samesite") == "Lax", name
            assert cookie.get("path") == "/", name
            assert "domain" not in cookie, name
        remember = cookies["__Host-remember"]
        assert _expiry(remember) <= now + timedelta(days=30, minutes=1)
        if "max-age" in remember:
            assert int(remember["max-age"]) <= 30 * 24 * 3600
        session_expiry = _expiry(cookies["__Host-session"])
        assert session_expiry <= now + production.config["SESSION_ABSOLUTE_LIFETIME"]
        # and the session works over HTTPS with those names
        assert client.get("/tableau-de-bord").status_code == 200
    finally:
        dispose(production)


def test_logout_deletes_the_remember_cookie(app, client, auth, parent):
    name = app.config["REMEMBER_COOKIE_NAME"]
    auth.login(parent, remember=True)
    response = auth.logout()
    cookies = set_cookies(response)
    assert name in cookies, "logout leaves the remember-me cookie in the browser"
    assert _expiry(cookies[name]) <= datetime.now(UTC)


def _login_13_hours_ago(client):
    with client.session_transaction() as session:
        session["auth_at"] = int(time.time()) - 13 * 3600
    return client.get("/tableau-de-bord")


def test_absolute_lifetime_applies_without_remember_me(app, client, auth, parent):
    auth.login(parent)
    assert _login_13_hours_ago(client).status_code == 303


def test_stale_remember_cookie_does_not_extend_a_later_session(client, auth, parent):
    """Shared computer: someone ticked "Se souvenir de moi" then logged out; the next login
    without it must still end after 12 hours, not 30 days."""
    auth.login(parent, remember=True)
    auth.logout()
    auth.login(parent)
    assert _login_13_hours_ago(client).status_code == 303


def test_made_up_remember_cookie_does_not_extend_the_session(app, client, auth, parent):
    auth.login(parent)
    client.set_cookie(app.config["REMEMBER_COOKIE_NAME"], "made-up")
    assert _login_13_hours_ago(client).status_code == 303


# --- HTML: no inline script, htmx locked down -----------------------------------------------


class PageParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict] = []
        self.inline_handlers: list[str] = []
        self.style_attributes: list[str] = []
        self.style_elements = 0
        self.htmx_config: list[str] = []
        self.html_lang: str | None = None
        self._in_script: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on"):
                self.inline_handlers.append(f"<{tag} {name}>")
            if name == "style":
                self.style_attributes.append(f"<{tag} style>")
            if name.startswith(("hx-on", "data-hx-on")):
                self.inline_handlers.append(f"<{tag} {name}>")
        if tag == "script":
            self._in_script = {"attrs": attributes, "body": ""}
            self.scripts.append(self._in_script)
        elif tag == "style":
            self.style_elements += 1
        elif tag == "meta" and attributes.get("name") == "htmx-config":
            self.htmx_config.append(attributes.get("content") or "")
        elif tag == "html":
            self.html_lang = attributes.get("lang")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self._in_script["body"] += data


def parse(response) -> PageParser:
    parser = PageParser()
    parser.feed(response.get_data(as_text=True))
    parser.close()
    return parser


def rendered_pages(app, client, parent, staff):
    anonymous = client
    pages = {
        path: anonymous.get(path)
        for path in (
            "/",
            "/accessibilite",
            "/donnees-personnelles",
            "/connexion",
            "/creer-mon-espace",
            "/verifiez-vos-mails",
            "/renvoyer-le-lien",
            "/mot-de-passe-oublie",
            "/confirmer/x",
            "/nouveau-mot-de-passe/x",
            "/hors-ligne",
            "/nulle-part",
        )
    }
    pages["signup errors"] = post(anonymous, "/creer-mon-espace", {"email": "pas une adresse"})
    pages["login failed"] = post(
        anonymous, "/connexion", {"email": "x@example.org", "password": "y"}
    )
    family = login_client(app, parent)
    for path in ("/tableau-de-bord", "/mon-compte", "/admin/"):
        pages[f"parent {path}"] = family.get(path)
    pages["password errors"] = post(family, "/mon-compte/mot-de-passe", {"password": "court"})
    agent = login_client(app, staff)
    pages["staff /admin/"] = agent.get("/admin/")
    return pages


# Standalone pages, without the shell (no htmx, no token): the offline page.
WITHOUT_SHELL = {"/hors-ligne"}


def test_no_inline_script_and_htmx_locked_down(app, client, parent, staff):
    for name, response in rendered_pages(app, client, parent, staff).items():
        assert response.mimetype == "text/html", name
        page = parse(response)
        assert page.html_lang == "fr", name
        for script in page.scripts:
            src = script["attrs"].get("src")
            assert src, f"{name}: inline <script> {script['body'][:80]!r}"
            assert not script["body"].strip(), f"{name}: <script src> with a body"
            assert src.startswith("/static/"), f"{name}: script from {src}"
        assert not page.inline_handlers, f"{name}: inline handlers {page.inline_handlers}"
        assert not page.style_attributes, f"{name}: style attributes {page.style_attributes}"
        assert not page.style_elements, f"{name}: <style> element blocked by the CSP"
        if name in WITHOUT_SHELL:
            assert not page.htmx_config, name
            continue
        assert page.scripts, f"{name}: the shell should load htmx"
        assert len(page.htmx_config) == 1, name
        config = json.loads(page.htmx_config[0])
        assert config.get("includeIndicatorStyles") is False, name
        assert config.get("allowEval") is False, name
        assert config.get("allowScriptTags") is False, name
        assert config.get("historyCacheSize") == 0, name


def test_htmx_is_loaded_with_subresource_integrity(app, client):
    page = parse(client.get("/"))
    with app.test_request_context():
        src = url_for("static", filename=app.config["HTMX_FILE"])  # its content-hashed URL
    htmx = [s for s in page.scripts if s["attrs"].get("src") == src]
    assert len(htmx) == 1
    assert htmx[0]["attrs"].get("integrity") == app.config["HTMX_SRI"]
    # The SRI holds for the bytes served (htmx is not minified again), compressed or not.
    for encoding in ("br", "gzip", "identity"):
        response = client.get(src, headers={"Accept-Encoding": encoding})
        data = decoded(response)
        sri = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
        assert sri == app.config["HTMX_SRI"], encoding


# --- Error pages --------------------------------------------------------------------------


def test_404_is_french_and_generic(client):
    response = client.get("/nulle-part/../../etc/passwd")
    assert response.status_code == 404
    text = response.get_data(as_text=True)
    assert "Page introuvable" in text
    assert "Not Found" not in text
    assert "Traceback" not in text
    assert parse(response).html_lang == "fr"


def test_unexpected_error_is_a_generic_french_500(app):
    broken = extra_app(app)

    def boom():
        raise RuntimeError("secret-internal-detail /srv/citoyens/app.py line 42")

    broken.add_url_rule("/boom", "boom", boom)
    try:
        client = broken.test_client()
        response = client.get("/boom")
        assert response.status_code == 500
        text = response.get_data(as_text=True)
        assert "Erreur inattendue" in text
        assert "Un problème est survenu de notre côté" in text
        for leak in ("Traceback", "RuntimeError", "secret-internal-detail", "/srv/", "line 42"):
            assert leak not in text
        assert response.headers["Cache-Control"] == "no-store"
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        # a JSON client gets the same, without detail
        response = client.get("/boom", headers={"Accept": "application/json"})
        assert response.status_code == 500
        assert response.get_json() == {"error": "Erreur inattendue"}
        # the app keeps answering after the error
        assert client.get("/").status_code == 200
    finally:
        dispose(broken)


def test_debug_is_off(app):
    assert not app.debug
