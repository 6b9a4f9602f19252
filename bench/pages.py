"""Page benchmark: queries, HTML size and server time of the main pages.

    make bench            (or: .venv/bin/python bench/pages.py [--runs 50])

Builds a throwaway SQLite database with the demo data plus a household of three
children, then requests each page as its user would. Speed is proven here, not
in timed tests.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event  # noqa: E402

from citoyens import create_app  # noqa: E402
from citoyens.demo import seed  # noqa: E402
from citoyens.extensions import db  # noqa: E402

PAGES = {
    "parent@example.org": (
        "citoyens-demo-parent",
        [
            "/tableau-de-bord",
            "/mon-foyer",
            "/mes-documents",
            "/mes-demandes",
            "/inscriptions",
            "/inscriptions/nouvelle",
            "/mon-compte",
        ],
    ),
    "agent@example.org": (
        "citoyens-demo-agent",
        [
            "/admin/",
            "/admin/demandes",
            "/admin/inscriptions",
            "/admin/familles",
            "/admin/documents",
        ],
    ),
}
PUBLIC = ["/", "/connexion", "/creer-mon-espace"]


def login(client, email: str, password: str) -> None:
    page = client.get("/connexion").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post(
        "/connexion", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, f"login failed for {email}"


def measure(app, client, path: str, runs: int) -> tuple[int, int, int, float]:
    counter = {"n": 0}

    def count(*_args, **_kwargs):
        counter["n"] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    response = client.get(path)
    event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, f"{path}: {response.status_code}"
    body = response.data
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        client.get(path)
        timings.append((time.perf_counter() - start) * 1000)
    return counter["n"], len(body), len(gzip.compress(body)), statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="citoyens-bench-")
    os.environ.setdefault("CITOYENS_ENV", "development")
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.sqlite3",
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
    print(f"{'page':<22}{'queries':>8}{'HTML B':>9}{'gzip B':>8}{'median ms':>11}")
    client = app.test_client()
    for path in PUBLIC:
        print_row(path, *measure(app, client, path, args.runs))
    for email, (password, paths) in PAGES.items():
        client = app.test_client()
        login(client, email, password)
        for path in paths:
            print_row(path, *measure(app, client, path, args.runs))


def print_row(path, queries, size, zipped, median):
    print(f"{path:<22}{queries:>8}{size:>9}{zipped:>8}{median:>11.1f}")


if __name__ == "__main__":
    main()
