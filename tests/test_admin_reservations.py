"""Back office of the reservations: the week's overview, a day's list and attendance,
walk-ins, exports, and booking on behalf of a family.

Dates are those of school year 2030-2031 (tests/reservations_factories.py). The staff
pages read the clock through `citoyens.reservations.staff.now`; tests that need "the
day itself" or "after the cut-off" patch it (fixture `clock`). CSRF stays on: every
POST goes through `post()` with the page's token, except the test of a missing token.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select

from citoyens.core.models import AuditEvent
from citoyens.extensions import db
from citoyens.reservations import operations as ops
from citoyens.reservations import staff as staff_rules
from citoyens.reservations.models import ActivityDay, Booking, BookingChange
from tests.conftest import counted_queries, post
from tests.enrolments_factories import update_child
from tests.factories import make_user
from tests.requests_factories import assign_staff
from tests.reservations_factories import (
    EARLY,
    add_child,
    children_of,
    day_ids,
    day_row,
    enrol_accepted,
    make_bookable_offer,
)

HX = {"HX-Request": "true"}
MONDAY = date(2030, 9, 2)
TUESDAY = date(2030, 9, 3)
# Tuesday 3 September 2030, 10:00 in Paris: the day itself for TUESDAY, after its cut-off.
ON_TUESDAY = datetime(2030, 9, 3, 8, 0, tzinfo=UTC)


def login(app, account):
    client = app.test_client()
    response = post(client, "/connexion", {"email": account.email, "password": account.password})
    assert response.status_code == 303
    return client


@pytest.fixture
def clock(monkeypatch):
    """Set the staff pages' clock: `clock(datetime)`."""

    def set_clock(at: datetime):
        monkeypatch.setattr(staff_rules, "now", lambda: at)

    return set_clock


@pytest.fixture
def world(app):
    """Service A (one activity, 2 places) and service B; a family of two children enrolled
    in A; an agent of A, an agent of B."""
    a = make_bookable_offer(app, activities=1, capacity=2, name="Accueil périscolaire")
    b = make_bookable_offer(app, activities=1, capacity=5, name="Restauration scolaire")
    family = make_user(app, role="parent", children=2)
    children = children_of(app, family.household_id)
    enrolments = [enrol_accepted(app, family.household_id, child, a) for child in children]
    agent = make_user(app, role="staff")
    assign_staff(app, agent.id, a.service_id)
    other = make_user(app, role="staff")
    assign_staff(app, other.id, b.service_id)
    days_a = {d: i for i, d in day_ids(app, a.activity_ids[0], MONDAY, date(2030, 9, 30))}
    days_b = {d: i for i, d in day_ids(app, b.activity_ids[0], MONDAY, date(2030, 9, 30))}
    return {
        "a": a,
        "b": b,
        "family": family,
        "household": family.household_id,
        "children": children,
        "enrolments": enrolments,
        "agent": agent,
        "other": other,
        "days_a": days_a,
        "days_b": days_b,
    }


def book(app, household_id, child_id, day_id, *, waiting=False):
    with app.app_context():
        outcome = ops.book_days(
            household_id, child_id, [day_id], actor=None, waiting_list=waiting, now=EARLY
        )
        db.session.commit()
        return outcome


def booking_of(app, child_id, day_id) -> Booking | None:
    with app.app_context():
        booking = db.session.scalar(
            select(Booking).where(Booking.child_id == child_id, Booking.activity_day_id == day_id)
        )
        if booking is not None:
            db.session.expunge(booking)
        return booking


def changes_of(app, booking_id) -> list[tuple]:
    with app.app_context():
        return list(
            db.session.execute(
                select(BookingChange.from_state, BookingChange.to_state, BookingChange.actor_kind)
                .where(BookingChange.booking_id == booking_id)
                .order_by(BookingChange.id)
            ).all()
        )


def audit_actions(app, target_prefix: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent.action).where(AuditEvent.target.startswith(target_prefix))
            )
        )


def day_url(world, day=TUESDAY, key="days_a"):
    return f"/admin/reservations/jour/{world[key][day]}"


# --- Week overview ----------------------------------------------------------------------------


def test_overview_counts_booked_waiting_and_full(app, world):
    tuesday = world["days_a"][TUESDAY]
    third = add_child(app, world["household"], "Zoé")
    enrol_accepted(app, world["household"], third, world["a"])
    for child in world["children"]:
        book(app, world["household"], child, tuesday)
    assert book(app, world["household"], third, tuesday, waiting=True).waiting == [tuesday]
    book(app, world["household"], world["children"][0], world["days_a"][MONDAY])
    client = login(app, world["agent"])
    page = client.get("/admin/reservations", query_string={"semaine": "2030-09-04"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Semaine du lundi 2 septembre 2030" in html
    assert "1 / 2" in html  # Monday
    assert "2 / 2" in html and "Complet" in html and "rsv-full" in html  # Tuesday
    assert "1 en attente" in html
    assert f"/admin/reservations/jour/{tuesday}" in html
    assert "semaine=2030-08-26" in html and "semaine=2030-09-09" in html
    assert "Restauration scolaire" not in html  # service B is not the agent's


def test_overview_marks_closed_days(app, world):
    with app.app_context():
        row = db.session.get(ActivityDay, world["days_a"][TUESDAY])
        row.closed, row.closed_reason = True, "Grève"
        db.session.commit()
    html = login(app, world["agent"]).get("/admin/reservations?semaine=2030-09-03").text
    assert "Fermé" in html and "rsv-closed" in html


def test_overview_scoping_and_service_filter(app, world, admin):
    other = login(app, world["other"])
    html = other.get("/admin/reservations?semaine=2030-09-02").text
    assert "Restauration scolaire" in html
    assert f"/admin/reservations/jour/{world['days_a'][TUESDAY]}" not in html
    # Asking for another service's id shows only one's own.
    html = other.get(f"/admin/reservations?semaine=2030-09-02&service={world['a'].service_id}").text
    assert f"/admin/reservations/jour/{world['days_a'][TUESDAY]}" not in html

    client = login(app, admin)
    html = client.get("/admin/reservations?semaine=2030-09-02").text
    assert f"/admin/reservations/jour/{world['days_a'][TUESDAY]}" in html
    assert f"/admin/reservations/jour/{world['days_b'][TUESDAY]}" in html
    html = client.get(
        f"/admin/reservations?semaine=2030-09-02&service={world['b'].service_id}"
    ).text
    assert f"/admin/reservations/jour/{world['days_a'][TUESDAY]}" not in html
    assert f"/admin/reservations/jour/{world['days_b'][TUESDAY]}" in html


@pytest.mark.parametrize(
    "value", ["n'importe quoi", "2030-02-30", "99999-01-01", "0001-01-01", "9999-12-31"]
)
def test_overview_with_a_bad_week_is_a_french_400(app, world, value):
    client = login(app, world["agent"])
    assert client.get("/admin/reservations", query_string={"semaine": ""}).status_code == 200
    response = client.get("/admin/reservations", query_string={"semaine": value})
    assert response.status_code == 400
    assert "La semaine demandée" in response.get_data(as_text=True)


def test_agent_without_service_sees_an_empty_overview(app, staff):
    response = login(app, staff).get("/admin/reservations")
    assert response.status_code == 200
    assert "aucun service" in response.text


def test_overview_runs_a_fixed_number_of_queries(app):
    small = make_bookable_offer(app, activities=1)
    large = make_bookable_offer(app, activities=3, capacity=40)
    family = make_user(app, role="parent", children=0)
    kids = [add_child(app, family.household_id, f"Enfant{n}") for n in range(6)]
    for kid in kids:
        enrol_accepted(app, family.household_id, kid, large)
    for activity_id in large.activity_ids:
        for day_id, _ in day_ids(app, activity_id, MONDAY, date(2030, 9, 8)):
            for kid in kids[:4]:
                book(app, family.household_id, kid, day_id)
    counts = []
    for offer in (small, large):
        agent = make_user(app, role="staff")
        assign_staff(app, agent.id, offer.service_id)
        client = login(app, agent)
        client.get("/admin/reservations?semaine=2030-09-02")  # warm-up
        with counted_queries(app) as statements:
            response = client.get("/admin/reservations?semaine=2030-09-02")
        assert response.status_code == 200
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


# --- One day's list ---------------------------------------------------------------------------


def test_day_lists_children_with_health_flags_and_waiting_list(app, world):
    first, second = world["children"]
    update_child(app, first, class_level="CE1", allergies="Arachides", pai=True, diet="Sans porc")
    third = add_child(app, world["household"], "Zoé")
    enrol_accepted(app, world["household"], third, world["a"])
    day = world["days_a"][TUESDAY]
    book(app, world["household"], first, day)
    book(app, world["household"], second, day)
    book(app, world["household"], third, day, waiting=True)
    response = login(app, world["agent"]).get(day_url(world))
    assert response.status_code == 200
    html = response.text
    assert "Mardi 3 septembre 2030" in html
    assert "2 / 2" in html
    assert "CE1" in html and "Allergie" in html and "Arachides" in html and "PAI" in html
    assert "Sans porc" in html
    waiting = html.split('id="attente"')[1]
    assert "Zoé" in waiting
    assert audit_actions(app, f"activity_day:{day}") == ["reservation_day.viewed"]


def test_day_of_another_service_is_404_for_an_agent(app, world, admin):
    other = login(app, world["other"])
    for suffix in ("", ".pdf", ".csv"):
        assert other.get(day_url(world) + suffix).status_code == 404
    assert "access.denied" in audit_actions(app, f"activity_day:{world['days_a'][TUESDAY]}")
    assert other.get("/admin/reservations/jour/999999").status_code == 404
    assert login(app, admin).get(day_url(world)).status_code == 200


def test_attendance_set_and_changed_with_history(app, world, clock):
    clock(ON_TUESDAY)
    child = world["children"][0]
    day = world["days_a"][TUESDAY]
    book(app, world["household"], child, day)
    booking_id = booking_of(app, child, day).id
    client = login(app, world["agent"])
    url = f"{day_url(world)}/presence/{booking_id}"
    assert 'aria-pressed="false"' in client.get(day_url(world)).text

    response = post(client, url, {"presence": "present"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{day_url(world)}#ligne-{booking_id}")
    assert booking_of(app, child, day).attendance == "present"

    response = post(client, url, {"presence": "absent"}, headers=HX)
    assert response.status_code == 200
    html = response.text
    assert "<html" not in html and f'id="ligne-{booking_id}"' in html
    assert 'data-hx-swap-oob="innerHTML"' in html and "Enfant0 Test : pointage : absence." in html
    assert booking_of(app, child, day).attendance == "absent"

    post(client, url, {"presence": "excused"})
    post(client, url, {"presence": ""})
    assert booking_of(app, child, day).attendance is None
    assert changes_of(app, booking_id)[1:] == [
        ("booked", "booked:present", "staff"),
        ("booked:present", "booked:absent", "staff"),
        ("booked:absent", "booked:excused", "staff"),
        ("booked:excused", "booked", "staff"),
    ]
    assert audit_actions(app, f"booking:{booking_id}").count("booking.attendance") == 4


def test_bad_attendance_value_saves_nothing(app, world, clock):
    clock(ON_TUESDAY)
    child = world["children"][0]
    day = world["days_a"][TUESDAY]
    book(app, world["household"], child, day)
    booking_id = booking_of(app, child, day).id
    client = login(app, world["agent"])
    url = f"{day_url(world)}/presence/{booking_id}"
    for value in ("late", "PRESENT", "present "):
        response = post(client, url, {"presence": value})
        assert response.status_code == 422
        assert "Choix de présence inconnu" in response.text
    response = post(client, url, {}, headers=HX)
    assert response.status_code == 422 and f'id="ligne-{booking_id}"' in response.text
    assert booking_of(app, child, day).attendance is None
    assert len(changes_of(app, booking_id)) == 1  # the booking itself


def test_attendance_waits_for_the_day_and_checks_ids(app, world, clock):
    child = world["children"][0]
    day = world["days_a"][TUESDAY]
    book(app, world["household"], child, day)
    booking_id = booking_of(app, child, day).id
    client = login(app, world["agent"])
    # The real clock (2026) is before the day: no pointing yet.
    response = post(client, f"{day_url(world)}/presence/{booking_id}", {"presence": "present"})
    assert response.status_code == 422 and "le jour même" in response.text
    clock(ON_TUESDAY)
    # The booking of another day, a forged id, another service's day: 404.
    monday_url = f"/admin/reservations/jour/{world['days_a'][MONDAY]}"
    assert (
        post(client, f"{monday_url}/presence/{booking_id}", {"presence": "present"}).status_code
        == 404
    )
    assert (
        post(client, f"{day_url(world)}/presence/999999", {"presence": "present"}).status_code
        == 404
    )
    other = login(app, world["other"])
    url = f"{day_url(world)}/presence/{booking_id}"
    assert post(other, url, {"presence": "present"}).status_code == 404
    assert booking_of(app, child, day).attendance is None


def test_walk_in_is_present_and_takes_no_place(app, world, clock):
    clock(ON_TUESDAY)
    first, second = world["children"]
    day = world["days_a"][TUESDAY]
    book(app, world["household"], first, day)
    client = login(app, world["agent"])
    html = client.get(day_url(world)).text
    walk_in_form = html.split('id="sans-resa"')[1].split("</section>")[0]
    assert f'value="{world["enrolments"][1]}"' in walk_in_form
    assert f'value="{world["enrolments"][0]}"' not in walk_in_form  # already booked
    response = post(
        client, f"{day_url(world)}/sans-reservation", {"inscription": world["enrolments"][1]}
    )
    assert response.status_code == 303
    booking = booking_of(app, second, day)
    assert (booking.status, booking.attendance, booking.household_id) == (
        "walk_in",
        "present",
        world["household"],
    )
    assert day_row(app, day)[1] == 1
    assert changes_of(app, booking.id) == [(None, "walk_in:present", "staff")]
    assert audit_actions(app, f"booking:{booking.id}") == ["booking.walk_in"]
    # Twice: refused, nothing more.
    response = post(
        client, f"{day_url(world)}/sans-reservation", {"inscription": world["enrolments"][1]}
    )
    assert response.status_code == 422


def test_walk_in_refuses_forged_enrolments(app, world, clock):
    clock(ON_TUESDAY)
    day = world["days_a"][TUESDAY]
    # A child enrolled in service B only: not a choice on A's day.
    outsider = add_child(app, world["household"], "Léon")
    enrolment_b = enrol_accepted(app, world["household"], outsider, world["b"])
    client = login(app, world["agent"])
    for value in ("", "abc", str(enrolment_b), "999999"):
        response = post(client, f"{day_url(world)}/sans-reservation", {"inscription": value})
        assert response.status_code == 422
        assert "Choisissez un enfant de la liste" in response.text
    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(Booking).where(Booking.activity_day_id == day)
        )
    assert count == 0


# --- Exports ----------------------------------------------------------------------------------


def test_pdf_is_an_attachment_and_handles_french_text(app, world):
    first, second = world["children"]
    update_child(
        app,
        first,
        first_name="Zoé",
        last_name="Lefèvre",
        class_level="CM2",
        allergies="Œufs – arachides “sévère”",
        pai=True,
    )
    day = world["days_a"][TUESDAY]
    book(app, world["household"], first, day)
    response = login(app, world["agent"]).get(day_url(world) + ".pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "presences-activite-" in disposition and '-2030-09-03.pdf"' in disposition
    assert response.headers["Cache-Control"] == "no-store"
    assert audit_actions(app, f"activity_day:{day}") == ["reservation_day.pdf"]


def test_csv_content_and_formula_injection(app, world):
    first, second = world["children"]
    update_child(
        app,
        first,
        last_name='=HYPERLINK("http://x")',
        first_name="Zoé",
        class_level="CE2",
        allergies="+33 arachides",
        pai=True,
        diet="@sans porc",
    )
    update_child(app, second, last_name="Martin", first_name="-Léo")
    day = world["days_a"][TUESDAY]
    book(app, world["household"], first, day)
    book(app, world["household"], second, day)
    with app.app_context():
        booking = db.session.scalar(select(Booking).where(Booking.child_id == second))
        booking.attendance = "excused"
        db.session.commit()
    response = login(app, world["agent"]).get(day_url(world) + ".csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == [
        "Nom",
        "Prénom",
        "Classe",
        "Allergies",
        "PAI",
        "Régime",
        "Statut",
        "Présence",
    ]
    by_first = {row[1]: row for row in rows[1:]}
    assert by_first["Zoé"] == [
        '\'=HYPERLINK("http://x")',
        "Zoé",
        "CE2",
        "'+33 arachides",
        "Oui",
        "'@sans porc",
        "Réservé",
        "",
    ]
    assert by_first["'-Léo"][0] == "Martin"
    assert by_first["'-Léo"][6:] == ["Réservé", "Absent justifié"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


# --- Booking on behalf of a family ------------------------------------------------------------


def household_url(world, **params):
    return f"/admin/familles/{world['household']}/reservations"


def change_url(world, child, day):
    return f"/admin/familles/{world['household']}/reservations/{child}/{day}"


def test_household_page_shows_the_childs_month(app, world):
    child = world["children"][1]
    book(app, world["household"], child, world["days_a"][TUESDAY])
    client = login(app, world["agent"])
    response = client.get(household_url(world), query_string={"enfant": child, "mois": "2030-09"})
    assert response.status_code == 200
    html = response.text
    assert "Septembre 2030" in html
    assert f'id="cellule-{world["days_a"][TUESDAY]}"' in html
    assert "Annuler" in html and "Réserver" in html
    assert "reste facturée" in html
    # The household's page links here.
    assert household_url(world) in client.get(f"/admin/familles/{world['household']}").text


def test_staff_books_after_the_cutoff(app, world, clock):
    clock(ON_TUESDAY)  # after Tuesday's cut-off (72 h before 7:30)
    child = world["children"][0]
    day = world["days_a"][TUESDAY]
    client = login(app, world["agent"])
    response = post(client, change_url(world, child, day), {"action": "book"})
    assert response.status_code == 303
    assert f"enfant={child}" in response.headers["Location"]
    assert "mois=2030-09" in response.headers["Location"]
    assert booking_of(app, child, day).status == "booked"
    assert day_row(app, day)[1] == 1
    assert audit_actions(app, "booking:") == ["booking.staff_booked"]
    assert changes_of(app, booking_of(app, child, day).id) == [(None, "booked", "staff")]


def test_staff_late_cancel_is_billed_and_frees_the_place(app, world, clock):
    child = world["children"][0]
    day = world["days_a"][TUESDAY]
    book(app, world["household"], child, day)
    clock(ON_TUESDAY)
    client = login(app, world["agent"])
    response = post(client, change_url(world, child, day), {"action": "cancel"}, headers=HX)
    assert response.status_code == 200
    html = response.text
    assert "<html" not in html and "rsv-slot" in html
    assert "reste facturé" in html
    booking = booking_of(app, child, day)
    assert (booking.status, booking.late) == ("cancelled", True)
    assert day_row(app, day)[1] == 0
    actions = audit_actions(app, f"booking:{booking.id}")
    assert actions == ["booking.staff_cancelled"]


def test_cancel_before_the_cutoff_promotes_the_waiting_child(app, world, clock, outbox):
    clock(EARLY)
    first, second = world["children"]
    day = world["days_a"][TUESDAY]
    third = add_child(app, world["household"], "Zoé")
    enrol_accepted(app, world["household"], third, world["a"])
    book(app, world["household"], first, day)
    book(app, world["household"], second, day)
    client = login(app, world["agent"])
    response = post(client, change_url(world, third, day), {"action": "book"}, headers=HX)
    assert response.status_code == 422 and "plus de place" in response.text
    response = post(client, change_url(world, third, day), {"action": "wait"})
    assert booking_of(app, third, day).status == "waiting"
    response = post(client, change_url(world, first, day), {"action": "cancel"})
    assert response.status_code == 303
    assert booking_of(app, first, day).late is False
    assert booking_of(app, third, day).status == "booked"
    assert day_row(app, day)[1] == 2


def test_on_behalf_scoping_is_404(app, world):
    child = world["children"][0]
    day_a = world["days_a"][TUESDAY]
    agent = login(app, world["agent"])
    # A child of another household, in the URL or the query string.
    stranger = make_user(app, role="parent", children=1)
    strange_child = children_of(app, stranger.household_id)[0]
    assert (
        agent.get(household_url(world), query_string={"enfant": strange_child}).status_code == 404
    )
    assert (
        post(agent, change_url(world, strange_child, day_a), {"action": "book"}).status_code == 404
    )
    # A household the agent's services have nothing to do with.
    assert agent.get(f"/admin/familles/{stranger.household_id}/reservations").status_code == 404
    assert agent.get("/admin/familles/999999/reservations").status_code == 404
    # A day of a service the agent does not serve (the household is visible).
    day_b = world["days_b"][TUESDAY]
    assert post(agent, change_url(world, child, day_b), {"action": "book"}).status_code == 404
    # The agent of B does not see this household at all.
    other = login(app, world["other"])
    assert other.get(household_url(world)).status_code == 404
    assert post(other, change_url(world, child, day_a), {"action": "book"}).status_code == 404
    assert booking_of(app, child, day_a) is None
    assert booking_of(app, child, day_b) is None


def test_on_behalf_unknown_action_changes_nothing(app, world):
    child = world["children"][0]
    day = world["days_a"][TUESDAY]
    client = login(app, world["agent"])
    response = post(client, change_url(world, child, day), {"action": "delete"}, headers=HX)
    assert response.status_code == 422 and "Action inconnue" in response.text
    assert post(client, change_url(world, child, day), {"action": ""}).status_code == 303
    assert booking_of(app, child, day) is None


# --- Access -----------------------------------------------------------------------------------


def all_urls(world):
    day = world["days_a"][TUESDAY]
    child = world["children"][0]
    return [
        ("GET", "/admin/reservations"),
        ("GET", f"/admin/reservations/jour/{day}"),
        ("GET", f"/admin/reservations/jour/{day}.pdf"),
        ("GET", f"/admin/reservations/jour/{day}.csv"),
        ("POST", f"/admin/reservations/jour/{day}/presence/1"),
        ("POST", f"/admin/reservations/jour/{day}/sans-reservation"),
        ("GET", f"/admin/familles/{world['household']}/reservations"),
        ("POST", change_url(world, child, day)),
    ]


def test_parent_gets_403_and_anonymous_the_login_page(app, world):
    parent = login(app, world["family"])
    anonymous = app.test_client()
    for method, url in all_urls(world):
        if method == "GET":
            assert parent.get(url).status_code == 403, url
            response = anonymous.get(url)
        else:
            assert post(parent, url, {"action": "book"}).status_code == 403, url
            response = post(anonymous, url, {"action": "book"})
        assert response.status_code in (302, 303), url
        assert "/connexion" in response.headers["Location"], url
    assert booking_of(app, world["children"][0], world["days_a"][TUESDAY]) is None


def test_post_without_csrf_is_refused(app, world, clock):
    clock(ON_TUESDAY)
    client = login(app, world["agent"])
    for method, url in all_urls(world):
        if method == "POST":
            response = client.post(url, data={"action": "book", "presence": "present"})
            assert response.status_code == 400, url
    assert booking_of(app, world["children"][0], world["days_a"][TUESDAY]) is None


def test_a_long_day_list_is_taken_class_by_class(app, client, auth, admin):
    offer = make_bookable_offer(app, activities=1)
    day_id = day_ids(app, offer.activity_ids[0])[0][0]
    for level in ("CP", "CE1", "CE1"):
        family = make_user(app, children=1)
        child = children_of(app, family.household_id)[0]
        update_child(app, child, class_level=level)
        enrol_accepted(app, family.household_id, child, offer)
        with app.app_context():
            ops.book_days(family.household_id, child, [day_id], actor=None, now=EARLY)
            db.session.commit()
    auth.login(admin)
    page = client.get(f"/admin/reservations/jour/{day_id}").get_data(as_text=True)
    assert page.count('class="rsv-child"') == 3
    assert '<option value="CP">CP (1)</option>' in page and "CE1 (2)" in page
    page = client.get(f"/admin/reservations/jour/{day_id}?classe=CE1").get_data(as_text=True)
    assert page.count('class="rsv-child"') == 2 and "2 en CE1" in page
    page = client.get(f"/admin/reservations/jour/{day_id}?classe=nope").get_data(as_text=True)
    assert page.count('class="rsv-child"') == 3
