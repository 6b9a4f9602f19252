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
            "/reservations/",
            "/reservations/enfant/{lea}?mois={month}",
            "/reservations/enfant/{lea}?semaine={monday}",
            "/reservations/planifier",
            "/factures",
            "/factures/{invoice}",
            "/prelevement",
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
            "/admin/reservations",
            "/admin/reservations/jour/{canteen_day}",
            "/admin/factures?mois={billed}",
            "/admin/facturation?mois={billed}",
            "/admin/tarifs",
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


def populate(households: int) -> dict[str, str]:
    """The demo family books its whole year; `households` more families of two children
    book the canteen every school day (DOMAIN.md: ~1,000 households, ~1,600 children).
    Returns the values the page paths need."""
    from datetime import date, timedelta

    from sqlalchemy import select

    from citoyens.enrolments.models import Enrolment, EnrolmentActivity
    from citoyens.forms import today_in_paris
    from citoyens.households.models import Household, HouseholdMember, Person
    from citoyens.reservations.models import ActivityDay
    from citoyens.reservations.operations import book_days
    from citoyens.services.models import Activity, SchoolYear, Service

    today = today_in_paris()
    year = db.session.scalar(
        select(SchoolYear).where(SchoolYear.starts_on <= today, SchoolYear.ends_on >= today)
    )
    canteen = db.session.scalar(select(Service).where(Service.code == "restauration"))
    meal = db.session.scalar(select(Activity).where(Activity.service_id == canteen.id))
    meal_days = list(
        db.session.scalars(
            select(ActivityDay.id).where(
                ActivityDay.activity_id == meal.id, ActivityDay.school_year_id == year.id
            )
        )
    )
    # Enough room for everyone: the demo's 600 meals a day, times two for the bench.
    db.session.execute(
        ActivityDay.__table__.update()
        .where(ActivityDay.activity_id == meal.id)
        .values(capacity=2 * households + 50)
    )
    lea = db.session.scalar(select(Person.id).where(Person.first_name == "Léa"))
    demo = db.session.scalar(select(Household.id).where(Household.external_ref == "DEMO-0001"))
    for activity_id in db.session.scalars(
        select(EnrolmentActivity.activity_id)
        .join(Enrolment)
        .where(Enrolment.child_id == lea, Enrolment.status == "accepted")
    ):
        days = db.session.scalars(
            select(ActivityDay.id).where(
                ActivityDay.activity_id == activity_id, ActivityDay.school_year_id == year.id
            )
        ).all()
        book_days(demo, lea, days, actor=None, entitled_ids={activity_id}, staff=True)
    for n in range(households):
        household = Household(external_ref=f"BENCH-{n:04d}")
        db.session.add(household)
        for first_name in ("Aïcha", "Tom"):
            child = Person(
                first_name=first_name, last_name=f"Bench{n}", birth_date=date(2017, 1, 1)
            )
            household.memberships.append(HouseholdMember(person=child, role="child"))
            db.session.flush()
            enrolment = Enrolment(
                household_id=household.id,
                child_id=child.id,
                service_id=canteen.id,
                school_year_id=year.id,
                status="accepted",
            )
            enrolment.activities = [EnrolmentActivity(activity_id=meal.id)]
            db.session.add(enrolment)
            db.session.flush()
            book_days(
                household.id, child.id, meal_days, actor=None, entitled_ids={meal.id}, staff=True
            )
    db.session.commit()
    upcoming = db.session.scalar(
        select(ActivityDay.id)
        .where(ActivityDay.activity_id == meal.id, ActivityDay.day >= today)
        .order_by(ActivityDay.day)
    )
    return {
        "lea": str(lea),
        "month": today.strftime("%Y-%m"),
        "monday": (today - timedelta(days=today.weekday())).isoformat(),
        "canteen_day": str(upcoming),
    }


def bill(app, values: dict[str, str]) -> dict[str, str]:
    """Issue the invoices of the last month over (the canteen families and the demo's)."""
    from sqlalchemy import select

    from citoyens.billing.invoice_run import issue_month
    from citoyens.billing.models import Invoice
    from citoyens.billing.months import previous_month
    from citoyens.forms import today_in_paris
    from citoyens.households.models import Household

    month = previous_month(today_in_paris().replace(day=1))
    start = time.perf_counter()
    with app.test_request_context():
        result = issue_month(month)
    print(
        f"invoice run {month:%Y-%m}: {result.count} invoices in {time.perf_counter() - start:.1f} s"
    )
    demo = db.session.scalar(select(Household.id).where(Household.external_ref == "DEMO-0001"))
    invoice = db.session.scalar(
        select(Invoice.id).where(Invoice.household_id == demo).order_by(Invoice.id.desc())
    )
    return {"billed": f"{month:%Y-%m}", "invoice": str(invoice)}


def measure_toggle(app, client, values: dict[str, str]) -> tuple[int, int, int, float]:
    """The htmx tap on a day: book then cancel, answered by one cell."""
    from sqlalchemy import select

    from citoyens.reservations.models import ActivityDay

    page = client.get(f"/reservations/enfant/{values['lea']}?mois={values['month']}")
    html = page.get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
    day_id = re.findall(r'name="j(\d+)" value="1"', html)[-1]
    with app.app_context():
        assert db.session.scalar(select(ActivityDay.id).where(ActivityDay.id == int(day_id)))
    url = f"/reservations/enfant/{values['lea']}/jour/{day_id}"
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    counter = {"n": 0}

    def count(*_args, **_kwargs):
        counter["n"] += 1

    with app.app_context():
        engine = db.engine
    client.post(url, data={}, headers=headers)  # start from "not booked"
    event.listen(engine, "before_cursor_execute", count)
    response = client.post(url, data={f"j{day_id}": "1"}, headers=headers)
    event.remove(engine, "before_cursor_execute", count)
    body = response.data
    timings = []
    for n in range(10):
        data = {f"j{day_id}": "1"} if n % 2 else {}
        start = time.perf_counter()
        client.post(url, data=data, headers=headers)
        timings.append((time.perf_counter() - start) * 1000)
    return counter["n"], len(body), len(gzip.compress(body)), statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--households", type=int, default=300, help="extra families booking the canteen"
    )
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
        start = time.perf_counter()
        values = populate(args.households)
        values.update(bill(app, values))
        bookings = db.session.execute(db.text("SELECT count(*) FROM bookings")).scalar()
    print(
        f"{args.households} extra households, {bookings} bookings "
        f"(made in {time.perf_counter() - start:.1f} s)"
    )
    print(f"{'page':<40}{'queries':>8}{'HTML B':>9}{'gzip B':>8}{'median ms':>11}")
    client = app.test_client()
    for path in PUBLIC:
        print_row(path, *measure(app, client, path, args.runs))
    for email, (password, paths) in PAGES.items():
        client = app.test_client()
        login(client, email, password)
        for path in paths:
            label = path.replace("{lea}", "<enfant>").replace("{canteen_day}", "<jour>")
            label = label.replace("{invoice}", "<id>")
            label = label.split("=")[0]
            print_row(label, *measure(app, client, path.format(**values), args.runs))
        if email.startswith("parent"):
            print_row("POST toggle (htmx)", *measure_toggle(app, client, values))


def print_row(path, queries, size, zipped, median):
    print(f"{path:<40}{queries:>8}{size:>9}{zipped:>8}{median:>11.1f}")


if __name__ == "__main__":
    main()
