"""Factories for tests/test_staff_scope.py: two services (A and B), a family enrolled in
each with a document, a health document, a request, an invoice paid in part at the counter
(a receipt) and a booking, and the three
staff accounts whose access is checked (an agent of A, an agent of no service, an admin)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from citoyens.accounts.models import User
from citoyens.documents.models import Document
from citoyens.documents.storage import get_storage
from citoyens.enrolments.models import Enrolment
from citoyens.extensions import db
from citoyens.households.models import HouseholdMember, Person
from citoyens.reservations.models import ActivityDay, Booking, Closure
from tests.admin_enrolments_factories import make_enrolment
from tests.billing_factories import make_invoice
from tests.counter_factories import make_receipt
from tests.documents_factories import children_of, make_document, make_type, png
from tests.factories import make_user
from tests.messages_factories import make_message
from tests.requests_factories import assign_staff, make_request
from tests.reservations_factories import make_bookable_offer


def rename_family(app, household_id: int, last_name: str) -> None:
    with app.app_context():
        people = db.session.scalars(
            select(Person)
            .join(HouseholdMember, HouseholdMember.person_id == Person.id)
            .where(HouseholdMember.household_id == household_id)
        )
        for person in people:
            person.last_name = last_name
        db.session.commit()


def stored(app, household_id: int, type_id: int, person_id: int | None = None) -> int:
    """A pending PNG document with its file in the store."""
    document_id = make_document(
        app,
        household_id=household_id,
        type_id=type_id,
        person_id=person_id,
        content_type="image/png",
    )
    with app.app_context():
        get_storage().save(db.session.get(Document, document_id).storage_key, png())
    return document_id


@dataclass
class Family:
    household: int
    child: int
    name: str
    enrolment: int
    request: int
    document: int
    health: int
    invoice: int
    receipt: int
    day: int
    booking: int

    def params(self) -> dict[str, int | str]:
        return {
            "household_id": self.household,
            "child_id": self.child,
            "person_id": self.child,
            "role_slug": "enfant",
            "invoice_id": self.invoice,
            "receipt_id": self.receipt,
            "document_id": self.document,
            "request_id": self.request,
            "enrolment_id": self.enrolment,
            "activity_day_id": self.day,
        }

    def markers(self) -> list[str]:
        """What a page listing this family's data would show."""
        return [
            self.name,
            f'/admin/familles/{self.household}"',
            f'/admin/documents/{self.document}"',
            f'/admin/demandes/{self.request}"',
            f'/admin/inscriptions/{self.enrolment}"',
            f'/admin/factures/{self.invoice}"',
            f'/admin/factures/encaissements/{self.receipt}"',
        ]


@dataclass
class World:
    a: Family  # enrolled in service A
    b: Family  # enrolled in service B
    service_a: int
    service_b: int
    closure_a: int
    closure_b: int
    general_request: int  # on family A, tied to no service
    message_a: int  # sent to the families of A
    message_b: int
    agent: User  # works for A
    loner: User  # works for no service
    admin: User


def make_family(app, offer, name: str, health_type: int, photo_type: int) -> Family:
    account = make_user(app, role="parent", children=1)
    household = account.household_id
    rename_family(app, household, name)
    child = children_of(app, household)[0]
    enrolment = make_enrolment(
        app, household, child, offer.service_id, offer.year_id, activity_ids=offer.activity_ids
    )
    with app.app_context():
        request_id = db.session.get(Enrolment, enrolment).request_id
        day = db.session.scalar(
            select(ActivityDay.id)
            .where(ActivityDay.activity_id == offer.activity_ids[0])
            .order_by(ActivityDay.day)
            .limit(1)
        )
        booking = Booking(activity_day_id=day, child_id=child, household_id=household)
        booking.status = "booked"
        db.session.add(booking)
        db.session.commit()
        booking_id = booking.id
    invoice = make_invoice(app, household, month=date(2030, 9, 1))
    return Family(
        household=household,
        child=child,
        name=name,
        enrolment=enrolment,
        request=request_id,
        document=stored(app, household, photo_type),
        health=stored(app, household, health_type, child),
        invoice=invoice,
        receipt=make_receipt(app, household, [invoice], 500),
        day=day,
        booking=booking_id,
    )


def make_closure(app, service_id: int) -> int:
    with app.app_context():
        closure = Closure(
            service_id=service_id,
            starts_on=date(2031, 5, 2),
            ends_on=date(2031, 5, 2),
            reason="Grève",
        )
        db.session.add(closure)
        db.session.commit()
        return closure.id


def make_world(app) -> World:
    offer_a = make_bookable_offer(app, activities=1, name="Accueil Alpha")
    offer_b = make_bookable_offer(app, activities=1, name="Accueil Bêta")
    health = make_type(app, scope="child", label="Certificat médical", health=True)
    photo = make_type(app, scope="household", label="Justificatif de domicile")
    family_a = make_family(app, offer_a, "Alphafamille", health, photo)
    family_b = make_family(app, offer_b, "Bêtafamille", health, photo)
    agent, loner = make_user(app, role="staff"), make_user(app, role="staff")
    assign_staff(app, agent.id, offer_a.service_id)
    return World(
        a=family_a,
        b=family_b,
        service_a=offer_a.service_id,
        service_b=offer_b.service_id,
        closure_a=make_closure(app, offer_a.service_id),
        closure_b=make_closure(app, offer_b.service_id),
        general_request=make_request(app, family_a.household),
        message_a=make_message(app, offer_a.service_id, [family_a.household]),
        message_b=make_message(app, offer_b.service_id, [family_b.household]),
        agent=agent,
        loner=loner,
        admin=make_user(app, role="admin"),
    )
