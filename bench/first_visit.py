"""First visit of the dashboard as the demo parent: requests and bytes on the wire.

    .venv/bin/python bench/first_visit.py

Serves the demo (a throwaway SQLite database) on 127.0.0.1 and drives Debian's Chromium
(Playwright) as a phone whose cache is empty: it logs in through the API (the login
page's assets would warm the cache), then opens /tableau-de-bord. Every request reaching
the server is recorded by a WSGI middleware with the bytes it sent (body as encoded, plus
status line and headers), so the service worker's own fetches count too. Then the same
page again (the repeat visit: what the year-long cache saves) and the login page for an
anonymous phone. Sizes only, no timing: run it anywhere.

Target (issue 15): ≤ 8 requests and ≤ 50 KB for the first visit.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from werkzeug.serving import make_server  # noqa: E402

from citoyens import create_app  # noqa: E402
from citoyens.demo import seed  # noqa: E402
from citoyens.extensions import db  # noqa: E402
from tests.live import CHROMIUM_ARGS, PHONE, find_chromium  # noqa: E402

PARENT = ("parent@example.org", "citoyens-demo-parent")
TARGET_REQUESTS = 8
TARGET_BYTES = 50 * 1024
SETTLE = """(ms) => Promise.race([
    navigator.serviceWorker.ready.then(() => "ready"),
    new Promise((resolve) => setTimeout(() => resolve("timeout"), ms)),
])"""
# The service worker's install is done when its cache holds every file it precaches.
PRECACHED = """async () => {
    const names = await caches.keys();
    let count = 0;
    for (const name of names) count += (await (await caches.open(name)).keys()).length;
    return {names, count};
}"""


@dataclass
class Hit:
    method: str
    path: str
    status: int
    encoding: str
    dest: str
    body: int
    headers: int

    @property
    def total(self) -> int:
        return self.body + self.headers


class Recorder:
    """WSGI middleware: each request with what the response put on the wire."""

    def __init__(self, app):
        self.app = app
        self.hits: list[Hit] = []
        self.lock = threading.Lock()

    def take(self) -> list[Hit]:
        with self.lock:
            hits, self.hits = self.hits, []
        return hits

    def __call__(self, environ, start_response):
        seen = {}

        def recording_start(status, headers, exc_info=None):
            seen["status"] = int(status.split()[0])
            seen["encoding"] = dict(headers).get("Content-Encoding", "")
            # HTTP/1.1 status line, headers, blank line; the server adds Date and Server.
            lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers]
            seen["headers"] = sum(len(line) + 2 for line in lines) + 2 + 70
            return start_response(status, headers, exc_info)

        body = 0
        for chunk in self.app(environ, recording_start):
            body += len(chunk)
            yield chunk
        path = environ.get("PATH_INFO", "")
        if environ.get("QUERY_STRING"):
            path += "?" + environ["QUERY_STRING"]
        hit = Hit(
            environ["REQUEST_METHOD"],
            path,
            seen["status"],
            seen["encoding"],
            environ.get("HTTP_SEC_FETCH_DEST", ""),
            body,
            seen["headers"],
        )
        with self.lock:
            self.hits.append(hit)


def demo_app(folder: str):
    os.environ.setdefault("CITOYENS_ENV", "development")
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/first-visit.sqlite3",
            "MAIL_BACKEND": "smtp",
            "MAIL_SUPPRESS_SEND": True,
            "RATELIMIT_ENABLED": False,
            "UPLOAD_FOLDER": folder,
        }
    )
    with app.app_context():
        db.create_all()
        seed()
        db.session.commit()
    return app


def log_in(context, base: str) -> None:
    """Log in through the API: the cookie is the browser context's, its cache stays empty."""
    page = context.request.get(f"{base}/connexion").text()
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    email, password = PARENT
    response = context.request.post(
        f"{base}/connexion",
        form={"email": email, "password": password, "csrf_token": token},
        max_redirects=0,
    )
    assert response.status == 303, f"login failed: {response.status}"


def visit(page, path: str) -> None:
    page.goto(path, wait_until="load")
    page.evaluate(SETTLE, 5000)
    page.wait_for_load_state("networkidle")


def report(title: str, hits: list[Hit]) -> tuple[int, int]:
    total = sum(hit.total for hit in hits)
    body = sum(hit.body for hit in hits)
    print(f"\n{title}: {len(hits)} requests, {total / 1024:.1f} KB ({body / 1024:.1f} KB bodies)")
    print(f"  {'':<4} {'path':<50} {'st':>3} {'enc':<5} {'dest':<13} {'bytes':>7}")
    for hit in hits:
        label = hit.path if len(hit.path) <= 50 else hit.path[:47] + "..."
        print(
            f"  {hit.method:<4} {label:<50} {hit.status:>3} {hit.encoding or '-':<5}"
            f" {hit.dest or '-':<13} {hit.total:>7}"
        )
    return len(hits), total


def main() -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("Playwright is not installed (pip install -e '.[dev]')")
        return 2
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium found (apt install chromium)")
        return 2

    folder = tempfile.mkdtemp(prefix="citoyens-first-visit-")
    app = demo_app(folder)
    recorder = Recorder(app.wsgi_app)
    app.wsgi_app = recorder
    server = make_server("127.0.0.1", 0, app, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            context = browser.new_context(base_url=base, **PHONE)
            log_in(context, base)
            recorder.take()
            page = context.new_page()
            visit(page, "/tableau-de-bord")
            precached = page.evaluate(PRECACHED)
            first = recorder.take()
            requests, size = report("First visit of the dashboard", first)
            page_only = [hit for hit in first if hit.dest not in ("empty", "serviceworker")]
            print(
                f"  of which the page itself: {len(page_only)} requests, "
                f"{sum(hit.total for hit in page_only) / 1024:.1f} KB; the rest is the service "
                f"worker's install (script, offline page; the hashed files come from the HTTP "
                f"cache). Its cache: {precached['names']}, {precached['count']} files."
            )
            visit(page, "/tableau-de-bord")
            report("Repeat visit", recorder.take())
            anonymous = browser.new_context(base_url=base, **PHONE)
            visit(anonymous.new_page(), "/connexion")
            report("First visit of the login page (anonymous)", recorder.take())
            browser.close()
    finally:
        server.shutdown()
        thread.join(timeout=10)
    ok = requests <= TARGET_REQUESTS and size <= TARGET_BYTES
    print(
        f"\nTarget ≤ {TARGET_REQUESTS} requests and ≤ {TARGET_BYTES // 1024} KB: "
        f"{requests} requests, {size / 1024:.1f} KB: {'met' if ok else 'NOT met'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
