"""An installed app after a deploy (issue 15), in Debian's Chromium through Playwright.

The phone installs the service worker from deploy A; deploy B, with another stylesheet,
then answers on the same address (same origin, so the same worker and caches). The next
visit must show B's stylesheet, the new worker must replace A's cache by its own, and the
offline page must still come up, styled by B, once the server is gone.

Also: the back/forward cache keeps a public page, never a personal one.
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from citoyens import create_app
from citoyens.extensions import db
from tests import live
from tests.conftest import test_config
from tests.test_browser import TIMEOUT_MS, chromium  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

STATIC = Path(__file__).parent.parent / "citoyens" / "static"
DATABASE = "citoyens_browser_assets"
DEPLOY_MARK = (
    """() => getComputedStyle(document.documentElement).getPropertyValue("--deploy").trim()"""
)
WORKER_CACHES = "() => caches.keys()"
WORKER_READY = """(ms) => Promise.race([
    navigator.serviceWorker.ready.then((r) => (r.active ? "active" : "no active worker")),
    new Promise((resolve) => setTimeout(() => resolve("timeout"), ms)),
])"""


class OneRequestPerConnection(WSGIRequestHandler):
    """HTTP/1.0: no keep-alive, so that no request of the browser reaches a deploy that is
    gone through a connection it left open."""

    protocol_version = "HTTP/1.0"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def deploy(tmp_path: Path, name: str, port: int, mark: str) -> Iterator[str]:
    """The app on `port`, its static files those of the repository plus a CSS mark."""
    static = tmp_path / name / "static"
    shutil.copytree(STATIC, static)
    with (static / "css" / "app.css").open("a") as css:
        css.write(f'\n:root {{ --deploy: "{mark}"; }}\n')
    with live.browser_database(tmp_path / name, DATABASE) as url:
        app = create_app(test_config(url, STATIC_FOLDER=str(static)))
        try:
            with app.app_context():
                db.create_all()
            server = make_server(
                "127.0.0.1", port, app, threaded=True, request_handler=OneRequestPerConnection
            )
            thread = threading.Thread(target=server.serve_forever, name=f"deploy-{name}")
            thread.daemon = True
            thread.start()
            try:
                yield f"http://127.0.0.1:{port}"
            finally:
                server.shutdown()
                thread.join(timeout=10)
                server.server_close()
        finally:
            with app.app_context():
                db.engine.dispose()


def wait_for(page, script: str, expected, what: str):
    """Poll `script` in the page until it returns `expected` (the worker works in the
    background: its install and activation follow the page's load)."""
    value = None
    for _ in range(TIMEOUT_MS // 100):
        value = page.evaluate(script)
        if value == expected:
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"{what}: {value!r}, expected {expected!r}")


def stylesheet(page) -> str:
    return page.locator('link[rel="stylesheet"]').first.get_attribute("href")


def test_an_installed_app_gets_the_new_stylesheet_after_a_deploy(chromium, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    port = free_port()
    context = chromium.new_context(base_url=f"http://127.0.0.1:{port}", **live.PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        with deploy(tmp_path, "a", port, "a"):
            page.goto("/connexion")
            assert page.evaluate(WORKER_READY, TIMEOUT_MS) == "active"
            page.reload()  # now under the worker's control, as an installed app
            assert page.evaluate("() => !!navigator.serviceWorker.controller")
            assert page.evaluate(DEPLOY_MARK) == '"a"'
            old_css = stylesheet(page)
            old_caches = page.evaluate(WORKER_CACHES)
            assert len(old_caches) == 1
            cached = page.evaluate(
                "async (name) => (await (await caches.open(name)).keys()).map((r) => r.url)",
                old_caches[0],
            )
            assert any(url.endswith(old_css) for url in cached), cached

        with deploy(tmp_path, "b", port, "b") as base:
            page.goto("/connexion")  # the next visit, A's worker still in charge
            assert page.evaluate(DEPLOY_MARK) == '"b"', "the old stylesheet after a deploy"
            new_css = stylesheet(page)
            assert new_css != old_css
            worker_script = page.request.get(f"{base}/sw.js").text()
            new_cache = worker_script.split('const CACHE = "', 1)[1].split('"', 1)[0]
            assert [new_cache] != old_caches
            # B's worker installs, activates and deletes A's cache.
            wait_for(page, WORKER_CACHES, [new_cache], "the worker's caches after the deploy")
            page.reload()
            assert page.evaluate(DEPLOY_MARK) == '"b"'

        # The network is gone: the offline page, from B's cache, with B's stylesheet.
        page.goto("/tableau-de-bord")
        expect(page.get_by_role("heading", level=1)).to_have_text("Pas de connexion")
        assert stylesheet(page) == new_css
        assert page.evaluate(DEPLOY_MARK) == '"b"'
        assert errors == []
    finally:
        context.close()


@pytest.fixture
def chromium_with_back_forward_cache(chromium):  # noqa: F811
    """Playwright turns the back/forward cache off (--disable-back-forward-cache); a browser
    of this test's own has it, as a phone's has."""
    browser = chromium.browser_type.launch(
        executable_path=live.find_chromium(),
        args=live.CHROMIUM_ARGS,
        ignore_default_args=["--disable-back-forward-cache"],
    )
    yield browser
    browser.close()


def go_back(page, cdp) -> list[str]:
    """Back; the reasons Chromium gives for not restoring the page from its cache, if any."""
    reasons: list[str] = []

    def not_used(event):
        reasons.extend(r["reason"] for r in event["notRestoredExplanations"])

    cdp.on("Page.backForwardCacheNotUsed", not_used)
    # A page restored from the cache fires no `load`: wait for the navigation only.
    page.go_back(wait_until="commit")
    page.wait_for_timeout(300)  # the CDP event follows the navigation
    cdp.remove_listener("Page.backForwardCacheNotUsed", not_used)
    if reasons:  # loaded anew
        page.wait_for_load_state("load")
    return reasons


STILL_HERE = "() => window.__still_here === true"
MARK = "() => { window.__still_here = true; }"


def test_the_back_forward_cache_keeps_public_pages_only(chromium_with_back_forward_cache, tmp_path):
    with live.serve(tmp_path, DATABASE) as server:
        context = chromium_with_back_forward_cache.new_context(base_url=server.url, **live.PHONE)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Page.enable")
        try:
            page.goto("/accessibilite")
            # The worker's first activation claims the open pages, which evicts a cached
            # one (once per deploy): let it settle first.
            assert page.evaluate(WORKER_READY, TIMEOUT_MS) == "active"
            page.reload()
            page.evaluate(MARK)
            page.goto("/donnees-personnelles")
            assert go_back(page, cdp) == []
            # Restored as it was left, its scripts' state included: no new page.
            assert page.url.endswith("/accessibilite")
            assert page.evaluate(STILL_HERE), "a public page left out of the back/forward cache"

            from tests.factories import make_user

            account = make_user(server.app)
            page.goto("/connexion")
            page.get_by_label("Identifiant", exact=True).fill(account.email)
            page.get_by_label("Mot de passe", exact=True).fill(account.password)
            page.get_by_role("button", name="Se connecter").click()
            page.wait_for_url("**/tableau-de-bord")
            page.evaluate(MARK)
            # Logged out on a shared phone: « back » must not show the family's page again.
            page.get_by_role("button", name="Se déconnecter").click()
            page.wait_for_url("**/connexion")
            reasons = go_back(page, cdp)
            assert any("NoStore" in reason for reason in reasons), reasons
            assert not page.evaluate(STILL_HERE), "a personal page kept by the browser"
            assert "/connexion?next=" in page.url  # asked anew: logged out
        finally:
            context.close()
