"""A crowd at the door: N parents log in at the same moment on the embedded default.

    .venv/bin/python bench/crowd.py                        # flask run --with-threads
    .venv/bin/python bench/crowd.py --server gunicorn --workers 2 --threads 8

Starts the app as `make run` does (development mode, a SQLite file, the demo seeded)
plus N parent accounts, on a free loopback port, with real argon2 hashing. Then N client
threads wait on a barrier and each walks the journey of 4 requests: GET /connexion,
POST the login with the page's CSRF token, GET the dashboard the login leads to, GET
/reservations/ or /factures. Prints the statuses counted and the latencies (p50/p95).
Exits 1 when a request failed (anything but 2xx/3xx).
"""

from __future__ import annotations

import argparse
import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.crowd import Browser, crowd_logs_in, percentile  # noqa: E402

PASSWORD = "foule-de-parents-2025"  # noqa: S105 (a throwaway database's accounts)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_parents(count: int) -> float:
    """`count` confirmed parent accounts, each with a household; returns the seconds taken.

    One real argon2 hash, shared by every account (each hash costs ~0.1 s)."""
    from citoyens import create_app, demo
    from citoyens.extensions import db
    from citoyens.households.models import Household, HouseholdMember, Person

    started = time.perf_counter()
    demo.hash_password = functools.cache(demo.hash_password)  # one real hash for all
    app = create_app()
    with app.app_context():
        for number in range(count):
            household = Household()
            adult = Person(first_name="Parent", last_name=f"Foule {number}")
            household.memberships.append(HouseholdMember(person=adult, role="adult"))
            credentials = (f"foule{number}@example.org", PASSWORD)
            db.session.add(demo.parent_account(credentials, household, adult))
        db.session.commit()
        db.engine.dispose()
    return time.perf_counter() - started


def wait_until_up(port: int, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server stopped (exit {server.returncode})")
        try:
            status, _, _ = Browser(port).request("GET", "/healthz")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not answer within a minute")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", choices=("flask", "gunicorn"), default="flask")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn's worker processes")
    parser.add_argument("--threads", type=int, default=8, help="gunicorn's threads per worker")
    parser.add_argument("--clients", type=int, default=40)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="citoyens-crowd-"))
    os.environ.update(
        CITOYENS_ENV="development",
        DATABASE_URL=f"sqlite:///{folder / 'crowd.sqlite3'}",
        UPLOAD_FOLDER=str(folder / "uploads"),
        FLASK_APP="wsgi.py",
    )
    flask = [sys.executable, "-m", "flask"]
    quiet = {"cwd": ROOT, "stdout": subprocess.DEVNULL, "check": True}
    started = time.perf_counter()
    subprocess.run([*flask, "db", "upgrade"], **quiet)  # noqa: S603 (fixed arguments)
    subprocess.run([*flask, "seed-demo", "--if-empty"], **quiet)  # noqa: S603 (fixed arguments)
    print(f"demo seeded in {time.perf_counter() - started:.1f} s")
    print(f"{args.clients} parent accounts added in {add_parents(args.clients):.1f} s")

    port = free_port()
    if args.server == "flask":
        command = [*flask, "run", "--with-threads", "--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
        command += ["--workers", str(args.workers), "--threads", str(args.threads), "wsgi:app"]
    log_path = folder / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log)  # noqa: S603 (fixed arguments)
    try:
        wait_until_up(port, server)
        accounts = [(f"foule{n}@example.org", PASSWORD) for n in range(args.clients)]
        result = crowd_logs_in(port, accounts)
    finally:
        server.terminate()
        server.wait(timeout=30)

    latencies, logins = result.latencies(), result.latencies("POST /connexion")
    print(f"server: {' '.join(command[1:])}")
    print(
        f"{len(result.requests)} requests in {result.seconds:.1f} s; statuses: "
        f"{dict(sorted(result.statuses.items(), key=str))}"
    )
    print(f"failed: {len(result.failed)}  {dict(Counter(result.failed))}")
    print(
        f"latency p50 {percentile(latencies, 0.5):.2f} s, p95 {percentile(latencies, 0.95):.2f} s"
    )
    print(f"login POST p50 {percentile(logins, 0.5):.2f} s, p95 {percentile(logins, 0.95):.2f} s")
    locked = log_path.read_text(errors="replace").count("database error")
    print(f"server log: {log_path} ({locked} 'database error' lines)")
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
