"""Enrolments during the year: staff end an enrolment at a date, add or remove an
activity, change school or class. Later bookings are cancelled (not billed, not late),
the family gets one e-mail, nothing invoiced changes, the calendar stops at the end."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.enrolments.models import Enrolment, EnrolmentActivity
from citoyens.extensions import db
from citoyens.households.models import Person
from citoyens.mail import MailMessage
from citoyens.requests.models import Request, RequestEvent
from citoyens.reservations import operations as booking_ops
from citoyens.reservations import rules as booking_rules
from citoyens.reservations.models import ActivityDay, Booking
from tests.admin_enrolments_factories import make_enrolment
from tests.billing_factories import make_invoice
from tests.conftest import post
from tests.factories import make_user
from tests.households_factories import changes, make_school, person_ids
from tests.requests_factories import assign_staff
from tests.reservations_factories import EARLY, day_ids, make_bookable_offer, text_of


def accepted_enrolment(app, household_id, child_id, offer, activity_ids=None) -> int:
    """An accepted enrolment with its (accepted) request, as after the staff's decision."""
    enrolment_id = make_enrolment(
        app,
        household_id,
        child_id,
        offer.service_id,
        offer.year_id,
        activity_ids=activity_ids or offer.activity_ids,
    )
    with app.app_context():
        enrolment = db.session.get(Enrolment, enrolment_id)
        enrolment.status = "accepted"
        db.session.get(Request, enrolment.request_id).status = "accepted"
        db.session.commit()
    return enrolment_id


def book(app, household_id, child_id, ids) -> None:
    with app.app_context():
        outcome = booking_ops.book_days(household_id, child_id, ids, actor=None, now=EARLY)
        assert len(outcome.booked) == len(ids), outcome.refused
        db.session.commit()


def statuses(app, child_id) -> dict[date, tuple[str, bool]]:
    with app.app_context():
        rows = db.session.execute(
            select(Booking.day, Booking.status, Booking.late).where(Booking.child_id == child_id)
        )
        return {day: (status, late) for day, status, late in rows}


def family_mails(app) -> list[MailMessage]:
    with app.app_context():
        return list(
            db.session.scalars(select(MailMessage).where(MailMessage.kind == "enrolment-changed"))
        )


def history(app, enrolment_id) -> list[str]:
    with app.app_context():
        request_id = db.session.get(Enrolment, enrolment_id).request_id
        return [
            e.body
            for e in db.session.scalars(
                select(RequestEvent)
                .where(RequestEvent.request_id == request_id, RequestEvent.kind == "message")
                .order_by(RequestEvent.id)
            )
        ]


def setup(app, parent):
    offer = make_bookable_offer(app)
    child = person_ids(app, parent.household_id, "child")[0]
    enrolment_id = accepted_enrolment(app, parent.household_id, child, offer)
    return offer, child, enrolment_id


def test_staff_end_an_enrolment_cancels_later_bookings_only(app, client, auth, admin, parent):
    offer, child, enrolment_id = setup(app, parent)
    september = [i for i, _ in day_ids(app, offer.activity_ids[0], last=date(2030, 9, 30))]
    october = [i for i, _ in day_ids(app, offer.activity_ids[0], first=date(2030, 10, 1))]
    later = october[:4]
    book(app, parent.household_id, child, september[:3] + later)
    make_invoice(app, parent.household_id, month=date(2030, 9, 1))  # September is invoiced
    auth.login(admin)
    page = text_of(client.get(f"/admin/inscriptions/{enrolment_id}"))
    assert "Terminer l'inscription" in page

    response = post(
        client, f"/admin/inscriptions/{enrolment_id}/fin", {"fin-ends_on": "30/09/2030"}
    )
    assert response.status_code == 303, text_of(response)
    with app.app_context():
        enrolment = db.session.get(Enrolment, enrolment_id)
        assert (enrolment.status, enrolment.ends_on) == ("ended", date(2030, 9, 30))
        booked = db.session.scalar(select(ActivityDay.booked).where(ActivityDay.id == later[0]))
        assert booked == 0  # the place is free again
    after = statuses(app, child)
    assert all(after[d] == ("booked", False) for d in after if d <= date(2030, 9, 30))
    assert [after[d] for d in after if d > date(2030, 9, 30)] == [("cancelled", False)] * 4

    mails = family_mails(app)
    assert len(mails) == 1  # one e-mail listing every cancelled day
    assert mails[0].recipient == parent.email
    assert mails[0].body_text.count(" — ") == 4 and "octobre 2030" in mails[0].body_text
    assert (
        "Inscription terminée : dernier jour le 30 septembre 2030" in history(app, enrolment_id)[0]
    )

    # The calendar no longer offers a day after the end; booking one is refused.
    with app.app_context():
        children = [db.session.get(Person, child)]
        calendars = booking_rules.load_calendars(
            parent.household_id, children, date(2030, 9, 1), date(2030, 11, 30), EARLY
        )
        days = [row.day for week in calendars[child].weeks for row in week.days]
        assert days and max(days) <= date(2030, 9, 30)
        outcome = booking_ops.book_days(
            parent.household_id, child, [october[5]], actor=None, now=EARLY
        )
        assert outcome.refused == {october[5]: "not_enrolled"}


def test_end_date_inside_an_invoiced_month_is_refused(app, client, auth, admin, parent):
    offer, child, enrolment_id = setup(app, parent)
    make_invoice(app, parent.household_id, month=date(2030, 10, 1))
    auth.login(admin)
    path = f"/admin/inscriptions/{enrolment_id}/fin"
    for value, message in (
        ("15/10/2030", "ne peut pas être avant le 31 octobre 2030"),
        ("", "Indiquez la date"),
        ("31/02/2031", "Saisissez une date valide"),
        ("31/08/2031", "avant la fin de l'année scolaire"),
    ):
        response = post(client, path, {"fin-ends_on": value})
        assert response.status_code == 422, value
        assert message in text_of(response), value
    with app.app_context():
        assert db.session.get(Enrolment, enrolment_id).status == "accepted"
    assert family_mails(app) == []


def test_remove_an_activity_cancels_its_future_bookings(app, client, auth, admin, parent):
    offer, child, enrolment_id = setup(app, parent)
    kept, removed = offer.activity_ids
    kept_days = [i for i, _ in day_ids(app, kept)][:2]
    removed_days = [i for i, _ in day_ids(app, removed)][:3]
    book(app, parent.household_id, child, kept_days + removed_days)
    auth.login(admin)
    response = post(
        client, f"/admin/inscriptions/{enrolment_id}/activites", {"activites-remove": str(removed)}
    )
    assert response.status_code == 303, text_of(response)
    with app.app_context():
        links = db.session.scalars(
            select(EnrolmentActivity.activity_id).where(
                EnrolmentActivity.enrolment_id == enrolment_id
            )
        ).all()
        assert links == [kept]
        rows = dict(
            db.session.execute(
                select(Booking.activity_day_id, Booking.status).where(Booking.child_id == child)
            ).all()
        )
    assert [rows[i] for i in kept_days] == ["booked", "booked"]
    assert [rows[i] for i in removed_days] == ["cancelled"] * 3
    assert len(family_mails(app)) == 1
    assert "Activité(s) retirée(s)" in history(app, enrolment_id)[0]

    # The last activity cannot go: ending the enrolment is the way.
    last = post(
        client, f"/admin/inscriptions/{enrolment_id}/activites", {"activites-remove": str(kept)}
    )
    assert last.status_code == 422
    assert "au moins une activité" in text_of(last)


def test_add_an_activity_makes_it_bookable(app, client, auth, admin, parent):
    offer = make_bookable_offer(app)
    child = person_ids(app, parent.household_id, "child")[0]
    first, second = offer.activity_ids
    enrolment_id = accepted_enrolment(app, parent.household_id, child, offer, [first])
    new_day = day_ids(app, second)[0][0]
    with app.app_context():
        outcome = booking_ops.book_days(
            parent.household_id, child, [new_day], actor=None, now=EARLY
        )
        assert outcome.refused == {new_day: "not_enrolled"}
        db.session.rollback()
    auth.login(admin)
    response = post(
        client, f"/admin/inscriptions/{enrolment_id}/activites", {"activites-add": str(second)}
    )
    assert response.status_code == 303
    book(app, parent.household_id, child, [new_day])
    assert family_mails(app) == []  # nothing cancelled: nothing to tell by e-mail
    assert "Activité(s) ajoutée(s)" in history(app, enrolment_id)[0]
    # An activity of another service is not offered.
    other = make_bookable_offer(app, activities=1)
    bad = post(
        client,
        f"/admin/inscriptions/{enrolment_id}/activites",
        {"activites-add": str(other.activity_ids[0])},
    )
    assert bad.status_code == 422
    assert "Choisissez des activités de la liste" in text_of(bad)


def test_change_school_and_class_goes_through_the_household(app, client, auth, admin, parent):
    offer, child, enrolment_id = setup(app, parent)
    school = make_school(app, "École du Layon")
    auth.login(admin)
    response = post(
        client,
        f"/admin/inscriptions/{enrolment_id}/scolarite",
        {"scolarite-school_id": str(school), "scolarite-class_level": "CM1"},
    )
    assert response.status_code == 303
    with app.app_context():
        person = db.session.get(Person, child)
        assert (person.school_id, person.class_level) == (school, "CM1")
    assert changes(app, parent.household_id)[-1] == (
        "updated",
        "school_id,class_level",
        child,
        admin.id,
    )
    assert "École du Layon, CM1" in history(app, enrolment_id)[0]
    bad = post(
        client,
        f"/admin/inscriptions/{enrolment_id}/scolarite",
        {"scolarite-school_id": "999999", "scolarite-class_level": "CM1"},
    )
    assert bad.status_code == 422
    assert "Choisissez une école de la liste" in text_of(bad)


def test_agent_of_another_service_cannot_change_it(app, client, auth, parent):
    offer, child, enrolment_id = setup(app, parent)
    agent = make_user(app, role="staff")
    other = make_bookable_offer(app, activities=1)
    assign_staff(app, agent.id, other.service_id)
    auth.login(agent)
    path = f"/admin/inscriptions/{enrolment_id}/fin"
    # Outside the agent's scope: not found (services.scope), like every other staff page.
    assert post(client, path, {"fin-ends_on": "30/09/2030"}).status_code == 404
    with app.app_context():
        assert db.session.get(Enrolment, enrolment_id).status == "accepted"


def test_parent_and_anonymous_and_csrf(app, client, auth, parent):
    offer, child, enrolment_id = setup(app, parent)
    path = f"/admin/inscriptions/{enrolment_id}/fin"
    assert client.post(path, data={"fin-ends_on": "30/09/2030"}).status_code in (302, 400)
    auth.login(parent)
    assert post(client, path, {"fin-ends_on": "30/09/2030"}).status_code == 403
    auth.logout()
    admin = make_user(app, role="admin")
    auth.login(admin)
    assert client.post(path, data={"fin-ends_on": "30/09/2030"}).status_code == 400
    with app.app_context():
        assert db.session.get(Enrolment, enrolment_id).status == "accepted"


def test_ended_enrolment_cannot_change_again(app, parent):
    from citoyens.enrolments import changes as enrolment_changes

    offer, child, enrolment_id = setup(app, parent)
    with app.app_context():
        actor = db.session.scalar(select(User).limit(1))
        enrolment = enrolment_changes.enrolment_for_change(enrolment_id)
        enrolment_changes.end_enrolment(enrolment, date(2030, 12, 1), actor=actor)
        try:
            enrolment_changes.end_enrolment(enrolment, date(2030, 12, 2), actor=actor)
        except enrolment_changes.EnrolmentChangeError as exc:
            assert "acceptée et en cours" in str(exc)
        else:
            raise AssertionError("ended twice")
        db.session.rollback()
