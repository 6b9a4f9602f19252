"""End to end on a phone, as a parent: plan a weekly pattern for two children, cancel a
day, see the states of the calendar.

A live server of this module's own (its own database), on the real clock: the school
year is the one around today (zone B holidays, none around today), so the days of this
week are past their 72-hour cut-off and those of next month are not. Camille plans
Monday, Tuesday, Thursday and Friday for Léa and Hugo in both activities, for the rest
of the year; unticks one of Léa's days next month (htmx, no reload); that place is then
taken by someone else, so the day is full and she puts Léa on its waiting list.
Skipped when Playwright or Chromium is missing. `SCREENSHOTS=1` also saves
reservations-plan-preview.png, reservations-plan-result.png and reservations-month.png
to docs/screenshots/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest

from tests import live
from tests.live import assert_fits_the_phone, nav
from tests.test_browser import TIMEOUT_MS, Phone, chromium, phone  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

PASSWORD = "des hirondelles sous le pont de Saumur"
PARENT_FIRST, LAST_NAME = "Camille", "Lefebvre"
EMAIL = "camille.lefebvre@example.org"
# Eldest first: the order of the reservation pages.
CHILDREN = (("Léa", date(2017, 3, 12)), ("Hugo", date(2020, 6, 2)))
SERVICE = "Accueil périscolaire"
# (name, start, end): the morning cut-off falls before the evening one.
ACTIVITIES = (
    ("Accueil du matin", time(7, 30), time(8, 30)),
    ("Accueil du soir", time(16, 30), time(18, 0)),
)
WEEKDAYS = "1,2,4,5"
PLANNED = ("Lundi", "Mardi", "Jeudi", "Vendredi")

# Chromium logs CSP violations as console errors already; this says it in our words too.
CSP_REPORTER = """document.addEventListener("securitypolicyviolation", function (event) {
    console.error("CSP violation: " + event.violatedDirective + " " + event.blockedURI);
});"""


@dataclass
class Family:
    household_id: int
    child_ids: list[int]  # eldest first
    activity_ids: list[int]
    year_start: date
    year_end: date


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """The live app on a database of its own.

    The name matters: conftest's `_transaction` leaves tests that use `live_server` alone.
    """
    tmp = tmp_path_factory.mktemp("browser-reservations")
    with live.serve(tmp, database="citoyens_browser_reservations") as server:
        yield server


def school_year_around(today: date) -> tuple[date, date]:
    """1 September to 31 August around today, stretched past next month in the summer."""
    start = date(today.year if today.month >= 9 else today.year - 1, 9, 1)
    end = max(date(start.year + 1, 8, 31), today + timedelta(days=62))
    return start, end


@pytest.fixture(scope="module")
def family(live_server) -> Family:
    """A confirmed parent, two children enrolled (accepted) in both activities of a
    service whose opening days run through the school year around today."""
    from citoyens.accounts.models import User
    from citoyens.accounts.passwords import hash_password
    from citoyens.database import utcnow
    from citoyens.extensions import db
    from citoyens.forms import today_in_paris
    from citoyens.households.models import Household, HouseholdMember, Person
    from citoyens.reservations.calendar import generate_days, library_holidays
    from citoyens.reservations.models import Holiday
    from citoyens.services.models import Activity, SchoolYear
    from tests.enrolments_factories import make_service
    from tests.reservations_factories import Offer, enrol_accepted

    app = live_server.app
    today = today_in_paris()
    start, end = school_year_around(today)
    service_id = make_service(app, name=SERVICE)
    with app.app_context():
        year = SchoolYear(name=f"{start.year}-{start.year + 1}", starts_on=start, ends_on=end)
        activities = [
            Activity(
                service_id=service_id,
                name=name,
                weekdays=WEEKDAYS,
                start_time=begins,
                end_time=ends,
                capacity=30,
                cutoff_hours=72,
                calendar="term",
            )
            for name, begins, ends in ACTIVITIES
        ]
        db.session.add_all([year, *activities])
        # The zone B holidays of the year, but none around today: this week and the next
        # keep their opening days whatever the date the test runs on.
        calm = (today - timedelta(days=7), today + timedelta(days=14))
        db.session.add_all(
            Holiday(kind=kind, name=name, starts_on=first, ends_on=last, source="library")
            for kind, name, first, last in library_holidays(start, end)
            if last < calm[0] or first > calm[1]
        )
        db.session.flush()
        generate_days(year, activities)

        household = Household()
        adult = Person(first_name=PARENT_FIRST, last_name=LAST_NAME, mobile_phone="+33612345678")
        household.memberships.append(HouseholdMember(person=adult, role="adult"))
        children = [Person(first_name=f, last_name=LAST_NAME, birth_date=b) for f, b in CHILDREN]
        for child in children:
            household.memberships.append(HouseholdMember(person=child, role="child"))
        db.session.add(
            User(
                email=EMAIL,
                password_hash=hash_password(PASSWORD),
                role="parent",
                first_name=PARENT_FIRST,
                last_name=LAST_NAME,
                household=household,
                person=adult,
                confirmed_at=utcnow(),
            )
        )
        db.session.commit()
        seeded = Family(
            household.id, [c.id for c in children], [a.id for a in activities], start, end
        )
        offer = Offer(service_id, year.id, seeded.activity_ids)
    for child_id in seeded.child_ids:
        enrol_accepted(app, seeded.household_id, child_id, offer)
    return seeded


# --- Helpers ----------------------------------------------------------------------------------


def log_in(page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto("/connexion")
    page.get_by_label("Identifiant", exact=True).fill(EMAIL)
    page.get_by_label("Mot de passe", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    expect(page).to_have_url(url + "/tableau-de-bord")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Bonjour {PARENT_FIRST}")


def opening_days(app, activity_id: int, first: date) -> list[tuple[int, date]]:
    """(id, date) of the activity's days from `first` on."""
    from tests.reservations_factories import day_ids

    return day_ids(app, activity_id, first)


def past_cutoff(start: time, day: date, now: datetime) -> bool:
    """The rule of citoyens.reservations.rules.cutoff_at, restated: 72 real hours."""
    from citoyens.forms import PARIS

    starts = datetime.combine(day, start, tzinfo=PARIS).astimezone(UTC)
    return now >= starts - timedelta(hours=72)


def household_bookings(app, child_ids: list[int]) -> dict[str, int]:
    """status -> how many bookings the children have."""
    from sqlalchemy import func, select

    from citoyens.extensions import db
    from citoyens.reservations.models import Booking

    with app.app_context():
        return dict(
            db.session.execute(
                select(Booking.status, func.count())
                .where(Booking.child_id.in_(child_ids))
                .group_by(Booking.status)
            ).all()
        )


def day_of(app, activity_day_id: int) -> tuple[str, date]:
    """(activity name, date) of an opening day."""
    from citoyens.extensions import db
    from citoyens.reservations.models import ActivityDay
    from citoyens.services.models import Activity

    with app.app_context():
        row = db.session.get(ActivityDay, activity_day_id)
        return db.session.get(Activity, row.activity_id).name, row.day


# --- The test ---------------------------------------------------------------------------------


def test_a_parent_plans_two_children_cancels_a_day_and_sees_the_states(
    live_server,
    family,
    phone,  # noqa: F811 (the imported fixture)
):
    from playwright.sync_api import expect

    from citoyens.formatting import day_fr, month_fr, short_day_fr, weekday_fr
    from citoyens.forms import today_in_paris
    from tests.reservations_factories import bookings_of, day_row, set_capacity

    page, url, app = phone.page, live_server.url, live_server.app
    page.context.add_init_script(CSP_REPORTER)
    today = today_in_paris()
    first_name, second_name = (name for name, _ in CHILDREN)
    log_in(page, url)

    # 1. Réservations: both children have a calendar, and the planner is offered.
    nav(page, "Réservations")
    expect(page).to_have_url(url + "/reservations/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Réservations")
    for name, _ in CHILDREN:
        expect(page.get_by_role("link", name=f"Voir le calendrier de {name}")).to_be_visible()
    assert_fits_the_phone(page)

    # 2. Planifier en un clic: both children, both activities, Mon/Tue/Thu/Fri, default period.
    page.get_by_role("link", name="Planifier en un clic").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Planifier en un clic")
    for name, _ in CHILDREN:
        page.get_by_role("group", name="Enfants").get_by_label(name, exact=True).check()
    for name, _, _ in ACTIVITIES:
        page.get_by_role("group", name="Activités").get_by_label(
            f"{SERVICE} — {name}", exact=True
        ).check()
    weekdays = page.get_by_role("group", name="Jours de la semaine")
    for label in PLANNED:
        weekdays.get_by_label(label, exact=True).check()
    expect(weekdays.get_by_label("Mercredi", exact=True)).not_to_be_checked()
    # The period: from today to the end of the school year.
    expect(page.get_by_label("Du", exact=True)).to_have_value(today.isoformat())
    expect(page.get_by_label("Au", exact=True)).to_have_value(family.year_end.isoformat())
    assert_fits_the_phone(page)

    page.get_by_role("button", name="Voir l'aperçu").click()
    preview = page.get_by_role("region", name="Aperçu")
    expect(preview).to_be_visible()
    summary = preview.get_by_text(re.compile(r"^\d+ jours seront réservés\.$"))
    expect(summary).to_be_visible()
    to_book = int(summary.inner_text().split()[0])
    # One line per child and activity; what is booked plus what is past its cut-off
    # makes every opening day left in the year.
    rows = preview.locator(".rv-line")
    expect(rows).to_have_count(len(CHILDREN) * len(ACTIVITIES))
    total = 0
    for index, (child, (activity, _, _)) in enumerate(
        (child, activity) for child, _ in CHILDREN for activity in ACTIVITIES
    ):
        row = rows.nth(index)
        expect(row.get_by_role("heading")).to_have_text(f"{child} — {activity}")
        text = row.inner_text()
        counts = {
            label: int(match.group(1)) if (match := re.search(rf"(\d+) {label}", text)) else 0
            for label in ("à réserver", "déjà réservé", "complet", "fermé", "délai dépassé")
        }
        book, already, full, closed, cutoff = counts.values()
        left = len(opening_days(app, family.activity_ids[index % len(ACTIVITIES)], today))
        assert (book + cutoff, already, full, closed) == (left, 0, 0, 0), (child, activity, text)
        # Today's or the next opening day is always within 72 hours; next week's are not all.
        assert 1 <= cutoff <= 4, (child, activity, text)
        total += book
    assert total == to_book
    assert_fits_the_phone(page)
    preview.evaluate("(element) => element.scrollIntoView({block: 'start'})")
    phone.screenshot("reservations-plan-preview")

    now = datetime.now(UTC)
    preview.get_by_role("button", name="Confirmer et réserver").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Réservations enregistrées")
    expect(page.locator(".notice-success[role=status]")).to_have_text(f"{to_book} jours réservés.")
    assert household_bookings(app, family.child_ids) == {"booked": to_book}
    # Each line lists the days it could not book: this week's, past the cut-off.
    for child, _ in CHILDREN:
        for activity_id, (activity, starts, _) in zip(family.activity_ids, ACTIVITIES, strict=True):
            section = page.locator("section").filter(
                has=page.get_by_role("heading", name=f"{child} — {activity}", exact=True)
            )
            expect(section).to_contain_text(re.compile(r"\d+ jours? réservés?\."))
            late = [
                day
                for _, day in opening_days(app, activity_id, today)
                if past_cutoff(starts, day, now)
            ]
            # In a <details>, open when five days or fewer: count them open or not.
            missed = section.locator("details li")
            expect(missed).to_have_count(len(late))
            expect(missed.first).to_have_text(f"{day_fr(late[0])} : délai de réservation dépassé")
            expect(section.locator("summary")).to_have_text(
                f"{len(late)} jour{'s' if len(late) > 1 else ''} non réservé"
                f"{'s' if len(late) > 1 else ''}"
            )
    assert_fits_the_phone(page)
    phone.screenshot("reservations-plan-result")

    # 3. Léa's calendar: this month, then this week alone, with its locked days.
    nav(page, "Réservations")
    page.get_by_role("link", name=f"Voir le calendrier de {first_name}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Réservations de {first_name}")
    period = page.locator(".rv-period-title")
    expect(period).to_have_text(month_fr(today).capitalize())
    expect(page.get_by_role("navigation", name="Enfants")).to_contain_text(second_name)
    assert_fits_the_phone(page)

    page.get_by_role("link", name="Voir une seule semaine").click()
    monday = today - timedelta(days=today.weekday())
    expect(page).to_have_url(re.compile(rf"\?semaine={monday.isoformat()}$"))
    expect(period).to_have_text(f"Semaine du {short_day_fr(monday)}")
    expect(page.locator("form.rv-week")).to_have_count(1)
    days = page.locator(".rv-day")
    expect(days.first).to_be_visible()
    assert 1 <= days.count() <= 4
    # Past the cut-off and not booked: no checkbox, "non modifiable".
    locked = page.locator("li.rv-locked")
    expect(locked.first).to_be_visible()
    expect(locked.first.locator(".rv-state")).to_have_text("Non réservé · non modifiable")
    expect(locked.locator("input")).to_have_count(0)
    first_late_id, first_late = opening_days(app, family.activity_ids[0], today)[0]
    if first_late - monday < timedelta(days=7):
        expect(page.locator(f"#cellule-{first_late_id}")).to_have_class(
            re.compile(r"\brv-locked\b")
        )
    assert_fits_the_phone(page)

    # 4. Next month: untick a booked day; htmx swaps that cell alone.
    page.go_back()
    expect(period).to_have_text(month_fr(today).capitalize())
    page.get_by_role("link", name="Mois suivant").click()
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    expect(page).to_have_url(re.compile(rf"\?mois={next_month:%Y-%m}$"))
    expect(period).to_have_text(month_fr(next_month).capitalize())
    assert_fits_the_phone(page)
    page.evaluate("() => { window.sansRechargement = true; }")

    booked = page.locator("li.rv-booked").filter(has=page.locator("input[type=checkbox]:enabled"))
    expect(booked.first).to_be_visible()
    cell_id = booked.first.get_attribute("id")
    day_id = int(cell_id.removeprefix("cellule-"))
    cell = page.locator(f"#{cell_id}")
    checkbox = cell.get_by_role("checkbox")
    expect(checkbox).to_be_checked()
    activity_name, day = day_of(app, day_id)
    expect(cell.locator(".rv-name")).to_have_text(activity_name)
    day_text = weekday_fr(day)
    checkbox.tap()
    expect(cell).to_have_class(re.compile(r"\brv-available\b"))
    expect(cell.locator(".rv-state")).to_contain_text("Disponible")
    expect(checkbox).not_to_be_checked()
    expect(page.locator("#annonce-reservation")).to_have_text(
        f"Annulé : {activity_name}, {day_text}."
    )
    expect(checkbox).to_be_focused()
    assert page.evaluate("() => window.sansRechargement") is True, "the page reloaded"
    first_child = family.child_ids[0]
    assert bookings_of(app, first_child)[day_id] == "cancelled"

    # 5. Someone else takes that place: the day is full; Léa joins its waiting list.
    capacity, taken, _ = day_row(app, day_id)
    assert (capacity, taken) == (30, 1)  # Hugo's place
    set_capacity(app, day_id, taken)
    page.reload()
    expect(cell).to_have_class(re.compile(r"\brv-full\b"))
    expect(cell.locator(".rv-state")).to_have_text("Complet, liste d'attente possible")
    expect(cell.get_by_role("checkbox")).to_have_count(0)
    page.evaluate("() => { window.sansRechargement = true; }")
    cell.get_by_role("button", name="Liste d'attente", exact=True).tap()
    expect(cell.locator(".rv-state")).to_have_text("Liste d'attente (1er)")
    expect(cell).to_have_class(re.compile(r"\brv-waiting\b"))
    expect(page.locator("#annonce-reservation")).to_have_text(
        f"Sur liste d'attente : {activity_name}, {day_text}."
    )
    expect(cell.get_by_role("button", name="Quitter la liste")).to_be_focused()
    assert page.evaluate("() => window.sansRechargement") is True, "the page reloaded"
    assert bookings_of(app, first_child)[day_id] == "waiting"
    assert_fits_the_phone(page)
    cell.evaluate("(element) => element.scrollIntoView({block: 'center'})")
    phone.screenshot("reservations-month")

    assert phone.errors == []
