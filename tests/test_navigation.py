"""The parent's navigation, as served: the phone's bottom bar (four places and « Plus »), the
« Plus » page with the rest, and the desktop menu still there (CSS shows one or the other;
tests/test_browser_phone.py checks what a phone shows)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

from tests.conftest import post
from tests.factories import make_user
from tests.test_access import login_client

BOTTOM_BAR = [
    ("/tableau-de-bord", "Accueil"),
    ("/reservations/", "Réservations"),
    ("/factures", "Factures"),
    ("/mon-foyer", "Foyer"),
    ("/plus", "Plus"),
]


@dataclass
class Link:
    href: str
    text: str = ""
    current: str | None = None


@dataclass
class Nav:
    label: str
    css_class: str
    links: list[Link] = field(default_factory=list)


class Page(HTMLParser):
    """The navigations of a page (their links, text and aria-current), its ids, its forms."""

    def __init__(self, html: str):
        super().__init__()
        self.navs: list[Nav] = []
        self.ids: list[str] = []
        self.forms: list[dict] = []
        self.main_links: list[Link] = []
        self._nav: Nav | None = None
        self._link: Link | None = None
        self._in_main = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "main":
            self._in_main = True
        elif tag == "nav":
            self._nav = Nav(attrs.get("aria-label", ""), attrs.get("class", ""))
            self.navs.append(self._nav)
        elif tag == "a" and (self._nav or self._in_main):
            self._link = Link(attrs.get("href", ""), current=attrs.get("aria-current"))
            (self._nav.links if self._nav else self.main_links).append(self._link)
        elif tag == "form":
            self.forms.append(attrs)

    def handle_endtag(self, tag):
        if tag == "nav":
            self._nav = None
        elif tag == "main":
            self._in_main = False
        elif tag == "a":
            self._link = None

    def handle_data(self, data):
        if self._link is not None:
            self._link.text = " ".join((self._link.text + " " + data).split())

    def nav(self, css_class: str) -> Nav:
        found = [n for n in self.navs if css_class in n.css_class.split()]
        assert len(found) == 1, f"{len(found)} <nav class={css_class}>"
        return found[0]


def page_of(client, path: str) -> Page:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return Page(response.get_data(as_text=True))


def test_the_bottom_bar_has_the_four_places_and_plus(app):
    client = login_client(app, make_user(app, role="parent"))
    page = page_of(client, "/tableau-de-bord")
    bar = page.nav("tabbar")
    assert bar.label == "Navigation principale"
    assert [(link.href, link.text) for link in bar.links] == BOTTOM_BAR
    assert [link.text for link in bar.links if link.current == "page"] == ["Accueil"]
    # The desktop menu is still served, with every section.
    menu = page.nav("main-nav")
    assert menu.label == "Navigation principale"
    assert {"Accueil", "Mon foyer", "Documents", "Réservations", "Factures", "Messages"} <= {
        link.text for link in menu.links
    }
    assert [link.text for link in menu.links if link.current == "page"] == ["Accueil"]
    assert 'class="has-tabbar"' in client.get("/tableau-de-bord").get_data(as_text=True)


def test_the_current_place_is_marked_in_the_bottom_bar(app):
    client = login_client(app, make_user(app, role="parent"))
    expected = {
        "/reservations/": "Réservations",
        "/reservations/parametres": "Réservations",
        "/factures": "Factures",
        "/mon-foyer": "Foyer",
        "/plus": "Plus",
        "/mes-documents": "Plus",
        "/mes-messages": "Plus",
        "/mes-demandes": "Plus",
        "/inscriptions": "Plus",
        "/prelevement": "Plus",
        "/mon-compte": "Plus",
    }
    for path, place in expected.items():
        bar = page_of(client, path).nav("tabbar")
        current = [link.text for link in bar.links if link.current == "page"]
        assert current == [place], (path, current)


def test_plus_lists_the_other_places_and_a_logout_form(app):
    client = login_client(app, make_user(app, role="parent"))
    page = page_of(client, "/plus")
    listed = {link.href: link.text for link in page.main_links}
    assert listed == {
        "/mes-documents": "Documents",
        "/mes-demandes": "Demandes",
        "/inscriptions": "Inscriptions",
        "/mes-messages": "Messages",
        "/prelevement": "Prélèvement automatique",
        "/mon-compte": "Mon compte",
        "/accessibilite": "Aide et accessibilité",
    }, listed
    # Déconnexion: a POST form (in the page, beside the header's).
    logouts = [f for f in page.forms if f.get("action") == "/deconnexion"]
    assert len(logouts) == 2 and all(f.get("method") == "post" for f in logouts)
    duplicates = [i for i, n in Counter(page.ids).items() if n > 1]
    assert duplicates == []


def test_plus_shows_the_unread_count_once_per_place_without_duplicate_ids(app, monkeypatch):
    from citoyens.messages import rules

    client = login_client(app, make_user(app, role="parent"))
    monkeypatch.setattr(rules, "unread_count", lambda household_id: 2)
    html = client.get("/plus").get_data(as_text=True)
    page = Page(html)
    duplicates = [i for i, n in Counter(page.ids).items() if n > 1]
    assert duplicates == []
    listed = {link.href: link.text for link in page.main_links}
    assert listed["/mes-messages"] == "Messages 2 non lus"
    assert page.nav("tabbar").links[-1].text == "Plus 2 non lus"
    assert page.nav("main-nav").links[-2].text == "Messages 2 non lus"
    # Each count the message page updates out of band has its own id.
    assert html.count('id="messages-non-lus"') == 1 and html.count('id="onglet-non-lus"') == 1


def test_plus_is_for_logged_in_parents_only(app, client):
    response = client.get("/plus")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/connexion")
    staff = login_client(app, make_user(app, role="staff"))
    assert staff.get("/plus").status_code == 403
    # Staff keep their own menu, with no bottom bar.
    html = staff.get("/admin/").get_data(as_text=True)
    assert 'class="tabbar"' not in html and 'class="main-nav"' in html


def test_anonymous_pages_have_no_bottom_bar(client):
    html = client.get("/connexion").get_data(as_text=True)
    assert "tabbar" not in html


def test_logging_out_from_plus_works(app):
    client = login_client(app, make_user(app, role="parent"))
    assert post(client, "/deconnexion").status_code in (302, 303)
    assert client.get("/plus").status_code in (302, 303)


# --- Offline and uploads, as served (tests/test_browser_phone.py runs them) ----------------------


def test_the_offline_page_retries_the_address_the_parent_asked_for(client):
    html = client.get("/hors-ligne").get_data(as_text=True)
    # The worker serves this page at the address asked for: an empty href reloads it.
    assert '<a class="button button-primary" href="" id="reessayer">Réessayer</a>' in html


def test_the_installed_app_is_not_locked_in_portrait(client):
    manifest = client.get("/manifest.webmanifest").get_json()
    assert manifest.get("orientation", "any") == "any"


def test_upload_pages_load_uploads_js_and_mark_their_forms(app):
    import re

    from tests.documents_factories import make_type

    make_type(app, scope="household", label="Justificatif de test")
    client = login_client(app, make_user(app, role="parent"))
    html = client.get("/mes-documents").get_data(as_text=True)
    assert re.search(r'<script src="/static/js/uploads\.[0-9a-f]{10}\.js" defer></script>', html)
    forms = re.findall(r'<form [^>]*enctype="multipart/form-data"[^>]*>', html)
    assert forms and all("data-upload" in form for form in forms)
    assert "uploads." not in client.get("/tableau-de-bord").get_data(as_text=True)
