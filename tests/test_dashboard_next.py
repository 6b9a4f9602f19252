"""The dashboard's first screen (issue 16): next booked days, what is due, what waits for
the family, documents to renew, and a friendly empty state, in a constant number of queries."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update

from citoyens.billing.models import Invoice
from citoyens.core import views as core_views
from citoyens.extensions import db
from citoyens.reservations.operations import book_days
from tests.billing_factories import make_invoice, make_mandate
from tests.conftest import counted_queries, post
from tests.documents_factories import make_document, make_type
from tests.factories import make_user
from tests.requests_factories import make_request, make_service
from tests.reservations_factories import (
    EARLY,
    add_child,
    children_of,
    day_ids,
    enrol_accepted,
    make_bookable_offer,
    text_of,
)

TODAY = date(2030, 12, 1)  # a Sunday
NOW = datetime(2030, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    monkeypatch.setattr(core_views, "today_in_paris", lambda: TODAY)
    monkeypatch.setattr(core_views, "now_utc", lambda: NOW)


def dashboard(client) -> str:
    response = client.get("/tableau-de-bord")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def card(html: str, heading_id: str) -> str:
    """The text of one card (the <section> labelled by `heading_id`)."""
    match = re.search(
        rf'<section[^>]*aria-labelledby="{heading_id}".*?</section>', html, flags=re.S
    )
    assert match, f"no card {heading_id}"
    return text_of_html(match.group(0))


def text_of_html(fragment: str) -> str:
    class Fake:
        def get_data(self, as_text=True):
            return fragment

    return text_of(Fake())


def card_order(html: str) -> list[str]:
    return re.findall(r'aria-labelledby="(nx-[a-z]+)"', html)


def book(app, household_id, child_id, activity_id, first, count=1):
    ids = [d for d, _ in day_ids(app, activity_id, first)][:count]
    with app.app_context():
        outcome = book_days(household_id, child_id, ids, actor=None, now=EARLY)
        assert len(outcome.booked) == count
        db.session.commit()
    return ids


# --- Next booked days -------------------------------------------------------------------------


def test_next_bookings_show_child_activity_french_day_and_cut_off(app, client, auth, parent):
    offer = make_bookable_offer(app, activities=1)  # Mon, Tue, Thu, Fri at 7:30, 72 h
    first, second = children_of(app, parent.household_id)
    for child in (first, second):
        enrol_accepted(app, parent.household_id, child, offer)
    # Monday 2 (cut-off passed: Friday 29 November 7:30) and Thursday 5 December.
    book(app, parent.household_id, first, offer.activity_ids[0], date(2030, 12, 2))
    book(app, parent.household_id, second, offer.activity_ids[0], date(2030, 12, 5))
    auth.login(parent)
    html = dashboard(client)
    text = card(html, "nx-reservations")
    assert "lundi 2 décembre" in text and "jeudi 5 décembre" in text
    assert "Enfant0 · Activité" in text and "Enfant1 · Activité" in text
    assert "non modifiable" in text
    # 72 hours before Thursday 5 December 7:30 (Paris).
    assert "modifiable jusqu'au lun. 2 déc. à 7h30" in text
    assert f"/reservations/enfant/{first}?semaine=2030-12-02" in html
    assert f"/reservations/enfant/{second}?semaine=2030-12-05" in html
    assert '<time datetime="2030-12-02T07:30:00+01:00">lun. 2 déc. à 7h30</time>' in html
    assert '<time datetime="2030-12-02">lundi 2 décembre</time>' in html


def test_next_bookings_stop_at_five_and_skip_cancelled_and_past_days(app, client, auth, parent):
    offer = make_bookable_offer(app, activities=1)
    child = children_of(app, parent.household_id)[0]
    enrol_accepted(app, parent.household_id, child, offer)
    ids = book(app, parent.household_id, child, offer.activity_ids[0], date(2030, 11, 25), 12)
    with app.app_context():
        from citoyens.reservations.models import Booking

        # Thursday 5 December cancelled.
        db.session.execute(
            update(Booking)
            .where(Booking.activity_day_id == ids[6], Booking.child_id == child)
            .values(status="cancelled")
        )
        db.session.commit()
    auth.login(parent)
    text = card(dashboard(client), "nx-reservations")
    assert "novembre" not in text  # 25-29 November are past
    assert "jeudi 5 décembre" not in text
    assert text.count("Enfant0 · Activité") == 5
    for day in ("lundi 2", "mardi 3", "vendredi 6", "lundi 9", "mardi 10"):
        assert f"{day} décembre" in text


# --- Money ------------------------------------------------------------------------------------


def test_amount_due_with_a_pay_button_per_invoice_late_first(app, client, auth, parent):
    late = make_invoice(
        app, parent.household_id, month=date(2030, 9, 1), due_on=date(2030, 11, 15)
    )  # 14,00 €
    due = make_invoice(
        app,
        parent.household_id,
        month=date(2030, 10, 1),
        due_on=date(2030, 12, 20),
        lines=[("Accueil du soir", 250, 10)],
    )
    make_invoice(app, parent.household_id, month=date(2030, 8, 1), status="paid")
    auth.login(parent)
    html = dashboard(client)
    text = card(html, "nx-argent")
    assert "À payer : 39,00 €" in text
    assert "Dont 14,00 € en retard" in text
    assert "Facture Septembre 2030 En retard Payer 14,00 €" in text
    assert "Facture Octobre 2030 Avant le 20/12/2030 Payer 25,00 €" in text
    assert f'action="/factures/{late}/payer"' in html and f'action="/factures/{due}/payer"' in html
    assert html.index(f"/factures/{late}/payer") < html.index(f"/factures/{due}/payer")
    assert "Payer 14,00 € : facture de septembre 2030" in text
    # Late money is the most urgent card.
    assert card_order(html)[0] == "nx-argent"


def test_a_payment_lowers_what_is_due_and_a_paid_invoice_shows_nothing(app, client, auth, parent):
    from citoyens.billing.models import Payment

    invoice = make_invoice(app, parent.household_id, due_on=date(2030, 12, 20))
    with app.app_context():
        db.session.add(
            Payment(
                invoice_id=invoice,
                household_id=parent.household_id,
                amount_cents=1000,
                method="card",
                transaction_id="test-dashboard-1",
                paid_at=datetime(2030, 11, 20, tzinfo=UTC),
            )
        )
        db.session.commit()
    auth.login(parent)
    assert "À payer : 4,00 €" in card(dashboard(client), "nx-argent")


def test_direct_debit_family_sees_the_next_debit_not_a_pay_button(app, client, auth, parent):
    mandate = make_mandate(app, parent.household_id)
    invoice = make_invoice(
        app, parent.household_id, month=date(2030, 11, 1), status="direct_debit", mandate_id=mandate
    )
    with app.app_context():
        db.session.execute(
            update(Invoice).where(Invoice.id == invoice).values(debit_on=date(2030, 12, 10))
        )
        db.session.commit()
    auth.login(parent)
    html = dashboard(client)
    text = card(html, "nx-argent")
    assert "Prochain prélèvement" in text
    assert "14,00 € le mardi 10 décembre 2030" in text and "rien à faire" in text
    assert "/payer" not in html
    assert f"/factures/{invoice}" in html


# --- Requests and documents -------------------------------------------------------------------


def test_requests_waiting_for_the_family(app, client, auth, parent, staff):
    service = make_service(app, name="Accueil périscolaire")
    waiting = make_request(
        app,
        parent.household_id,
        title="Quotient familial : 720 €",
        service_id=service,
        by=parent.id,
        staff_id=staff.id,
        messages=("Pouvez-vous envoyer l'attestation de cette année ?",),
    )
    answered = make_request(
        app,
        parent.household_id,
        title="Demande déjà répondue",
        by=parent.id,
        staff_id=staff.id,
        messages=("Une question ?",),
    )
    make_request(
        app, parent.household_id, title="Note interne seulement", staff_id=staff.id, notes=("x",)
    )
    closed = make_request(
        app,
        parent.household_id,
        title="Demande close",
        staff_id=staff.id,
        messages=("Une question ?",),
        status="accepted",
    )
    auth.login(parent)
    client_reply(client, answered)
    html = dashboard(client)
    text = card(html, "nx-demandes")
    assert "À vous de répondre" in text and "(1)" not in text
    assert "Quotient familial : 720 €" in text
    assert "Accueil périscolaire vous a écrit le" in text
    assert f'href="/mes-demandes/{waiting}"' in html
    for other in ("Demande déjà répondue", "Note interne seulement", "Demande close"):
        assert other not in text
    assert closed


def client_reply(client, request_id):
    response = post(client, f"/mes-demandes/{request_id}/message", {"body": "Voici."})
    assert response.status_code == 303


def test_documents_expired_refused_and_expiring_within_30_days(app, client, auth, parent):
    household = parent.household_id
    child = children_of(app, household)[0]
    home = make_type(app, scope="household", label="Justificatif de domicile", validity_months=3)
    insurance = make_type(app, label="Assurance", until_school_year_end=True)
    vaccines = make_type(app, label="Vaccinations")
    later = make_type(app, scope="household", label="Attestation lointaine", validity_months=12)
    make_document(
        app,
        household_id=household,
        type_id=home,
        status="accepted",
        valid_until=TODAY + timedelta(10),
    )
    make_document(
        app,
        household_id=household,
        type_id=insurance,
        person_id=child,
        status="accepted",
        valid_until=TODAY - timedelta(3),
    )
    make_document(app, household_id=household, type_id=vaccines, person_id=child, status="refused")
    make_document(
        app,
        household_id=household,
        type_id=later,
        status="accepted",
        valid_until=TODAY + timedelta(60),
    )
    auth.login(parent)
    html = dashboard(client)
    text = card(html, "nx-documents")
    assert "Assurance d'Enfant0 Expiré depuis le 28/11/2030" in text
    assert "Vaccinations d'Enfant0 Refusé : à envoyer de nouveau" in text
    assert "Justificatif de domicile Expire le 11/12/2030" in text
    assert "Attestation lointaine" not in text
    assert text.index("Assurance") < text.index("Justificatif")


def test_cards_ordered_by_urgency(app, client, auth, parent, staff):
    offer = make_bookable_offer(app, activities=1)
    child = children_of(app, parent.household_id)[0]
    enrol_accepted(app, parent.household_id, child, offer)
    book(app, parent.household_id, child, offer.activity_ids[0], date(2030, 12, 5))
    make_invoice(app, parent.household_id, due_on=date(2030, 12, 20))  # due, not late
    home = make_type(app, scope="household", validity_months=3)
    make_document(
        app,
        household_id=parent.household_id,
        type_id=home,
        status="accepted",
        valid_until=TODAY + timedelta(5),
    )
    make_request(app, parent.household_id, by=parent.id, staff_id=staff.id, messages=("?",))
    auth.login(parent)
    assert card_order(dashboard(client)) == [
        "nx-demandes",
        "nx-argent",
        "nx-reservations",
        "nx-documents",
    ]


# --- Empty state and privacy ------------------------------------------------------------------


def test_empty_state_offers_the_next_useful_action(app, client, auth, parent):
    auth.login(parent)
    html = dashboard(client)
    assert "Tout est à jour" in html
    assert "Inscrire un enfant à un service" in html  # children, no enrolment
    offer = make_bookable_offer(app, activities=1)
    enrol_accepted(app, parent.household_id, children_of(app, parent.household_id)[0], offer)
    html = dashboard(client)
    assert "Tout est à jour" in html and "Réserver des journées" in html
    assert 'aria-labelledby="nx-reservations"' not in html


def test_a_family_without_children_is_asked_to_add_them(app, client, auth):
    lone = make_user(app, children=0)
    auth.login(lone)
    html = dashboard(client)
    assert "Tout est à jour" in html and "Ajouter mes enfants" in html


def test_another_households_data_is_never_shown(app, client, auth, parent, staff):
    other = make_user(app, children=1)
    other_child = children_of(app, other.household_id)[0]
    offer = make_bookable_offer(app, activities=1)
    enrol_accepted(app, other.household_id, other_child, offer)
    book(app, other.household_id, other_child, offer.activity_ids[0], date(2030, 12, 5))
    make_invoice(app, other.household_id, due_on=date(2030, 11, 1))
    make_request(
        app,
        other.household_id,
        title="Demande de l'autre foyer",
        staff_id=staff.id,
        messages=("?",),
    )
    home = make_type(app, scope="household", label="Domicile de l'autre", validity_months=3)
    make_document(
        app,
        household_id=other.household_id,
        type_id=home,
        status="accepted",
        valid_until=TODAY + timedelta(5),
    )
    auth.login(parent)
    html = dashboard(client)
    assert card_order(html) == ["nx-rien"]
    for leak in (
        "Enfant0 · Activité",
        "14,00 €",
        "Demande de l'autre foyer",
        "Domicile de l'autre",
    ):
        assert leak not in html


# --- Queries ----------------------------------------------------------------------------------


def test_dashboard_queries_do_not_grow_with_children_invoices_and_requests(
    app, client, auth, staff
):
    offer = make_bookable_offer(app, activities=2)

    def family(children: int, invoices: int, requests: int):
        account = make_user(app, children=1)
        for n in range(children - 1):
            add_child(app, account.household_id, f"Enfant{n + 1}")
        for child in children_of(app, account.household_id):
            enrol_accepted(app, account.household_id, child, offer)
            for activity in offer.activity_ids:
                book(app, account.household_id, child, activity, date(2030, 12, 2), 3)
        for n in range(invoices):
            make_invoice(
                app, account.household_id, month=date(2030, 1 + n, 1), due_on=date(2030, 11, 1)
            )
        for _n in range(requests):
            make_request(
                app, account.household_id, by=account.id, staff_id=staff.id, messages=("?",)
            )
        home = make_type(app, scope="household", validity_months=3)
        make_document(
            app,
            household_id=account.household_id,
            type_id=home,
            status="accepted",
            valid_until=TODAY + timedelta(5),
        )
        return account

    def count(account) -> int:
        auth.login(account)
        dashboard(client)  # warm-up: session, user
        with counted_queries(app) as statements:
            html = dashboard(client)
        assert card_order(html)[:2] == ["nx-argent", "nx-demandes"]
        auth.logout()
        return len(statements)

    small, big = family(1, 1, 1), family(4, 6, 3)
    assert count(small) == count(big)


# --- Demo -------------------------------------------------------------------------------------


def test_the_demo_parent_sees_every_card_and_the_debit_family_its_debit(
    app, client, auth, monkeypatch
):
    from citoyens.demo import PARENT, seed
    from citoyens.demo_history import DEBIT_FAMILY
    from citoyens.forms import today_in_paris
    from citoyens.reservations.rules import now_utc

    # The demo is built from the real clock.
    monkeypatch.setattr(core_views, "today_in_paris", today_in_paris)
    monkeypatch.setattr(core_views, "now_utc", now_utc)
    with app.test_request_context():
        seed()
        db.session.commit()
        assert seed() == 0
        db.session.commit()
    auth.login(email=PARENT[0], password=PARENT[1])
    html = dashboard(client)
    assert set(card_order(html)) == {"nx-argent", "nx-demandes", "nx-documents", "nx-reservations"}
    assert card_order(html)[0] == "nx-argent"  # an invoice is overdue
    assert "Payer" in card(html, "nx-argent") and "/payer" in html
    assert "Quotient familial" in card(html, "nx-demandes")
    assert "Justificatif de domicile Expire le" in card(html, "nx-documents")
    assert "modifiable jusqu'au" in card(html, "nx-reservations")
    auth.logout()
    auth.login(email=DEBIT_FAMILY[0], password=DEBIT_FAMILY[1])
    html = dashboard(client)
    assert "Prochain prélèvement" in card(html, "nx-argent") and "/payer" not in html
