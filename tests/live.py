"""A live server and a phone-sized Chromium for the browser tests.

The live app runs in a thread of the test process, on its own database (a
SQLite file, or a `citoyens_browser` database beside TEST_DATABASE_URL on
PostgreSQL), so that it never meets the session app's rolled-back transactions.
Its e-mails are recorded through Flask-Mail's signal, which fires in the
server's threads but reaches the recorder in this process.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from werkzeug.serving import make_server

from citoyens import create_app
from citoyens.config import normalize_database_url
from citoyens.extensions import db, limiter, mail
from tests.conftest import scratch_database_name, test_config

BROWSER_DATABASE = "citoyens_browser"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# An iPhone 12-15 sized screen, in French.
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "fr-FR",
    "timezone_id": "Europe/Paris",
}
# The staff's desktop, in French.
DESKTOP = {
    "viewport": {"width": 1280, "height": 800},
    "locale": "fr-FR",
    "timezone_id": "Europe/Paris",
}


@dataclass
class LiveServer:
    url: str
    app: object
    outbox: list = field(default_factory=list)

    def mails_to(self, address: str) -> list:
        return [m for m in self.outbox if address in m.recipients]

    def link_in(self, message, path: str) -> str:
        """The first link to `path` (e.g. "/confirmer/") in a message's text body."""
        match = re.search(re.escape(self.url + path) + r"[^\s\"'<>]+", message.body or "")
        assert match, f"no {self.url}{path}… link in the message:\n{message.body}"
        return match.group(0)


def find_chromium() -> str | None:
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@contextmanager
def browser_database(tmp_path: Path, name: str = BROWSER_DATABASE) -> Iterator[str]:
    """A fresh, empty database URL of the live app's own; dropped afterwards on PostgreSQL.

    `name` is the PostgreSQL database's: a test module of its own may take its own name,
    so that it never drops the database of another module's server running at the same time.
    """
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        yield f"sqlite:///{tmp_path / 'browser.sqlite3'}"
        return
    admin_url = make_url(normalize_database_url(server_url))
    name = scratch_database_name(name)
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def drop(conn):
        # FORCE (PostgreSQL 13+): a crashed earlier run may have left connections behind.
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    try:
        with admin.connect() as conn:
            drop(conn)
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url
    finally:
        with admin.connect() as conn:
            drop(conn)
        admin.dispose()


@contextmanager
def serve(tmp_path: Path, database: str = BROWSER_DATABASE) -> Iterator[LiveServer]:
    """Serve a fresh app on 127.0.0.1 (a free port) in a daemon thread, recording its mails.

    `database`: the PostgreSQL database's name (see `browser_database`).
    """
    # Flask-Limiter keeps `enabled` on the shared Limiter object, not per app: building
    # an app with RATELIMIT_ENABLED=False turns limits off for the session app too.
    # Put it back afterwards so that later tests still see their 429s.
    limiter_was_enabled = limiter.enabled
    with browser_database(tmp_path, database) as url:
        app = create_app(
            test_config(url, MAIL_BACKEND="smtp", MAIL_SUPPRESS_SEND=True, RATELIMIT_ENABLED=False)
        )
        try:
            with app.app_context():
                db.create_all()
            server = make_server("127.0.0.1", 0, app, threaded=True)
            base = f"http://127.0.0.1:{server.server_port}"
            # Links in e-mails must point at this server (accounts.operations._external_url).
            app.config["PUBLIC_URL"] = base
            thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
            with mail.record_messages() as outbox:
                thread.start()
                try:
                    yield LiveServer(base, app, outbox)
                finally:
                    server.shutdown()
                    thread.join(timeout=10)
                    server.server_close()
        finally:
            limiter.enabled = limiter_was_enabled
            with app.app_context():
                db.engine.dispose()


# --- Page checks shared by the browser tests --------------------------------------------------

PHONE_WIDTH = PHONE["viewport"]["width"]
NO_HORIZONTAL_SCROLL = "() => document.documentElement.scrollWidth"


# The phone's bottom bar names a place shorter than the desktop menu.
PHONE_LABELS = {"Mon foyer": "Foyer"}


def nav(page, label: str) -> None:
    """Follow a link of the main navigation: the desktop menu, or on a phone the bottom bar,
    else the « Plus » page it opens (the places the bar has no room for)."""
    menu = page.get_by_role("navigation", name="Navigation principale")  # the one shown
    link = menu.get_by_role("link", name=label, exact=True)
    if link.count() == 1:
        link.click()
        return
    short = menu.get_by_role("link", name=PHONE_LABELS.get(label, label), exact=True)
    if short.count() == 1:
        short.click()
        return
    menu.get_by_role("link", name=re.compile(r"^Plus\b")).click()
    page.get_by_role("main").get_by_role("link", name=re.compile(rf"^{re.escape(label)}\b")).click()


def assert_fits_the_phone(page) -> None:
    width = page.evaluate(NO_HORIZONTAL_SCROLL)
    assert width <= PHONE_WIDTH, f"{page.url} scrolls sideways: {width}px wide"
