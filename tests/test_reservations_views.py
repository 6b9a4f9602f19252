"""The family's reservation pages: calendar, toggles, week form, day page, absence, planner."""

from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from citoyens.documents.models import Document
from citoyens.extensions import db
from citoyens.households.models import Household
from citoyens.reservations import rules
from citoyens.reservations.models import Booking, BookingChange
from citoyens.reservations.operations import book_days
from tests.conftest import counted_queries, csrf_token, post
from tests.documents_factories import PDF
from tests.factories import make_user
from tests.reservations_factories import (
    EARLY,
    add_child,
    bookings_of,
    children_of,
    day_ids,
    day_row,
    enrol_accepted,
    make_bookable_offer,
    set_capacity,
)

MONTH = "2030-12"
FIRST_DECEMBER_WEEK = (date(2030, 12, 2), date(2030, 12, 6))


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    """Now is 1 June 2030: every day of 2030-2031 is before its cut-off."""
    clock = {"now": EARLY}
    monkeypatch.setattr(rules, "now_utc", lambda: clock["now"])
    return clock


@pytest.fixture
def family(app, parent):
    """The parent's two children, both enrolled (accepted) in a two-activity service."""
    offer = make_bookable_offer(app, activities=2, capacity=3)
    children = children_of(app, parent.household_id)
    for child_id in children:
        enrol_accepted(app, parent.household_id, child_id, offer)
    return offer, children


def month_url(child_id, mois=MONTH):
    return f"/reservations/enfant/{child_id}?mois={mois}"


def toggle_url(child_id, day_id):
    return f"/reservations/enfant/{child_id}/jour/{day_id}"


def htmx_post(client, path, data=None):
    token = csrf_token(client)
    return client.post(path, data=data or {}, headers={"HX-Request": "true", "X-CSRFToken": token})


def first_day(app, offer, index=0, first=date(2030, 12, 2)):
    return day_ids(app, offer.activity_ids[index], first)[0][0]


# --- Pages ------------------------------------------------------------------------------------


def test_index_links_each_enrolled_child_and_explains_the_others(app, client, auth, parent):
    offer = make_bookable_offer(app, activities=1)
    enrolled, waiting = children_of(app, parent.household_id)
    enrol_accepted(app, parent.household_id, enrolled, offer)
    auth.login(parent)
    html = client.get("/reservations/").get_data(as_text=True)
    assert f"/reservations/enfant/{enrolled}" in html
    assert f"/reservations/enfant/{waiting}" not in html
    assert "pas encore d'inscription acceptée" in html
    assert "Planifier en un clic" in html


def test_month_view_shows_each_state(app, client, auth, parent, family):
    offer, (child, sibling) = family
    auth.login(parent)
    days = day_ids(app, offer.activity_ids[0], date(2030, 12, 2))
    with app.app_context():
        book_days(parent.household_id, child, [days[0][0]], actor=None, now=EARLY)
        # Full: three siblings' places taken by other children.
        for _n in range(3):
            other = make_user(app, children=1)
            other_child = children_of(app, other.household_id)[0]
            enrol_accepted(app, other.household_id, other_child, offer)
            book_days(other.household_id, other_child, [days[1][0]], actor=None, now=EARLY)
        db.session.commit()
    html = client.get(month_url(child)).get_data(as_text=True)
    assert f'class="rv-cell rv-booked" id="cellule-{days[0][0]}"' in html
    assert f'class="rv-cell rv-full" id="cellule-{days[1][0]}"' in html
    assert 'class="rv-cell rv-available"' in html
    # The state's wording is whole in the text (a phone shows its first word).
    text = re.sub(r"<[^>]+>", "", html)
    assert "modifiable jusqu'au" in text
    assert "Complet, liste d'attente possible" in text
    # Christmas holidays: no day between 21 December and 5 January.
    assert "cellule-" in html and "lun. 23 déc." not in html


def test_month_view_of_a_locked_day(app, client, auth, parent, family, frozen_clock):
    offer, (child, _sibling) = family
    day_id, day = day_ids(app, offer.activity_ids[0], date(2030, 12, 2))[0]
    with app.app_context():
        book_days(parent.household_id, child, [day_id], actor=None, now=EARLY)
        db.session.commit()
    frozen_clock["now"] = datetime(2030, 12, 1, 12, tzinfo=UTC)  # cut-off of 2 Dec passed
    auth.login(parent)
    html = client.get(month_url(child)).get_data(as_text=True)
    assert "Réservé · non modifiable" in re.sub(r"<[^>]+>", "", html)
    assert "Déclarer une absence" in html


def test_the_week_view_shows_one_week(app, client, auth, parent, family):
    offer, (child, _sibling) = family
    auth.login(parent)
    html = client.get(f"/reservations/enfant/{child}?semaine=2030-12-04").get_data(as_text=True)
    assert "Semaine du lun. 2 déc." in html
    assert "mar. 10 déc." not in html
    assert "semaine=2030-11-25" in html and "semaine=2030-12-09" in html


@pytest.mark.parametrize("bad", ["2030-13", "abc", "99999-01", "9999-12", "0001-01"])
def test_a_bad_month_or_week_is_a_french_400(app, client, auth, parent, family, bad):
    # Issue 12: out of range or not a date is refused by the shared parser, never a 500.
    _offer, (child, _sibling) = family
    auth.login(parent)
    assert client.get(month_url(child, "")).status_code == 200  # blank: the current month
    refused = client.get(month_url(child, bad))
    assert refused.status_code == 400 and "Le mois demandé" in refused.get_data(as_text=True)
    for week in ("nope", "9999-12-31", "0001-01-01"):
        response = client.get(f"/reservations/enfant/{child}?semaine={week}")
        assert response.status_code == 400
        assert "La semaine demandée" in response.get_data(as_text=True)


def test_month_view_queries_do_not_grow_with_children_activities_and_bookings(app, client, auth):
    small = make_user(app, children=1)
    offer = make_bookable_offer(app, activities=1)
    small_child = children_of(app, small.household_id)[0]
    enrol_accepted(app, small.household_id, small_child, offer)

    big = make_user(app, children=3)
    big_offer = make_bookable_offer(app, activities=3)
    other_offer = make_bookable_offer(app, activities=1)
    big_children = children_of(app, big.household_id)
    with app.app_context():
        for child_id in big_children:
            enrol_accepted(app, big.household_id, child_id, big_offer)
            enrol_accepted(app, big.household_id, child_id, other_offer)
            for activity_id in big_offer.activity_ids:
                ids = [d for d, _ in day_ids(app, activity_id, date(2030, 12, 1))][:10]
                book_days(big.household_id, child_id, ids, actor=None, now=EARLY)
        db.session.commit()

    def count(account, child_id):
        auth.login(account)
        client.get(month_url(child_id))  # warm-up: session, user
        with counted_queries(app) as statements:
            assert client.get(month_url(child_id)).status_code == 200
        auth.logout()
        return len(statements)

    assert count(small, small_child) == count(big, big_children[0])


# --- Toggles (htmx) ---------------------------------------------------------------------------


def test_tapping_a_day_books_it_and_answers_one_small_cell(app, client, auth, parent, family):
    offer, (child, _sibling) = family
    day_id = first_day(app, offer)
    auth.login(parent)
    response = htmx_post(client, toggle_url(child, day_id), {f"j{day_id}": "1"})
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert len(response.data) < 2048
    assert "<html" not in html and 'class="rv-cell rv-booked"' in html
    assert 'id="annonce-reservation"' in html and "Réservé : " in html
    assert 'data-hx-swap-oob="true"' in html
    assert bookings_of(app, child) == {day_id: "booked"}
    assert day_row(app, day_id)[1] == 1

    response = htmx_post(client, toggle_url(child, day_id))  # unticked: cancel
    assert 'class="rv-cell rv-available"' in response.get_data(as_text=True)
    assert "Annulé : " in response.get_data(as_text=True)
    assert bookings_of(app, child) == {day_id: "cancelled"}
    assert day_row(app, day_id)[1] == 0


def test_a_tap_runs_at_most_eight_statements_and_answers_the_month_page_cell(
    app, client, auth, parent, family
):
    """Issue 15: the toggle reads once, writes, and builds its cell from what it did
    (no re-read after the commit). Its cell is the one the month page then shows."""
    offer, (child, sibling) = family
    day_id = first_day(app, offer)
    set_capacity(app, day_id, 1)
    auth.login(parent)
    htmx_post(client, toggle_url(child, first_day(app, offer, 1)), {"x": "1"})  # warm-up

    def tap(child_id, data=None, limit=8):
        token = csrf_token(client)
        with counted_queries(app) as statements:
            response = client.post(
                toggle_url(child_id, day_id),
                data=data or {},
                headers={"HX-Request": "true", "X-CSRFToken": token},
            )
        assert limit is None or len(statements) <= limit, "\n".join(statements)
        html = response.get_data(as_text=True)
        cell = html[html.index("<li") : html.index("</li>") + 5]
        page = client.get(month_url(child_id)).get_data(as_text=True)
        start = page.index("<li", page.index(f'id="cellule-{day_id}"') - 60)
        assert page[start : page.index("</li>", start) + 5] == cell
        return cell

    assert "rv-booked" in tap(child, {f"j{day_id}": "1"})
    assert "rv-full" in tap(sibling, {f"j{day_id}": "1"})  # refused: the one place is taken
    assert "Liste d'attente (1er)" in tap(sibling, {"attente": "1"})
    # Cancelled: the sibling promoted takes the place (their e-mail costs more statements).
    assert "rv-full" in tap(child, limit=None)
    assert "rv-booked" in tap(sibling, {f"j{day_id}": "1"})  # already booked
    assert "rv-available" in tap(sibling)
    assert bookings_of(app, sibling) == {day_id: "cancelled"}


def test_without_javascript_a_toggle_redirects_back_to_the_week(app, client, auth, parent, family):
    offer, (child, _sibling) = family
    day_id = first_day(app, offer)
    auth.login(parent)
    response = post(client, toggle_url(child, day_id), {f"j{day_id}": "1"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("mois=2030-12#semaine-2030-12-02")
    assert bookings_of(app, child) == {day_id: "booked"}


def test_a_full_day_offers_the_waiting_list_and_a_cancellation_promotes(
    app, client, auth, parent, family, outbox
):
    offer, (child, sibling) = family
    day_id = first_day(app, offer)
    set_capacity(app, day_id, 1)
    auth.login(parent)
    htmx_post(client, toggle_url(sibling, day_id), {f"j{day_id}": "1"})
    refused = htmx_post(client, toggle_url(child, day_id), {f"j{day_id}": "1"})
    assert refused.status_code == 422
    assert "complet" in refused.get_data(as_text=True)
    waiting = htmx_post(client, toggle_url(child, day_id), {"attente": "1"})
    assert "Liste d'attente (1er)" in waiting.get_data(as_text=True)
    assert bookings_of(app, child) == {day_id: "waiting"}

    htmx_post(client, toggle_url(sibling, day_id))  # the sibling's place frees up
    assert bookings_of(app, child) == {day_id: "booked"}
    assert any("Place libérée" in m.subject for m in outbox)


def test_leaving_the_waiting_list(app, client, auth, parent, family):
    offer, (child, sibling) = family
    day_id = first_day(app, offer)
    set_capacity(app, day_id, 1)
    auth.login(parent)
    htmx_post(client, toggle_url(sibling, day_id), {f"j{day_id}": "1"})
    htmx_post(client, toggle_url(child, day_id), {"attente": "1"})
    response = htmx_post(client, toggle_url(child, day_id), {"quitter": "1"})
    assert 'class="rv-cell rv-full"' in response.get_data(as_text=True)
    assert bookings_of(app, child)[day_id] == "cancelled"


def test_after_the_cut_off_a_family_cannot_book_nor_cancel(
    app, client, auth, parent, family, frozen_clock
):
    offer, (child, sibling) = family
    booked, free = [d for d, _ in day_ids(app, offer.activity_ids[0], date(2030, 12, 2))][:2]
    with app.app_context():
        book_days(parent.household_id, child, [booked], actor=None, now=EARLY)
        db.session.commit()
    # 72 h before Tuesday 3 December 7:30 = Saturday 30 November 7:30 (Paris, UTC+1).
    frozen_clock["now"] = datetime(2030, 11, 30, 6, 30, tzinfo=UTC)
    auth.login(parent)
    response = htmx_post(client, toggle_url(child, free), {f"j{free}": "1"})
    assert response.status_code == 422
    assert "délai de réservation dépassé" in response.get_data(as_text=True)
    response = htmx_post(client, toggle_url(child, booked))
    assert response.status_code == 422
    assert bookings_of(app, child) == {booked: "booked"}
    # One second earlier, still open.
    frozen_clock["now"] = datetime(2030, 11, 30, 6, 29, 59, tzinfo=UTC)
    assert htmx_post(client, toggle_url(child, free), {f"j{free}": "1"}).status_code == 200


def test_another_households_child_or_a_forged_day_is_404(app, client, auth, parent, family):
    offer, (child, _sibling) = family
    day_id = first_day(app, offer)
    stranger = make_user(app, children=1)
    stranger_child = children_of(app, stranger.household_id)[0]
    enrol_accepted(app, stranger.household_id, stranger_child, offer)
    auth.login(parent)
    assert client.get(month_url(stranger_child)).status_code == 404
    assert post(client, toggle_url(stranger_child, day_id), {f"j{day_id}": "1"}).status_code == 404
    assert post(client, toggle_url(child, 99_999_999), {"j99999999": "1"}).status_code == 404
    assert client.get(toggle_url(child, 99_999_999)).status_code == 404
    assert bookings_of(app, stranger_child) == {} and bookings_of(app, child) == {}


def test_an_activity_the_child_is_not_enrolled_in_is_404(app, client, auth, parent, family):
    offer, (child, _sibling) = family
    other = make_bookable_offer(app, activities=1)
    day_id = first_day(app, other)
    pending = add_child(app, parent.household_id)
    auth.login(parent)
    assert post(client, toggle_url(child, day_id), {f"j{day_id}": "1"}).status_code == 404
    assert client.get(month_url(pending)).status_code == 200  # says why, books nothing
    assert "pas d'inscription acceptée" in client.get(month_url(pending)).get_data(as_text=True)
    assert bookings_of(app, child) == {}


def test_staff_cannot_open_the_family_calendar(app, client, auth, staff, parent, family):
    _offer, (child, _sibling) = family
    auth.login(staff)
    assert client.get(month_url(child)).status_code == 403


# --- Week form (no JavaScript) ------------------------------------------------------------------


def test_the_week_form_books_ticked_days_and_cancels_unticked_ones(
    app, client, auth, parent, family
):
    offer, (child, _sibling) = family
    week = [d for d, _ in day_ids(app, offer.activity_ids[0], *FIRST_DECEMBER_WEEK)]
    with app.app_context():
        book_days(parent.household_id, child, [week[0]], actor=None, now=EARLY)
        db.session.commit()
    auth.login(parent)
    data = {"jours": ",".join(map(str, week)), f"j{week[1]}": "1", f"j{week[2]}": "1"}
    response = post(client, f"/reservations/enfant/{child}/semaine", data)
    assert response.status_code == 303
    statuses = bookings_of(app, child)
    assert statuses[week[0]] == "cancelled"
    assert statuses[week[1]] == statuses[week[2]] == "booked"
    assert week[3] not in statuses


@pytest.mark.parametrize("jours", ["", "abc", "99999999", "1,2,3,-4"])
def test_the_week_form_refuses_forged_days(app, client, auth, parent, family, jours):
    _offer, (child, _sibling) = family
    auth.login(parent)
    response = post(client, f"/reservations/enfant/{child}/semaine", {"jours": jours})
    assert response.status_code == 404
    assert bookings_of(app, child) == {}


# --- A day's page: history, absence ----------------------------------------------------------


def test_the_day_page_shows_the_history(app, client, auth, parent, family):
    offer, (child, _sibling) = family
    day_id = first_day(app, offer)
    auth.login(parent)
    htmx_post(client, toggle_url(child, day_id), {f"j{day_id}": "1"})
    htmx_post(client, toggle_url(child, day_id))
    html = client.get(toggle_url(child, day_id)).get_data(as_text=True)
    assert html.count('class="req-event"') == 2
    assert "par votre foyer" in html and "Annulé" in html and "avant : réservé" in html


def absence_url(child_id, day_id):
    return f"/reservations/enfant/{child_id}/jour/{day_id}/absence"


def test_an_absence_with_a_certificate_after_the_cut_off(
    app, client, auth, parent, family, frozen_clock, tmp_path
):
    app.config["UPLOAD_FOLDER"] = str(tmp_path)
    offer, (child, _sibling) = family
    day_id = first_day(app, offer)
    with app.app_context():
        book_days(parent.household_id, child, [day_id], actor=None, now=EARLY)
        db.session.commit()
    auth.login(parent)
    before_cutoff = post(
        client,
        absence_url(child, day_id),
        {"fichier": (io.BytesIO(PDF), "certificat.pdf")},
        content_type="multipart/form-data",
    )
    assert before_cutoff.status_code == 422
    assert "annulez la réservation" in before_cutoff.get_data(as_text=True)

    frozen_clock["now"] = datetime(2030, 12, 2, 9, tzinfo=UTC)
    missing = post(client, absence_url(child, day_id), {}, content_type="multipart/form-data")
    assert missing.status_code == 422 and "Joignez le certificat" in missing.get_data(as_text=True)
    wrong = post(
        client,
        absence_url(child, day_id),
        {"fichier": (io.BytesIO(b"not a pdf"), "certificat.pdf")},
        content_type="multipart/form-data",
    )
    assert wrong.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Document)) == 0

    response = post(
        client,
        absence_url(child, day_id),
        {"fichier": (io.BytesIO(PDF), "certificat.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    with app.app_context():
        booking = db.session.scalar(select(Booking).where(Booking.child_id == child))
        assert booking.attendance == "excused" and booking.certificate_id is not None
        document = db.session.get(Document, booking.certificate_id)
        assert document.person_id == child and document.type.code == "justificatif-absence"
    html = client.get(toggle_url(child, day_id)).get_data(as_text=True)
    assert "absence déclarée" in html and "Absence déclarée" in html


def send_certificate(client, child, day_id):
    return post(
        client,
        absence_url(child, day_id),
        {"fichier": (io.BytesIO(PDF), "certificat.pdf")},
        content_type="multipart/form-data",
    )


def test_a_refused_certificate_is_shown_with_its_reason_and_can_be_replaced(
    app, client, auth, parent, family, frozen_clock, tmp_path
):
    app.config["UPLOAD_FOLDER"] = str(tmp_path)
    offer, (child, _sibling) = family
    day_id, other_day = first_day(app, offer), first_day(app, offer, 1)
    with app.app_context():
        book_days(parent.household_id, child, [day_id, other_day], actor=None, now=EARLY)
        db.session.commit()
    frozen_clock["now"] = datetime(2030, 12, 5, 9, tzinfo=UTC)
    auth.login(parent)
    response = send_certificate(client, child, day_id)
    assert response.status_code == 303
    html = client.get(toggle_url(child, day_id)).get_data(as_text=True)
    assert "S&#39;il est accepté, ce jour ne sera pas facturé" in html
    assert "En attente de vérification" in html and "Envoyer un autre certificat" not in html
    again = send_certificate(client, child, day_id)
    assert again.status_code == 422 and "déjà en attente" in again.get_data(as_text=True)
    # A certificate for another day does not replace this one.
    assert send_certificate(client, child, other_day).status_code == 303
    with app.app_context():
        booking = db.session.scalar(
            select(Booking).where(Booking.child_id == child, Booking.activity_day_id == day_id)
        )
        first = db.session.get(Document, booking.certificate_id)
        assert first.replaced_at is None
        first.status, first.refusal_reason = "refused", "Le certificat n'est pas daté"
        db.session.commit()
        first_id = first.id
    html = client.get(toggle_url(child, day_id)).get_data(as_text=True)
    assert "Refusé" in html and "Le certificat n&#39;est pas daté" in html
    assert "Envoyer un autre certificat" in html
    assert send_certificate(client, child, day_id).status_code == 303
    with app.app_context():
        booking = db.session.scalar(
            select(Booking).where(Booking.child_id == child, Booking.activity_day_id == day_id)
        )
        assert booking.certificate_id != first_id
        assert db.session.get(Document, first_id).replaced_at is not None
        assert db.session.get(Document, booking.certificate_id).status == "pending"
        current = db.session.scalar(
            select(func.count())
            .select_from(Document)
            .where(Document.person_id == child, Document.replaced_at.is_(None))
        )
        assert current == 2  # this day's new one and the other day's


def test_an_absence_on_a_day_already_invoiced_says_it_will_be_credited(
    app, client, auth, parent, family, frozen_clock, tmp_path
):
    from citoyens.billing.models import BilledDay, Invoice
    from tests.billing_factories import make_invoice

    app.config["UPLOAD_FOLDER"] = str(tmp_path)
    offer, (child, _sibling) = family
    day_id = first_day(app, offer)
    invoice_id = make_invoice(app, parent.household_id)
    with app.app_context():
        book_days(parent.household_id, child, [day_id], actor=None, now=EARLY)
        booking = db.session.scalar(select(Booking).where(Booking.child_id == child))
        invoice = db.session.get(Invoice, invoice_id)
        db.session.add(
            BilledDay(
                invoice_line_id=invoice.lines[0].id,
                booking_id=booking.id,
                household_id=parent.household_id,
                day=date(2030, 12, 2),
                amount_cents=350,
            )
        )
        db.session.commit()
    frozen_clock["now"] = datetime(2030, 12, 5, 9, tzinfo=UTC)
    auth.login(parent)
    response = send_certificate(client, child, day_id)
    assert response.status_code == 303
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "ce jour déjà facturé sera déduit de votre prochaine facture" in html
    assert "ne sera pas facturé" not in html


# --- Planifier en un clic -------------------------------------------------------------------


def plan_data(offer, children, **extra):
    data = {
        "enfants": [str(c) for c in children],
        "activites": [str(a) for a in offer.activity_ids],
        "jours": ["1", "2", "4", "5"],
        "du": "2030-09-01",
        "au": "2031-08-31",
        "etape": "apercu",
    }
    data.update(extra)
    return data


def test_plan_a_whole_year_for_two_children_in_one_action(app, client, auth, parent, family):
    offer, children = family
    expected = len(day_ids(app, offer.activity_ids[0]))
    auth.login(parent)
    page = client.get("/reservations/planifier").get_data(as_text=True)
    assert 'name="enfants"' in page and 'name="jours"' in page

    preview = post(client, "/reservations/planifier", plan_data(offer, children))
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert f"{4 * expected} jours seront réservés" in html
    # Priced with the QF staff accepted, and the page says which applies (issue 11).
    assert "Quotient familial non renseigné : le tarif le plus élevé s'applique." in html
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 0

    result = post(client, "/reservations/planifier", plan_data(offer, children, etape="confirmer"))
    assert result.status_code == 200
    assert f"{4 * expected} jours réservés" in result.get_data(as_text=True)
    for child in children:
        assert list(bookings_of(app, child).values()).count("booked") == 2 * expected
    for activity_id in offer.activity_ids:
        for day_id, _day in day_ids(app, activity_id)[:3]:
            assert day_row(app, day_id)[1] == 2

    again = post(client, "/reservations/planifier", plan_data(offer, children, etape="confirmer"))
    assert "0 jour réservé" in again.get_data(as_text=True)


def test_plan_says_what_was_not_booked_and_why(app, client, auth, parent, family):
    offer, children = family
    full_day = first_day(app, offer)
    set_capacity(app, full_day, 0)
    auth.login(parent)
    data = plan_data(offer, children[:1], activites=[str(offer.activity_ids[0])])
    data.update(du="2030-12-01", au="2030-12-31")
    preview = post(client, "/reservations/planifier", data).get_data(as_text=True)
    assert "· 1 complet" in preview

    result = post(client, "/reservations/planifier", {**data, "etape": "confirmer"})
    assert "complet" in result.get_data(as_text=True)
    assert full_day not in bookings_of(app, children[0])

    data.update(etape="confirmer", attente="y")
    waiting = post(client, "/reservations/planifier", data)
    assert "1 sur liste d'attente" in waiting.get_data(as_text=True)
    assert bookings_of(app, children[0])[full_day] == "waiting"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"enfants": []}, "Choisissez au moins un enfant."),
        ({"activites": []}, "Choisissez au moins une activité."),
        ({"jours": []}, "Choisissez au moins un jour de la semaine."),
        ({"au": "2030-08-01"}, "Le dernier jour doit suivre le premier."),
        ({"du": "2030-01-01", "au": "2031-08-31"}, "La période ne peut pas dépasser un an."),
        ({"du": "32/13/2030"}, "Saisissez une date valide"),
    ],
)
def test_plan_bad_input_saves_nothing(app, client, auth, parent, family, changes, message):
    offer, children = family
    auth.login(parent)
    data = plan_data(offer, children, etape="confirmer")
    data.update(changes)
    response = post(client, "/reservations/planifier", data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 0


def test_plan_outside_the_school_year_books_nothing(app, client, auth, parent, family):
    offer, children = family
    auth.login(parent)
    data = plan_data(offer, children, du="2032-01-01", au="2032-02-01")
    response = post(client, "/reservations/planifier", data)
    assert "Aucun des enfants choisis" in response.get_data(as_text=True)
    post(client, "/reservations/planifier", {**data, "etape": "confirmer"})
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 0


def test_plan_refuses_a_forged_child_or_activity(app, client, auth, parent, family):
    offer, children = family
    stranger = make_user(app, children=1)
    stranger_child = children_of(app, stranger.household_id)[0]
    enrol_accepted(app, stranger.household_id, stranger_child, offer)
    auth.login(parent)
    forged_child = plan_data(offer, [children[0], stranger_child], etape="confirmer")
    assert post(client, "/reservations/planifier", forged_child).status_code == 404
    forged_activity = plan_data(offer, children, etape="confirmer", activites=["99999999"])
    assert post(client, "/reservations/planifier", forged_activity).status_code == 404
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 0


def test_the_summary_mail_is_sent_only_when_asked_for(app, client, auth, parent, family, outbox):
    offer, (child, _sibling) = family
    day_id, next_id = [d for d, _ in day_ids(app, offer.activity_ids[0], date(2030, 12, 2))][:2]
    auth.login(parent)
    htmx_post(client, toggle_url(child, day_id), {f"j{day_id}": "1"})
    assert not [m for m in outbox if "modifiées" in m.subject]
    with app.app_context():
        db.session.get(Household, parent.household_id).booking_summary_mail = True
        db.session.commit()
    htmx_post(client, toggle_url(child, next_id), {f"j{next_id}": "1"})
    summaries = [m for m in outbox if "modifiées" in m.subject]
    assert len(summaries) == 1 and "Réservé" in summaries[0].body


def test_every_change_is_in_the_history(app, client, auth, parent, family):
    offer, (child, _sibling) = family
    day_id = first_day(app, offer)
    auth.login(parent)
    for data in ({f"j{day_id}": "1"}, {}, {f"j{day_id}": "1"}):
        htmx_post(client, toggle_url(child, day_id), data)
    with app.app_context():
        changes = db.session.execute(
            select(
                BookingChange.from_state, BookingChange.to_state, BookingChange.actor_kind
            ).order_by(BookingChange.id)
        ).all()
    assert [tuple(c) for c in changes] == [
        (None, "booked", "family"),
        ("booked", "cancelled", "family"),
        ("cancelled", "booked", "family"),
    ]


# --- Random input: never a 500, nothing booked by a refused form --------------------------------

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)
junk = st.one_of(
    st.just(""),
    st.text(max_size=30),
    st.just("\x00"),
    st.sampled_from(["2030-12-01", "01/12/2030", "-1", "0", "99999999999999999999", "1,2"]),
)


@FUZZ
@given(
    enfants=st.lists(junk, max_size=3),
    activites=st.lists(junk, max_size=3),
    jours=st.lists(junk, max_size=3),
    du=junk,
    au=junk,
    attente=junk,
    etape=st.sampled_from(["apercu", "confirmer", "", "x"]),
)
def test_the_planner_never_fails_on_random_input(
    app, client, auth, parent, family, enfants, activites, jours, du, au, attente, etape
):
    if not client.get_cookie("session"):
        auth.login(parent)
    data = {"enfants": enfants, "activites": activites, "jours": jours}
    data.update(du=du, au=au, attente=attente, etape=etape)
    response = post(client, "/reservations/planifier", data)
    assert response.status_code in (200, 404, 422), response.status_code
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 0


@FUZZ
@given(jours=junk, ticked=st.lists(junk, max_size=3), attente=junk, quitter=junk)
def test_the_day_forms_never_fail_on_random_input(
    app, client, auth, parent, family, jours, ticked, attente, quitter
):
    offer, (child, _sibling) = family
    day_id = first_day(app, offer)
    if not client.get_cookie("session"):
        auth.login(parent)
    week = post(
        client,
        f"/reservations/enfant/{child}/semaine",
        {"jours": jours, **{f"j{value}": "1" for value in ticked}},
    )
    assert week.status_code in (303, 404), week.status_code
    toggle = post(client, toggle_url(child, day_id), {"attente": attente, "quitter": quitter})
    assert toggle.status_code in (303, 422), toggle.status_code


def test_a_promotion_mail_leaves_only_with_its_commit(app, parent, family, outbox):
    from citoyens.reservations.operations import BookingError, cancel_days
    from citoyens.transactions import write_transaction

    offer, (child, sibling) = family
    day_id = first_day(app, offer)
    set_capacity(app, day_id, 1)
    with app.test_request_context():
        book_days(parent.household_id, sibling, [day_id], actor=None, now=EARLY)
        book_days(parent.household_id, child, [day_id], actor=None, now=EARLY, waiting_list=True)
        db.session.commit()

        def cancel_then_fail():
            cancel_days(parent.household_id, sibling, [day_id], actor=None, now=EARLY)
            raise BookingError("changed my mind")

        with pytest.raises(BookingError):
            write_transaction(cancel_then_fail)
        assert not [m for m in outbox if "Place libérée" in m.subject]
        assert bookings_of(app, child) == {day_id: "waiting"}

        write_transaction(
            lambda: cancel_days(parent.household_id, sibling, [day_id], actor=None, now=EARLY)
        )
    assert len([m for m in outbox if "Place libérée" in m.subject]) == 1
    assert bookings_of(app, child) == {day_id: "booked"}
