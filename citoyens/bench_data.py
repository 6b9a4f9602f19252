"""`flask bench-data --households N`: a realistic commune for the benchmarks (issue 15).

It runs on top of the demo: on a database without services the demo is seeded first
(`citoyens.demo.seed`; not again on a database that has it, which would send reminders),
so the four demo services, their activities, opening days, QF bands and prices are those
of the demo, and the demo accounts still log in. Then, for N households (random with a
fixed seed, so two runs give the same commune):

- one or two responsible adults, the first with a parent account (password
  `BENCH_PASSWORD`, one hash shared by all: hashing 100,000 passwords would take hours);
- 1 to 4 children, enrolled (accepted) in the services of their age in the current school
  year: the canteen, the APS, the Goulidons, the crèche for the youngest;
- as a big commune has many schools and canteens, every `SITE_HOUSEHOLDS` households
  make a site: the first is the demo's activities, each next one a copy of them (name
  « … · site N », same prices and opening days), so a canteen day lists about the same
  children at 100,000 households as at 1,000 (the 600-place canteen of Chalonnes is not
  booked by 70,000 children of a city);
- their bookings from the school year's start to today, on a weekly pattern of days per
  child and activity (a few cancelled, a few cancelled late), attendance for past days;
- the invoices of the months before last (what an earlier run would have issued: priced by
  `billing.pricing`, numbered gaplessly after the year's counter, each day recorded as a
  billed day), nine in ten paid by card. Last month is left to bill: that is what
  `bench/invoice_run.py` times.

Rows are written `CHUNK` households at a time, one commit per chunk (PostgreSQL: `COPY …
FROM STDIN`; SQLite: Core `insert()` of lists of dicts), ids given explicitly (PostgreSQL
sequences are moved past them at the end). The opening days' booked counts are
recomputed at the end, their capacity raised where a big commune overbooks them. Refuses
to run in production, and on a database that has households other than the demo's
unless `--append`.
"""

from __future__ import annotations

import random
import time as clock
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, insert, literal, or_, select, text, update

from citoyens.accounts.models import User
from citoyens.billing.invoice_run import line_row
from citoyens.billing.models import (
    BilledDay,
    Invoice,
    InvoiceCounter,
    InvoiceLine,
    Payment,
    QfBand,
)
from citoyens.billing.months import next_month, previous_month
from citoyens.billing.numbers import format_number
from citoyens.billing.pricing import BookingRow, price_bookings
from citoyens.billing.tariffs import prices_of
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households.models import Household, HouseholdMember, Person
from citoyens.reservations.models import ActivityDay, Booking
from citoyens.services.models import Activity, SchoolYear, Service

BENCH_PASSWORD = "citoyens-bench"  # noqa: S105 - generated test accounts only
REF_PREFIX = "BENCH-"
CHUNK = 1000  # households per insert round and commit
SITE_HOUSEHOLDS = 1000  # households per site (a school group and its canteen, APS, centre)
DEFAULT_SEED = 15

FIRST_NAMES_F = "Emma Jade Louise Alice Chloé Lina Léa Rose Anna Mila Inès Ambre Julia Zoé Léna"
FIRST_NAMES_M = "Gabriel Léo Raphaël Louis Arthur Jules Adam Maël Lucas Hugo Noah Liam Sacha Tom"
LAST_NAMES = [
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefebvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lefèvre",
    "Faure",
    "André",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Chevalier",
]
STREETS = ("rue Nationale", "rue du Vieux Pont", "avenue Laffon de Ladebat", "quai Gambetta")

# Class level by age in years at the school year's start.
LEVEL_BY_AGE = {2: "TPS", 3: "PS", 4: "MS", 5: "GS", 6: "CP", 7: "CE1", 8: "CE2", 9: "CM1"}
LEVEL_BY_AGE[10] = "CM2"

# The tables written, in insert order (ids given explicitly).
TABLES = (
    Household,
    Person,
    HouseholdMember,
    User,
    Enrolment,
    EnrolmentActivity,
    Booking,
    Invoice,
    InvoiceLine,
    BilledDay,
    Payment,
)


class BenchDataError(Exception):
    """Why the generator refused to run (said in English: a developer's tool)."""


@dataclass
class Generated:
    households: int = 0
    people: int = 0
    users: int = 0
    enrolments: int = 0
    bookings: int = 0
    invoices: int = 0
    invoice_lines: int = 0
    billed_days: int = 0
    payments: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.households} households, {self.people} people, {self.users} accounts, "
            f"{self.enrolments} enrolments, {self.bookings} bookings, {self.invoices} invoices "
            f"({self.invoice_lines} lines, {self.billed_days} billed days), "
            f"{self.payments} payments in {self.seconds:.1f} s"
        )


@dataclass(slots=True, frozen=True)
class _Activity:
    """What the generator reads of an activity, read once (not an ORM attribute per booking)."""

    id: int
    name: str
    weekdays: str
    exclusion_set_id: int | None


@dataclass
class _Context:
    today: date
    year: SchoolYear
    services: dict[str, int]
    activities: dict[tuple[str, str], _Activity]
    # activity id → [(activity day id, day)] of open days from the year's start to today
    days: dict[int, list[tuple[int, date]]]
    bands: list[QfBand]
    prices: dict[tuple[int, int], int]
    surcharges: dict[int, int]  # activity id → its service's walk-in surcharge
    invoice_months: list[date]
    due_days: int
    password_hash: str
    next_ids: dict[str, int] = field(default_factory=dict)
    counters: dict[int, int] = field(default_factory=dict)  # year → last number given

    def take_id(self, table: str) -> int:
        value = self.next_ids[table]
        self.next_ids[table] = value + 1
        return value


def _other_households_exist() -> bool:
    """Households besides the demo's (external refs DEMO-…)."""
    return (
        db.session.scalar(
            select(Household.id)
            .where(or_(Household.external_ref.is_(None), ~Household.external_ref.like("DEMO-%")))
            .limit(1)
        )
        is not None
    )


def generate(
    households: int,
    *,
    append: bool = False,
    seed: int = DEFAULT_SEED,
    today: date | None = None,
    chunk: int = CHUNK,
    echo=None,
) -> Generated:
    """Generate `households` households (see the module's docstring). Commits per chunk."""
    from citoyens.accounts.passwords import hash_password
    from citoyens.demo import seed as seed_demo

    if current_app.config.get("PRODUCTION"):
        raise BenchDataError("bench-data refuses to run with the production configuration.")
    if households < 1:
        raise BenchDataError("--households must be at least 1.")
    if not append and _other_households_exist():
        raise BenchDataError(
            "The database already has households besides the demo's: "
            "use --append to add to them, or an empty database."
        )
    started = clock.monotonic()
    if db.session.scalar(select(Service.id).limit(1)) is None:
        seed_demo()  # only on a database without the demo: seeding again sends reminders
        db.session.commit()
    today = today or today_in_paris()
    first = (
        db.session.scalar(select(func.count()).where(Household.external_ref.like(f"{REF_PREFIX}%")))
        or 0
    )
    _ensure_sites(-(-(first + households) // SITE_HOUSEHOLDS))
    db.session.commit()
    context = _load_context(today, hash_password(BENCH_PASSWORD))
    rng = random.Random(seed * 1_000_003 + first)
    result = Generated()
    for start in range(first, first + households, chunk):
        stop = min(start + chunk, first + households)
        _write_chunk(context, rng, range(start + 1, stop + 1), result)
        db.session.commit()
        if echo is not None:
            echo(f"{stop - first} / {households} households")
    _finish(context)
    db.session.commit()
    result.seconds = clock.monotonic() - started
    return result


def site_name(name: str, site: int) -> str:
    """The name of a demo activity at site `site` (0 is the demo's own)."""
    return name if site == 0 else f"{name} · site {site + 1}"


def _ensure_sites(sites: int) -> None:
    """Sites 1 … sites-1: a copy of each demo activity with its prices and opening days
    (booked counts from zero), made once, by INSERT … SELECT."""
    from citoyens.billing.models import Price

    activities = list(db.session.scalars(select(Activity).order_by(Activity.id)))
    names = {(activity.service_id, activity.name) for activity in activities}
    bases = [activity for activity in activities if " · site " not in activity.name]
    activity_columns = [
        column.name for column in Activity.__table__.columns if column.name not in ("id", "name")
    ]
    days = ActivityDay.__table__
    day_columns = [column.name for column in days.columns if column.name not in ("id",)]
    prices = Price.__table__
    price_columns = [column.name for column in prices.columns if column.name != "id"]
    for site in range(1, sites):
        for base in bases:
            name = site_name(base.name, site)
            if (base.service_id, name) in names:
                continue
            copy_id = db.session.execute(
                insert(Activity.__table__)
                .values(name=name, **{c: getattr(base, c) for c in activity_columns})
                .returning(Activity.__table__.c.id)
            ).scalar_one()
            replaced = {"activity_id": literal(copy_id), "booked": literal(0)}
            db.session.execute(
                insert(days).from_select(
                    day_columns,
                    select(*(replaced.get(c, days.c[c]) for c in day_columns)).where(
                        days.c.activity_id == base.id
                    ),
                )
            )
            db.session.execute(
                insert(prices).from_select(
                    price_columns,
                    select(
                        *(
                            literal(copy_id) if c == "activity_id" else prices.c[c]
                            for c in price_columns
                        )
                    ).where(prices.c.activity_id == base.id),
                )
            )


def _load_context(today: date, password_hash: str) -> _Context:
    year = db.session.scalar(
        select(SchoolYear).where(SchoolYear.starts_on <= today, SchoolYear.ends_on >= today)
    )
    if year is None:
        raise BenchDataError(f"No school year contains {today:%Y-%m-%d}: add one first.")
    services = dict(db.session.execute(select(Service.code, Service.id)).all())
    activities = {
        (code, activity.name): _Activity(
            activity.id, activity.name, activity.weekdays, activity.exclusion_set_id
        )
        for activity, code in db.session.execute(
            select(Activity, Service.code).join(Service, Service.id == Activity.service_id)
        )
    }
    surcharges = {
        activity_id: cents or 0
        for activity_id, cents in db.session.execute(
            select(Activity.id, Service.walk_in_surcharge_cents).join(
                Service, Service.id == Activity.service_id
            )
        )
    }
    days: dict[int, list[tuple[int, date]]] = defaultdict(list)
    for day_id, activity_id, day in db.session.execute(
        select(ActivityDay.id, ActivityDay.activity_id, ActivityDay.day)
        .where(
            ActivityDay.school_year_id == year.id,
            ActivityDay.day <= today,
            ActivityDay.closed.is_(False),
        )
        .order_by(ActivityDay.day)
    ):
        days[activity_id].append((day_id, day))
    bands = list(
        db.session.scalars(
            select(QfBand).where(QfBand.school_year_id == year.id).order_by(QfBand.position)
        )
    )
    invoice_months = []
    month = year.starts_on.replace(day=1)
    while month < previous_month(today):
        invoice_months.append(month)
        month = next_month(month)
    context = _Context(
        today=today,
        year=year,
        services=services,
        activities=activities,
        days=dict(days),
        bands=bands,
        prices=prices_of(band.id for band in bands),
        surcharges=surcharges,
        invoice_months=invoice_months,
        due_days=current_app.config["INVOICE_DUE_DAYS"],
        password_hash=password_hash,
    )
    for model in TABLES:
        table = model.__table__
        context.next_ids[table.name] = (
            db.session.scalar(select(func.coalesce(func.max(table.c.id), 0))) + 1
        )
    context.counters = dict(
        db.session.execute(select(InvoiceCounter.year, InvoiceCounter.last_number)).all()
    )
    return context


def _age_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _pattern(rng: random.Random, weekdays: str, low: int, high: int) -> set[int]:
    """A child's weekly days among the activity's weekdays (ISO numbers)."""
    choices = [int(day) for day in weekdays.split(",")]
    count = min(len(choices), rng.randint(low, high))
    return set(rng.sample(choices, count))


def _choices(rng: random.Random, age: int) -> dict[str, list[tuple[str, set[int] | float]]]:
    """service code → [(activity name, weekly pattern or share of its days)] for a child."""
    chosen: dict[str, list] = {}
    if age < 3:
        if rng.random() < 0.5:
            chosen["multiaccueil"] = [("Accueil régulier", (3, 5))]
        return chosen
    if age <= 10 and rng.random() < 0.75:
        chosen["restauration"] = [("Repas du midi", (2, 4))]
    if age <= 10 and rng.random() < 0.35:
        picks = []
        if rng.random() < 0.5:
            picks.append(("Accueil du matin", (1, 4)))
        if not picks or rng.random() < 0.6:
            picks.append(("Accueil du soir", (1, 4)))
        chosen["aps"] = picks
    if 3 <= age <= 11 and rng.random() < 0.25:
        wednesday = "Mercredi journée" if rng.random() < 0.6 else "Mercredi demi-journée"
        chosen["goulidons"] = [(wednesday, (1, 1)), ("Vacances journée", 0.3)]
    return chosen


def _write_chunk(context: _Context, rng: random.Random, numbers: range, result: Generated):
    now = datetime.now(UTC)
    rows: dict[str, list[dict]] = defaultdict(list)
    year = context.year
    booking_rows: list[BookingRow] = []
    unbilled_from = previous_month(context.today)  # last month on: left to the run
    quotients: dict[int, int | None] = {}
    addressees: dict[int, tuple[str, str, bool]] = {}
    for number in numbers:
        site = (number - 1) // SITE_HOUSEHOLDS
        household_id = context.take_id("households")
        last_name = rng.choice(LAST_NAMES)
        quotient = None if rng.random() < 0.15 else rng.randint(250, 2600)
        paperless = rng.random() < 0.8
        address = f"{rng.randint(1, 120)} {rng.choice(STREETS)}"
        rows["households"].append(
            {
                "id": household_id,
                "external_ref": f"{REF_PREFIX}{number:07d}",
                "address_line": address,
                "postcode": "49290",
                "city": "Chalonnes-sur-Loire",
                "family_quotient": quotient,
                "paperless_invoices": paperless,
                "created_at": now,
                "updated_at": now,
            }
        )
        quotients[household_id] = quotient
        adults = 1 if rng.random() < 0.3 else 2
        for position in range(adults):
            person_id = context.take_id("people")
            female = position == 0 if rng.random() < 0.7 else position == 1
            first_name = rng.choice((FIRST_NAMES_F if female else FIRST_NAMES_M).split())
            rows["people"].append(
                {
                    "id": person_id,
                    "civility": "Mme" if female else "M.",
                    "first_name": first_name,
                    "last_name": last_name,
                    "birth_date": date(rng.randint(1972, 1998), rng.randint(1, 12), 15),
                    "sex": "F" if female else "M",
                    "email": f"adulte{number}-{position + 1}@example.org",
                    "mobile_phone": f"+336{number % 100_000_000:08d}",
                    "created_at": now,
                    "updated_at": now,
                }
            )
            rows["household_members"].append(
                {
                    "id": context.take_id("household_members"),
                    "household_id": household_id,
                    "person_id": person_id,
                    "role": "adult",
                    "created_at": now,
                }
            )
            if position == 0:
                addressees[household_id] = (
                    f"{first_name} {last_name}",
                    f"{address}\n49290 Chalonnes-sur-Loire",
                    paperless,
                )
                rows["users"].append(
                    {
                        "id": context.take_id("users"),
                        "email": f"famille{number}@example.org",
                        "password_hash": context.password_hash,
                        "role": "parent",
                        "first_name": first_name,
                        "last_name": last_name,
                        "household_id": household_id,
                        "person_id": person_id,
                        "active": True,
                        "imported": False,
                        "confirmed_at": now,
                        "created_at": now,
                        "password_changed_at": now,
                    }
                )
        children = rng.choices((1, 2, 3, 4), weights=(35, 40, 18, 7))[0]
        for _child in range(children):
            child_id = context.take_id("people")
            birth = date(year.starts_on.year - rng.randint(1, 12), rng.randint(1, 12), 10)
            age = _age_years(birth, year.starts_on)
            female = rng.random() < 0.5
            first_name = rng.choice((FIRST_NAMES_F if female else FIRST_NAMES_M).split())
            rows["people"].append(
                {
                    "id": child_id,
                    "first_name": first_name,
                    "last_name": last_name,
                    "birth_date": birth,
                    "sex": "F" if female else "M",
                    "class_level": LEVEL_BY_AGE.get(age),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            rows["household_members"].append(
                {
                    "id": context.take_id("household_members"),
                    "household_id": household_id,
                    "person_id": child_id,
                    "role": "child",
                    "created_at": now,
                }
            )
            for code, picks in _choices(rng, age).items():
                service_id = context.services.get(code)
                if service_id is None:
                    continue
                enrolment_id = context.take_id("enrolments")
                rows["enrolments"].append(
                    {
                        "id": enrolment_id,
                        "household_id": household_id,
                        "child_id": child_id,
                        "service_id": service_id,
                        "school_year_id": year.id,
                        "status": "accepted",
                        "created_at": now,
                        "decided_at": now,
                    }
                )
                for name, how in picks:
                    activity = context.activities.get((code, site_name(name, site)))
                    if activity is None:
                        continue
                    rows["enrolment_activities"].append(
                        {
                            "id": context.take_id("enrolment_activities"),
                            "enrolment_id": enrolment_id,
                            "activity_id": activity.id,
                        }
                    )
                    if isinstance(how, float):
                        wanted = None
                    else:
                        wanted = _pattern(rng, activity.weekdays, *how)
                    for day_id, day in context.days.get(activity.id, ()):
                        if wanted is None:
                            if rng.random() >= how:
                                continue
                        elif day.isoweekday() not in wanted:
                            continue
                        draw = rng.random()
                        status, late = "booked", False
                        if draw < 0.03:
                            status = "cancelled"
                        elif draw < 0.04:
                            status, late = "cancelled", True
                        attendance = None
                        if status == "booked" and day < context.today:
                            draw = rng.random()
                            attendance = (
                                "present" if draw < 0.92 else "absent" if draw < 0.97 else "excused"
                            )
                        booking_id = context.take_id("bookings")
                        rows["bookings"].append(
                            {
                                "id": booking_id,
                                "activity_day_id": day_id,
                                "child_id": child_id,
                                "household_id": household_id,
                                "day": day,
                                "exclusion_set_id": activity.exclusion_set_id,
                                "status": status,
                                "late": late,
                                "attendance": attendance,
                                "created_at": now,
                                "updated_at": now,
                            }
                        )
                        if context.invoice_months and day < unbilled_from:
                            booking_rows.append(
                                BookingRow(
                                    household_id=household_id,
                                    child_id=child_id,
                                    child_name=f"{first_name} {last_name}",
                                    activity_id=activity.id,
                                    activity_name=activity.name,
                                    school_year_id=year.id,
                                    day=day,
                                    status=status,
                                    late=late,
                                    attendance=attendance,
                                    surcharge_cents=context.surcharges.get(activity.id, 0),
                                    booking_id=booking_id,
                                )
                            )
    _past_invoices(context, rng, booking_rows, quotients, addressees, rows)
    _write_rows(rows)
    result.households += len(rows["households"])
    result.people += len(rows["people"])
    result.users += len(rows["users"])
    result.enrolments += len(rows["enrolments"])
    result.bookings += len(rows["bookings"])
    result.invoices += len(rows["invoices"])
    result.invoice_lines += len(rows["invoice_lines"])
    result.billed_days += len(rows["billed_days"])
    result.payments += len(rows["payments"])


def _write_rows(rows: dict[str, list[dict]]) -> None:
    """Write the chunk's rows, table by table in `TABLES` order: on PostgreSQL with
    `COPY … FROM STDIN` through the session's own connection (same transaction; a
    multi-row INSERT or psycopg's pipelined executemany is 5 to 10 times slower), else
    with one Core `insert()` of the list of dicts per table."""
    connection = db.session.connection()
    copying = connection.dialect.name == "postgresql"
    if copying and connection.scalar(text("SELECT current_setting('is_superuser')")) == "on":
        # The foreign keys' triggers checked row by row are a third of the COPY's time;
        # the rows are consistent by construction (ids given here, parents written
        # first). For this transaction only, and where allowed (a superuser).
        connection.execute(text("SET LOCAL session_replication_role = replica"))
    for model in TABLES:
        table = model.__table__
        batch = rows.get(table.name)
        if not batch:
            continue
        # One shape per statement: keys some rows lack (a child's email) are NULL. A
        # table's rows differ in their keys only when they differ in their number.
        shapes = {}
        for row in batch:
            shapes.setdefault(len(row), row)
        keys = set().union(*shapes.values())
        if copying:
            _copy_rows(connection, table, [c.name for c in table.columns if c.name in keys], batch)
            continue
        for row in batch:
            if len(row) < len(keys):
                for key in keys - row.keys():
                    row[key] = None
        db.session.execute(insert(table), batch)


def _copy_rows(connection, table, columns: list[str], batch: list[dict]) -> None:
    """`COPY table (columns) FROM STDIN` of the rows (psycopg 3), in the session's
    transaction. The names are the models' own, never input."""
    # COPY skips the models' Python-side defaults (a session token, a flag): given here,
    # called once per row; server defaults apply to the columns left out.
    defaults = [
        column.default
        for column in table.columns
        if column.name not in columns
        and column.default is not None
        and column.default.is_scalar
        or column.name not in columns
        and column.default is not None
        and column.default.is_callable
    ]
    names = ", ".join(f'"{name}"' for name in [*columns, *(d.column.name for d in defaults)])
    values = itemgetter(*columns) if len(columns) > 1 else lambda row: (row[columns[0]],)
    driver = connection.connection.driver_connection
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    with driver.cursor() as cursor, cursor.copy(statement) as copy:
        for row in batch:
            if len(row) < len(columns):
                row = dict.fromkeys(columns) | row
            if defaults:
                extra = [d.arg if d.is_scalar else d.arg(None) for d in defaults]
                copy.write_row((*values(row), *extra))
            else:
                copy.write_row(values(row))


def _past_invoices(context, rng, booking_rows, quotients, addressees, rows) -> None:
    """The invoices of the months before last, as a run would have issued them; nine in
    ten paid by card within three weeks (the rest left to pay)."""
    by_month: dict[date, list[BookingRow]] = defaultdict(list)
    for row in booking_rows:
        by_month[row.day.replace(day=1)].append(row)
    bands = {context.year.id: context.bands}
    for month in context.invoice_months:
        bills, _missing = price_bookings(by_month.get(month, ()), quotients, bands, context.prices)
        issued_on = next_month(month) + timedelta(days=2)
        issued_at = datetime(issued_on.year, issued_on.month, issued_on.day, 8, 0, tzinfo=UTC)
        for household_id in sorted(bills):
            bill = bills[household_id]
            if not bill.worth_issuing:
                continue
            sequence = context.counters.get(issued_on.year, 0) + 1
            context.counters[issued_on.year] = sequence
            invoice_id = context.take_id("invoices")
            name, address, paperless = addressees[household_id]
            paid = bill.total_cents == 0 or rng.random() < 0.9
            if bill.total_cents and paid:
                rows["payments"].append(
                    {
                        "id": context.take_id("payments"),
                        "invoice_id": invoice_id,
                        "household_id": household_id,
                        "method": "card",
                        "amount_cents": bill.total_cents,
                        "transaction_id": f"{REF_PREFIX}{invoice_id}",
                        "paid_at": issued_at + timedelta(days=rng.randint(1, 21)),
                    }
                )
            rows["invoices"].append(
                {
                    "id": invoice_id,
                    "household_id": household_id,
                    "kind": "invoice",
                    "credit_for_id": None,
                    "year": issued_on.year,
                    "sequence": sequence,
                    "number": format_number(issued_on.year, sequence),
                    "month": month,
                    "issued_at": issued_at,
                    "due_on": issued_on + timedelta(days=context.due_days),
                    "total_cents": bill.total_cents,
                    "status": "paid" if paid else "issued",
                    "paperless": paperless,
                    "addressee": name,
                    "address": address,
                    "family_quotient": quotients.get(household_id),
                    "band_label": " / ".join(bill.band_labels)[:60] or None,
                    "mailed_at": issued_at if paperless else None,
                }
            )
            for line in bill.lines:
                line_id = context.take_id("invoice_lines")
                rows["invoice_lines"].append({"id": line_id, **line_row(invoice_id, line)})
                for day, booking_id in zip(line.days, line.booking_ids, strict=True):
                    rows["billed_days"].append(
                        {
                            "id": context.take_id("billed_days"),
                            "invoice_line_id": line_id,
                            "booking_id": booking_id,
                            "household_id": household_id,
                            "day": day,
                            "amount_cents": line.unit_price_cents,
                        }
                    )


def _finish(context: _Context) -> None:
    """Booked counts of the opening days, capacity raised where overbooked, the invoice
    counters, and (PostgreSQL) the id sequences past the ids given."""
    # Counted once, grouped (a correlated count per day reads the 6 million bookings of
    # a 100,000-household commune through the index, day by day); days left without a
    # booking go to zero.
    holding = Booking.status.in_(("booked", "walk_in"))
    counts = (
        select(Booking.activity_day_id, func.count().label("booked"))
        .where(holding)
        .group_by(Booking.activity_day_id)
        .subquery()
    )
    days = ActivityDay.__table__
    mine = (days.c.school_year_id == context.year.id, days.c.day <= context.today)
    db.session.execute(
        update(days)
        .where(*mine, days.c.id == counts.c.activity_day_id, days.c.booked != counts.c.booked)
        .values(booked=counts.c.booked)
    )
    db.session.execute(
        update(days)
        .where(
            *mine,
            days.c.booked != 0,
            ~select(Booking.id).where(Booking.activity_day_id == days.c.id, holding).exists(),
        )
        .values(booked=0)
    )
    db.session.execute(
        update(days)
        .where(days.c.school_year_id == context.year.id, days.c.booked > days.c.capacity)
        .values(capacity=days.c.booked)
    )
    counters = InvoiceCounter.__table__
    known = set(db.session.scalars(select(counters.c.year)))
    for year, last in context.counters.items():
        if year in known:
            db.session.execute(
                update(counters).where(counters.c.year == year).values(last_number=last)
            )
        else:
            db.session.execute(insert(counters).values(year=year, last_number=last))
    if db.session.get_bind().dialect.name == "postgresql":
        for model in TABLES:
            name = model.__table__.name
            db.session.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                    f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {name}), false)"  # the models' tables
                )
            )


@click.command("bench-data")
@with_appcontext
@click.option("--households", type=click.IntRange(min=1), required=True)
@click.option("--append", is_flag=True, help="Add to a database that already has households.")
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True)
def bench_data_command(households: int, append: bool, seed: int) -> None:
    """Generate a realistic commune of N households for the benchmarks (not in production)."""
    try:
        result = generate(households, append=append, seed=seed, echo=click.echo)
    except BenchDataError as error:
        raise click.ClickException(str(error)) from error
    click.echo(result.summary())
