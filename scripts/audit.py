"""`make audit`: the standards report — vnu, axe and Lighthouse — in one file.

    make audit            (or: .venv/bin/python scripts/audit.py)

Builds a throwaway SQLite database with the demo data (`flask db upgrade`, `seed-demo`),
serves it with gunicorn as in production (compression, caching headers), then:

- crawls every page the demo accounts reach and runs the Nu Html Checker on them;
- runs axe-core on one page of each shape, phone and desktop, every impact kept;
- runs Lighthouse (mobile settings, Debian's Chromium) on the login page, the parent's
  dashboard and a child's month calendar, logged in with the demo parent's cookie.

- asks Chromium whether the app is installable (manifest, icons, service worker):
  Lighthouse 12 dropped its PWA category, so `Page.getInstallabilityErrors` answers.

`--lighthouse-only` skips the crawl, vnu and axe (quicker, when tuning Lighthouse scores).

Writes build/audit/report.md (and the raw JSON beside it) and prints the summary. The
targets (issue 16): no vnu error, no serious or critical axe violation, Lighthouse
performance, accessibility and best practices ≥ 95. `make test` runs vnu and axe too;
Lighthouse only runs here.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess  # nosec B404: runs our own server and the pinned checkers
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import standards  # noqa: E402

OUT = ROOT / "build" / "audit"
LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices")
TARGET = 95


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def flask(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "flask", *args], env=env, cwd=ROOT, check=True)  # noqa: S603 (fixed arguments)


def start_server(env: dict, port: int) -> subprocess.Popen:
    server = subprocess.Popen(  # noqa: S603 (fixed arguments)
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # nosec B310
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if gunicorn's graceful stop (up to 30 s) takes too long."""
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def login_cookie(base: str, email: str, password: str) -> str:
    """The session cookie of a demo account, logged in through the real form."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/connexion").read().decode()  # nosec B310: our own server
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    data = urllib.parse.urlencode(
        {"csrf_token": token.group(1), "email": email, "password": password}
    ).encode()
    opener.open(f"{base}/connexion", data=data)  # nosec B310
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def lighthouse(url: str, cookie: str | None, name: str) -> dict:
    chromium = "/usr/bin/chromium"
    output = OUT / f"lighthouse-{name}.json"
    command = [
        str(LIGHTHOUSE),
        url,
        "--quiet",
        "--output=json",
        f"--output-path={output}",
        f"--only-categories={','.join(CATEGORIES)}",
        f"--chrome-path={chromium}",
        "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
    ]
    if cookie:
        command.append("--extra-headers=" + json.dumps({"Cookie": cookie}))
    subprocess.run(command, check=True, cwd=ROOT, timeout=300)  # noqa: S603 (fixed arguments)
    report = json.loads(output.read_text())
    scores = {key: round((report["categories"][key]["score"] or 0) * 100) for key in CATEGORIES}
    failing = [
        f"{audit['title']}"
        for audit in report["audits"].values()
        if audit.get("score") is not None
        and audit["score"] < 0.9
        and audit.get("scoreDisplayMode") in ("binary", "numeric", "metricSavings")
    ]
    return {"url": url, "scores": scores, "failing_audits": failing[:15]}


def axe_all(base: str, pages: dict[str, dict[str, str]]) -> list[dict]:
    from playwright.sync_api import sync_playwright

    from tests.test_standards import AXE_VIEWPORTS, axe_targets

    axe = standards.AXE_JS.read_text(encoding="utf-8")
    found = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        for viewport, settings in AXE_VIEWPORTS.items():
            for who, paths in axe_targets(pages).items():
                context = browser.new_context(base_url=base, bypass_csp=True, **settings)
                if who != "public":
                    email, password, _home = standards.ACCOUNTS[who]
                    name, value = login_cookie(base, email, password).split(";")[0].split("=", 1)
                    context.add_cookies([{"name": name, "value": value, "url": base}])
                page = context.new_page()
                for path in paths:
                    page.goto(path)
                    page.add_script_tag(content=axe)
                    for v in page.evaluate(standards.AXE_RUN):
                        found.append({"viewport": viewport, "who": who, "path": path, **v})
                context.close()
        browser.close()
    return found


def installability(base: str, cookie: str) -> dict:
    """Chromium's own verdict on the PWA: the installability errors (none = installable)
    and whether the service worker took control of the page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # A profile on disk: Chromium never offers to install an app in an incognito window.
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="citoyens-profile-"),
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu"],
            base_url=base,
        )
        name, value = cookie.split(";")[0].split("=", 1)
        context.add_cookies([{"name": name, "value": value, "url": base}])
        page = context.new_page()
        page.goto("/tableau-de-bord")
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        page.reload()
        controlled = page.evaluate("!!navigator.serviceWorker.controller")
        session = context.new_cdp_session(page)
        errors = session.send("Page.getInstallabilityErrors")["installabilityErrors"]
        manifest = session.send("Page.getAppManifest")
        context.close()
    return {
        "errors": [e["errorId"] for e in errors],
        "service_worker_controls_page": controlled,
        "manifest_errors": [e["message"] for e in manifest.get("errors", [])],
    }


@contextmanager
def demo_server(prefix: str) -> Iterator[tuple[str, dict]]:
    """(base URL, environment) of gunicorn serving a fresh SQLite demo database, as in
    production; stopped on exit. Shared with scripts/screenshots.py."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    env = dict(os.environ)
    env.update(
        FLASK_APP="wsgi.py",
        CITOYENS_ENV="development",
        DATABASE_URL=f"sqlite:///{folder / 'demo.sqlite3'}",
        UPLOAD_FOLDER=str(folder / "uploads"),
        RATELIMIT_ENABLED="false",
    )
    flask(env, "db", "upgrade")
    flask(env, "seed-demo")
    port = free_port()
    server = start_server(env, port)
    try:
        yield f"http://127.0.0.1:{port}", env
    finally:
        stop_server(server)


def main() -> int:
    lighthouse_only = "--lighthouse-only" in sys.argv[1:]
    OUT.mkdir(parents=True, exist_ok=True)
    with demo_server("citoyens-audit-") as (base, env):
        from citoyens import create_app

        app = create_app(
            {
                "SQLALCHEMY_DATABASE_URI": env["DATABASE_URL"],
                "RATELIMIT_ENABLED": False,
                "UPLOAD_FOLDER": env["UPLOAD_FOLDER"],
                "TESTING": True,
            }
        )
        parent = login_cookie(base, *standards.ACCOUNTS["parent"][:2])
        if lighthouse_only:
            pages, every, vnu, axe = {}, {}, [], []
            request = urllib.request.Request(  # noqa: S310 (our own server)
                f"{base}/reservations", headers={"Cookie": parent}
            )
            listing = urllib.request.urlopen(request).read().decode()  # noqa: S310 # nosec B310
        else:
            pages = standards.all_pages(app)
            every = {f"{w} {p}": h for w, found in pages.items() for p, h in found.items()}
            vnu = standards.vnu_errors(every, Path(tempfile.mkdtemp(prefix="citoyens-vnu-")))
            axe = axe_all(base, pages)
            listing = "".join(pages["parent"].values())
        child = re.search(r"/reservations/enfant/(\d+)", listing)
        install = installability(base, parent)
        month = date.today().strftime("%Y-%m")
        light = [
            lighthouse(f"{base}/connexion", None, "login"),
            lighthouse(f"{base}/tableau-de-bord", parent, "dashboard"),
            lighthouse(
                f"{base}/reservations/enfant/{child.group(1)}?mois={month}", parent, "calendar"
            ),
        ]
    blocking = [v for v in axe if v["impact"] in ("serious", "critical")]
    installable = not install["errors"] and install["service_worker_controls_page"]
    lines = [
        f"# Standards audit — {date.today().isoformat()}",
        "",
        *(
            ["- **vnu, axe**: not run (`--lighthouse-only`)"]
            if lighthouse_only
            else [
                f"- **vnu**: {len(vnu)} errors over {len(every)} pages",
                f"- **axe**: {len(blocking)} serious or critical, "
                f"{len(axe) - len(blocking)} moderate or minor "
                "(phone and desktop, one page of each shape)",
            ]
        ),
        f"- **installable** (Chromium): {'yes' if installable else 'no'}"
        + (f" — {', '.join(install['errors'])}" if install["errors"] else "")
        + ("" if install["service_worker_controls_page"] else " — no service worker in control")
        + f"; load average {os.getloadavg()[0]:.2f}",
        "",
        "| Lighthouse (mobile) | " + " | ".join(CATEGORIES) + " |",
        "|---|" + "---|" * len(CATEGORIES),
    ]
    for result in light:
        path = urllib.parse.urlsplit(result["url"]).path
        cells = " | ".join(
            f"{result['scores'][key]}{'' if result['scores'][key] >= TARGET else ' ✗'}"
            for key in CATEGORIES
        )
        lines.append(f"| `{path}` | {cells} |")
    for result in light:
        if result["failing_audits"]:
            lines += [
                "",
                f"Lighthouse on `{result['url']}` flags: " + "; ".join(result["failing_audits"]),
            ]
    if vnu:
        lines += ["", "## vnu errors", "", *[f"- {e}" for e in vnu[:100]]]
    if axe:
        lines += ["", "## axe violations", ""]
        lines += [
            f"- [{v['impact']}] {v['viewport']} {v['who']} `{v['path']}`: {v['id']} — "
            f"{v['help']} ({', '.join(v['targets'][:2])})"
            for v in axe
        ]
    report = "\n".join(lines) + "\n"
    (OUT / "report.md").write_text(report, encoding="utf-8")
    (OUT / "report.json").write_text(
        json.dumps(
            {"vnu": vnu, "axe": axe, "lighthouse": light, "installability": install}, indent=1
        ),
        encoding="utf-8",
    )
    print(report)
    print(f"Written to {OUT / 'report.md'}")
    met = (
        installable
        and not vnu
        and not blocking
        and all(score >= TARGET for result in light for score in result["scores"].values())
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
