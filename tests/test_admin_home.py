"""The staff home (/admin/): queue counts, today's activities, capacity alerts of the coming
week and overdue invoices, for an agent's services or, for administrators, every service.

Dates are those of school year 2030-2031 (tests/reservations_factories.py); the clock of
the staff pages (`citoyens.reservations.staff.now`) is set to Tuesday 3 September 2030.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from citoyens.extensions import db
from citoyens.reservations import operations as ops
from citoyens.reservations import staff as staff_rules
from citoyens.reservations.models import Booking
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import counted_queries
from tests.documents_factories import make_document, make_type
from tests.factories import make_user
from tests.requests_factories import assign_staff, make_request
from tests.reservations_factories import (
    EARLY,
    add_child,
    children_of,
    day_ids,
    enrol_accepted,
    make_bookable_offer,
    set_capacity,
)
from tests.test_admin_reservations import login

TUESDAY = date(2030, 9, 3)
THURSDAY = date(2030, 9, 5)
NEXT_TUESDAY = date(2030, 9, 10)
ON_TUESDAY = datetime(2030, 9, 3, 8, 0, tzinfo=UTC)  # 10:00 in Paris


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    monkeypatch.setattr(staff_rules, "now", lambda: ON_TUESDAY)


def book(app, household_id, child_id, day_id, *, waiting=False):
    with app.app_context():
        ops.book_days(household_id, child_id, [day_id], actor=None, waiting_list=waiting, now=EARLY)
        db.session.commit()


def point_present(app, child_id, day_id):
    with app.app_context():
        booking = db.session.scalar(
            db.select(Booking).where(
                Booking.child_id == child_id, Booking.activity_day_id == day_id
            )
        )
        booking.attendance = "present"
        db.session.commit()


def counts(response) -> dict[str, int]:
    return {
        name: int(value)
        for name, value in re.findall(r'data-count="(\w+)">(\d+)<', response.get_data(as_text=True))
    }


def section(response, element_id: str) -> str:
    """The HTML of the element with this id (up to its closing tag), or ""."""
    text = response.get_data(as_text=True)
    match = re.search(rf'id="{element_id}".*?</(table|ul)>', text, re.S)
    return match.group(0) if match else ""


@pytest.fixture
def world(app):
    """Service A (2 places a day; agent A) and service B (5 places; agent B), each with a
    family, bookings, an open request, a pending enrolment, a document to check and an
    overdue invoice."""
    a = make_bookable_offer(app, activities=1, capacity=2, name="Accueil périscolaire")
    b = make_bookable_offer(app, activities=1, capacity=5, name="Restauration scolaire")
    family_a = make_user(app, role="parent", children=2)
    family_b = make_user(app, role="parent", children=1)
    kids_a = children_of(app, family_a.household_id)
    third = add_child(app, family_a.household_id, "Zoé")
    kid_b = children_of(app, family_b.household_id)[0]
    for kid in (*kids_a, third):
        enrol_accepted(app, family_a.household_id, kid, a)
    enrol_accepted(app, family_b.household_id, kid_b, b)
    days_a = {d: i for i, d in day_ids(app, a.activity_ids[0], TUESDAY, NEXT_TUESDAY)}
    days_b = {d: i for i, d in day_ids(app, b.activity_ids[0], TUESDAY, NEXT_TUESDAY)}
    # Today: A full (2 / 2, one present), B 1 / 5 (present).
    for kid in kids_a:
        book(app, family_a.household_id, kid, days_a[TUESDAY])
    point_present(app, kids_a[0], days_a[TUESDAY])
    book(app, family_b.household_id, kid_b, days_b[TUESDAY])
    point_present(app, kid_b, days_b[TUESDAY])
    # Thursday: A full with a child waiting. Next Tuesday (outside the 7 days): A full.
    for kid in kids_a:
        book(app, family_a.household_id, kid, days_a[THURSDAY])
        book(app, family_a.household_id, kid, days_a[NEXT_TUESDAY])
    book(app, family_a.household_id, third, days_a[THURSDAY], waiting=True)
    # Queues: one open request, one pending enrolment and one document in each service.
    make_request(app, family_a.household_id, kind="place_request", service_id=a.service_id)
    make_request(app, family_b.household_id, kind="place_request", service_id=b.service_id)
    other_b = add_child(app, family_b.household_id, "Paul")
    enrol_accepted(app, family_b.household_id, other_b, b, status="pending")
    fourth = add_child(app, family_a.household_id, "Léon")
    enrol_accepted(app, family_a.household_id, fourth, a, status="pending")
    doc_type = make_type(app, scope="household")
    make_document(app, household_id=family_a.household_id, type_id=doc_type)
    make_document(app, household_id=family_b.household_id, type_id=doc_type)
    # Invoices: overdue in A (2 lines of 3,50 € × 4) and in B; not overdue ones.
    a_id, b_id = family_a.household_id, family_b.household_id
    make_invoice(app, a_id, month=date(2030, 7, 1), due_on=date(2030, 8, 15))
    make_invoice(app, b_id, month=date(2030, 8, 1), due_on=date(2030, 9, 1))
    make_invoice(app, b_id, month=date(2030, 9, 1), due_on=date(2030, 10, 1))  # not yet due
    make_invoice(app, a_id, month=date(2030, 9, 1), due_on=TUESDAY)  # due today: not late
    make_invoice(app, b_id, month=date(2030, 6, 1), due_on=date(2030, 7, 1), status="paid")
    mandate = make_mandate(app, b_id, first_month=date(2030, 5, 1))
    make_invoice(
        app,
        b_id,
        month=date(2030, 5, 1),
        due_on=date(2030, 6, 1),
        status="direct_debit",
        mandate_id=mandate,
    )
    agent_a = make_user(app, role="staff")
    assign_staff(app, agent_a.id, a.service_id)
    agent_b = make_user(app, role="staff")
    assign_staff(app, agent_b.id, b.service_id)
    return {
        "a": a,
        "b": b,
        "agent_a": agent_a,
        "agent_b": agent_b,
        "days_a": days_a,
        "days_b": days_b,
    }


def test_admin_sees_every_service(app, world, admin):
    response = login(app, admin).get("/admin/")
    assert response.status_code == 200
    assert counts(response) == {"requests": 2, "enrolments": 2, "documents": 2, "overdue": 2}
    assert "28,00" in response.get_data(as_text=True)  # 2 × 14,00 €
    today = section(response, "activites-du-jour")
    assert today.count("<tr>") == 3  # header + A + B
    assert "2 / 2" in today and "1 / 5" in today
    alerts = section(response, "alertes-places")
    assert alerts.count("<li>") == 2  # A today (full) and Thursday (full, one waiting)
    assert "1 en liste d&#39;attente" in alerts or "1 en liste d'attente" in alerts
    assert "10 septembre" not in alerts  # beyond the coming week
    assert "Tous les services" in response.get_data(as_text=True)


def test_agent_sees_their_services_only(app, world):
    response = login(app, world["agent_a"]).get("/admin/")
    assert response.status_code == 200
    found = counts(response)
    assert found["requests"] == 1 and found["enrolments"] == 1
    assert found["documents"] == 1 and found["overdue"] == 1
    today = section(response, "activites-du-jour")
    assert today.count("<tr>") == 2 and "2 / 2" in today and "1 / 5" not in today
    assert f"/admin/reservations/jour/{world['days_a'][TUESDAY]}" in today
    assert section(response, "alertes-places").count("<li>") == 2
    assert "Tous les services" not in response.get_data(as_text=True)

    response = login(app, world["agent_b"]).get("/admin/")
    found = counts(response)
    assert found == {"requests": 1, "enrolments": 1, "documents": 1, "overdue": 1}
    assert section(response, "alertes-places") == ""  # B has places left


def test_admin_filters_on_one_service(app, world, admin):
    response = login(app, admin).get(f"/admin/?service={world['b'].service_id}")
    found = counts(response)
    assert found == {"requests": 1, "enrolments": 1, "documents": 1, "overdue": 1}
    assert "2 / 2" not in section(response, "activites-du-jour")
    # An agent's service filter is ignored; nonsense is ignored.
    agent = login(app, world["agent_a"])
    assert counts(agent.get(f"/admin/?service={world['b'].service_id}"))["requests"] == 1
    assert login(app, admin).get("/admin/?service=%C2%B2").status_code == 200


def test_overbooked_after_a_capacity_change_is_an_alert(app, world):
    set_capacity(app, world["days_a"][THURSDAY], 1)
    response = login(app, world["agent_a"]).get("/admin/")
    alerts = section(response, "alertes-places")
    assert "2 / 1" in alerts and "Au-delà de la capacité" in alerts


def test_overdue_links_to_the_filtered_invoices(app, world, admin):
    text = login(app, admin).get("/admin/").get_data(as_text=True)
    assert "/admin/factures?mois=2030-07&amp;statut=overdue" in text
    assert "/admin/factures?mois=2030-08&amp;statut=overdue" in text
    assert "mois=2030-09&amp;statut=overdue" not in text


def test_home_runs_a_fixed_number_of_queries(app, admin):
    numbers = []
    for size in (1, 3):
        offer = make_bookable_offer(app, activities=size, capacity=2)
        family = make_user(app, role="parent", children=0)
        for n in range(size):
            kid = add_child(app, family.household_id, f"Enfant{n}")
            enrol_accepted(app, family.household_id, kid, offer)
            for activity_id in offer.activity_ids:
                for day_id, _ in day_ids(app, activity_id, TUESDAY, THURSDAY):
                    book(app, family.household_id, kid, day_id)
            make_invoice(
                app, family.household_id, month=date(2030, 1 + n, 1), due_on=date(2030, 8, 1)
            )
            make_request(
                app, family.household_id, kind="place_request", service_id=offer.service_id
            )
        for account in (admin, make_user(app, role="staff")):
            if account is not admin:
                assign_staff(app, account.id, offer.service_id)
            client = login(app, account)
            client.get("/admin/")  # warm-up
            with counted_queries(app) as statements:
                response = client.get("/admin/")
            assert response.status_code == 200
            numbers.append((account.role, len(statements)))
    admin_counts = [n for role, n in numbers if role == "admin"]
    agent_counts = [n for role, n in numbers if role != "admin"]
    assert admin_counts[0] == admin_counts[1], numbers
    assert agent_counts[0] == agent_counts[1], numbers
