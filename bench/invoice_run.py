"""The monthly invoice run at scale (issue 15): time, peak memory, progress.

    .venv/bin/python bench/invoice_run.py [--households 1000]
    DATABASE_URL=postgresql://.../bench_run \
        .venv/bin/python bench/invoice_run.py --households 100000

Generates N households with `flask bench-data` (citoyens/bench_data.py) into a scratch
database: a SQLite file in a temporary folder by default, or the PostgreSQL database of
DATABASE_URL, which must be empty (its tables are created here) unless `--reuse` says to
bill again a database generated before (its last month's invoices are deleted first).
Then runs last month's invoice run as the job queue's worker does (a `JobRun`, through
`billing.tasks.execute_invoice_run`) in a fresh process, and prints the run's time, its
invoices, the peak resident memory of that process and its memory along the run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("CITOYENS_ENV", "development")


def make_app(url: str):
    from citoyens import create_app

    return create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "MAIL_BACKEND": "smtp",
            "MAIL_SUPPRESS_SEND": True,
            "RATELIMIT_ENABLED": False,
            "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-secret-key"),
        }
    )


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def generate(url: str, households: int, reuse: bool) -> None:
    from sqlalchemy import delete, func, select

    from citoyens.bench_data import REF_PREFIX
    from citoyens.bench_data import generate as generate_commune
    from citoyens.billing.models import BilledDay, Invoice, InvoiceLine
    from citoyens.billing.months import previous_month
    from citoyens.extensions import db
    from citoyens.forms import today_in_paris
    from citoyens.households.models import Household

    app = make_app(url)
    with app.app_context():
        db.create_all()
        found = db.session.scalar(
            select(func.count()).where(Household.external_ref.like(f"{REF_PREFIX}%"))
        )
        if reuse and found:
            month = previous_month(today_in_paris())
            bench = select(Household.id).where(Household.external_ref.like(f"{REF_PREFIX}%"))
            mine = (Invoice.month == month, Invoice.household_id.in_(bench))
            invoices = select(Invoice.id).where(*mine)
            lines = select(InvoiceLine.id).where(InvoiceLine.invoice_id.in_(invoices))
            db.session.execute(delete(BilledDay).where(BilledDay.invoice_line_id.in_(lines)))
            db.session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(invoices)))
            db.session.execute(delete(Invoice).where(*mine))
            db.session.commit()
            print(f"{found} households generated before; their {month:%Y-%m} to bill again")
            return
        result = generate_commune(households)
        print(result.summary())


RUN = """
import resource, sys, time
sys.path.insert(0, sys.argv[2])
from bench.invoice_run import make_app, rss_mib
from sqlalchemy import func, select
from citoyens.billing import tasks
from citoyens.billing.models import Invoice
from citoyens.billing.months import previous_month
from citoyens.core.models import JobRun
from citoyens.extensions import db
from citoyens.forms import today_in_paris

app = make_app(sys.argv[1])
with app.app_context():
    month = previous_month(today_in_paris())
    run = JobRun(kind=tasks.INVOICE_RUN, key=tasks.run_key(month), status="queued")
    db.session.add(run)
    db.session.commit()
    run_id = run.id
    samples = []
    note = tasks.jobs.huey.put

    def noting(key, value):
        samples.append((time.perf_counter() - start, value[0], value[1], rss_mib()))
        note(key, value)

    tasks.jobs.huey.put = noting
    tasks.PROGRESS_EVERY = 10.0
    start = time.perf_counter()
    status = tasks.execute_invoice_run(run_id)
    elapsed = time.perf_counter() - start
    run = db.session.get(JobRun, run_id)
    issued = db.session.scalar(select(func.count(Invoice.id)).where(Invoice.month == month))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"run {status}: {run.summary or run.error}")
    print(f"{issued} invoices of {month:%Y-%m} in {elapsed:.1f} s; peak RSS {peak:.0f} MiB")
    for at, done, total, rss in samples:
        print(f"  {at:7.1f} s  {done:>7} / {total} familles  RSS {rss:.0f} MiB")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=1000)
    parser.add_argument(
        "--reuse", action="store_true", help="bill again a database generated before"
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if url:
        if url.startswith("postgresql://"):
            url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    else:
        url = f"sqlite:///{tempfile.mkdtemp(prefix='citoyens-bench-')}/bench.sqlite3"
    start = time.perf_counter()
    generate(url, args.households, args.reuse)
    print(f"data ready in {time.perf_counter() - start:.1f} s")
    subprocess.run([sys.executable, "-c", RUN, url, str(ROOT)], check=True, cwd=ROOT)  # noqa: S603


if __name__ == "__main__":
    main()
