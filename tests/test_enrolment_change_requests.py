"""A family asks to change its accepted enrolment: a request in the service's queue that
staff accept (the change is applied by the same rules) or refuse with a reason."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from citoyens.enrolments.models import Enrolment, EnrolmentChangeRequest
from citoyens.extensions import db
from citoyens.mail import MailMessage
from citoyens.requests.models import Request
from citoyens.reservations.models import Booking
from tests.billing_factories import make_invoice
from tests.conftest import post
from tests.factories import make_user
from tests.households_factories import person_ids
from tests.reservations_factories import day_ids, make_bookable_offer, text_of
from tests.test_enrolment_changes import accepted_enrolment, book, family_mails


def setup(app, parent):
    offer = make_bookable_offer(app)
    child = person_ids(app, parent.household_id, "child")[0]
    return offer, child, accepted_enrolment(app, parent.household_id, child, offer)


def change_request(app, enrolment_id) -> Request | None:
    with app.app_context():
        request = db.session.scalar(
            select(Request)
            .join(EnrolmentChangeRequest, EnrolmentChangeRequest.request_id == Request.id)
            .where(EnrolmentChangeRequest.enrolment_id == enrolment_id)
        )
        if request is not None:
            db.session.expunge(request)
        return request


def test_parent_asks_to_end_and_staff_accept(app, client, auth, parent, admin):
    offer, child, enrolment_id = setup(app, parent)
    later = [i for i, _ in day_ids(app, offer.activity_ids[0], first=date(2031, 1, 6))][:2]
    book(app, parent.household_id, child, later)
    auth.login(parent)
    page = text_of(client.get(f"/inscriptions/{enrolment_id}"))
    assert "Demander une modification" in page
    assert client.get(f"/inscriptions/{enrolment_id}/modification").status_code == 200
    response = post(
        client,
        f"/inscriptions/{enrolment_id}/modification/fin",
        {"fin-ends_on": "20/12/2030", "fin-reason": "Déménagement"},
    )
    assert response.status_code == 303, text_of(response)
    request = change_request(app, enrolment_id)
    assert (request.kind, request.status, request.service_id) == (
        "enrolment_change",
        "sent",
        offer.service_id,
    )
    with app.app_context():
        assert db.session.get(Enrolment, enrolment_id).status == "accepted"  # not yet
        to_service = db.session.scalar(
            select(MailMessage).where(MailMessage.kind == "enrolment-change-request")
        )
        assert to_service is not None and "Déménagement" not in to_service.body_text
    assert "Modification d'une inscription" in text_of(client.get("/mes-demandes"))
    # A second ask while the first waits is refused.
    again = post(
        client, f"/inscriptions/{enrolment_id}/modification/fin", {"fin-ends_on": "21/12/2030"}
    )
    assert again.status_code == 422 and "déjà en cours" in text_of(again)
    auth.logout()

    auth.login(admin)
    assert "Terminer l'inscription : dernier jour le 20 décembre 2030" in text_of(
        client.get(f"/admin/demandes/{request.id}")
    )
    response = post(client, f"/admin/demandes/{request.id}/statut", {"accept": "y"})
    assert response.status_code == 303
    with app.app_context():
        enrolment = db.session.get(Enrolment, enrolment_id)
        assert (enrolment.status, enrolment.ends_on) == ("ended", date(2030, 12, 20))
        cancelled = db.session.scalars(
            select(Booking.status).where(Booking.activity_day_id.in_(later))
        ).all()
        assert cancelled == ["cancelled", "cancelled"]
    assert len(family_mails(app)) == 1
    assert change_request(app, enrolment_id).status == "accepted"


def test_staff_refuse_with_a_reason_and_nothing_changes(app, client, auth, parent, admin):
    offer, child, enrolment_id = setup(app, parent)
    auth.login(parent)
    post(
        client,
        f"/inscriptions/{enrolment_id}/modification/activites",
        {"activites-remove": str(offer.activity_ids[1])},
    )
    request = change_request(app, enrolment_id)
    auth.logout()
    auth.login(admin)
    no_reason = post(client, f"/admin/demandes/{request.id}/statut", {"refuse": "y"})
    assert no_reason.status_code == 422
    response = post(
        client,
        f"/admin/demandes/{request.id}/statut",
        {"refuse": "y", "message": "Merci de passer en mairie."},
    )
    assert response.status_code == 303
    with app.app_context():
        enrolment = db.session.get(Enrolment, enrolment_id)
        assert enrolment.status == "accepted" and len(enrolment.activities) == 2
    auth.logout()
    auth.login(parent)
    page = text_of(client.get(f"/mes-demandes/{request.id}"))
    assert "Refusée" in page and "Merci de passer en mairie." in page


def test_accepting_a_change_the_rules_now_refuse_changes_nothing(app, client, auth, parent, admin):
    offer, child, enrolment_id = setup(app, parent)
    auth.login(parent)
    post(client, f"/inscriptions/{enrolment_id}/modification/fin", {"fin-ends_on": "20/10/2030"})
    request = change_request(app, enrolment_id)
    make_invoice(app, parent.household_id, month=date(2030, 10, 1))  # October invoiced since
    auth.logout()
    auth.login(admin)
    response = post(
        client, f"/admin/demandes/{request.id}/statut", {"accept": "y"}, follow_redirects=True
    )
    assert "La modification ne peut pas être appliquée" in text_of(response)
    assert change_request(app, enrolment_id).status == "sent"
    with app.app_context():
        assert db.session.get(Enrolment, enrolment_id).status == "accepted"


def test_parent_bad_inputs_get_french_messages(app, client, auth, parent):
    offer, child, enrolment_id = setup(app, parent)
    auth.login(parent)
    base = f"/inscriptions/{enrolment_id}/modification"
    for slug, data, message in (
        ("fin", {"fin-ends_on": "01/01/2020"}, "ne peut pas être déjà passée"),
        ("fin", {"fin-ends_on": "32/13/2030"}, "Saisissez une date valide"),
        ("activites", {}, "Choisissez une activité à ajouter ou à retirer"),
        ("activites", {"activites-add": "999999"}, "Choisissez des activités de la liste"),
        ("scolarite", {"scolarite-class_level": "XX"}, "Choisissez une classe de la liste"),
    ):
        response = post(client, f"{base}/{slug}", data)
        assert response.status_code == 422, (slug, data)
        assert message in text_of(response), (slug, data)
    assert change_request(app, enrolment_id) is None
    assert post(client, f"{base}/inconnu", {}).status_code == 404


def test_another_household_gets_404_and_staff_403(app, client, auth, parent):
    offer, child, enrolment_id = setup(app, parent)
    other = make_user(app, role="parent", children=1)
    auth.login(other)
    assert client.get(f"/inscriptions/{enrolment_id}/modification").status_code == 404
    response = post(
        client, f"/inscriptions/{enrolment_id}/modification/fin", {"fin-ends_on": "20/12/2030"}
    )
    assert response.status_code == 404
    auth.logout()
    auth.login(make_user(app, role="staff"))
    assert client.get(f"/inscriptions/{enrolment_id}/modification").status_code == 403
    assert change_request(app, enrolment_id) is None
