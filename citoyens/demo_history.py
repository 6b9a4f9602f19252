"""The demo's last month, lived: so that `make run` shows every part of the product at once.

Called by citoyens.demo.seed after the services, the demo family, its enrolments and
the tariffs exist. Idempotent: each part is made only while it is missing.

- Léa is enrolled at the Goulidons (Wednesdays in term, weekdays in school holidays);
- the demo family's children were booked last month, staff took the attendance, and
  last month's invoice was issued: it waits to be paid (simulated bank in development);
- a document of the family waits for staff to review it;
- a second family pays by SEPA direct debit: its mandate is signed and last month's
  invoice is planned for collection;
- a third family paid its last two invoices with one cheque at the counter
  (citoyens/demo_counter.py): its receipt is there for staff and for the family.
- the demo family's invoice of three months ago is still unpaid, past its due date: the
  reminder after the due date went out (the finance office's unpaid list shows both).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select

from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person

DEBIT_FAMILY = ("prelevement@example.org", "citoyens-demo-parent")
DEBIT_REF = "DEMO-0002"
# The IBAN of the French banking community's documentation examples (valid RIB key).
DEBIT_IBAN = "FR7630006000011234567890189"
GOULIDONS_CHILD = "Léa"


def first_of_previous_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def seed_history(today: date | None = None) -> int:
    """Create what is missing of the demo's last month; how many records were added.

    Its e-mails (mandate signed, invoice issued) link to the portal: outside a request
    (`flask seed-demo`) they are built for PUBLIC_URL or the address of `make run`."""
    from flask import current_app, has_request_context

    if has_request_context():
        return _seed_history(today)
    base_url = current_app.config.get("PUBLIC_URL") or "http://127.0.0.1:5000"
    with current_app.test_request_context("/", base_url=base_url):
        return _seed_history(today)


def _seed_history(today: date | None) -> int:
    from citoyens.demo_counter import cheque_over_two_months, counter_family
    from citoyens.forms import today_in_paris

    today = today or today_in_paris()
    month = first_of_previous_month(today)
    family = db.session.scalar(select(Household).where(Household.external_ref == "DEMO-0001"))
    if family is None:
        return 0
    created = _enrol_goulidons(family, month, today)
    debit_family, debit_created = _debit_family(month, today)
    created += debit_created
    cheque_family, cheque_created = counter_family(month, today)
    created += cheque_created
    created += _document_to_review(family)
    households = [family, debit_family, cheque_family]
    created += _overdue_invoice(family, today)
    created += _last_month_bookings([h for h in households if h is not None], month)
    db.session.flush()
    created += _issue_invoices(month, today)
    created += cheque_over_two_months(cheque_family, month, today)
    created += _send_reminders(today)
    return created


# --- Enrolments -------------------------------------------------------------------------------


def _school_year(day: date):
    from citoyens.services.models import SchoolYear

    return db.session.scalar(
        select(SchoolYear).where(SchoolYear.starts_on <= day, SchoolYear.ends_on >= day)
    )


def _children(household: Household) -> dict[str, Person]:
    return {
        person.first_name: person
        for person in db.session.scalars(
            select(Person)
            .join(HouseholdMember, HouseholdMember.person_id == Person.id)
            .where(
                HouseholdMember.household_id == household.id,
                HouseholdMember.role == "child",
                HouseholdMember.left_at.is_(None),
            )
        )
    }


def _enrol(household: Household, child: Person, service_code: str, day: date, names=None) -> int:
    """An accepted enrolment of the child in the service (all its activities, or `names`)."""
    from citoyens.enrolments.models import Enrolment, EnrolmentActivity
    from citoyens.services.models import Activity, Service

    year = _school_year(day)
    service = db.session.scalar(select(Service).where(Service.code == service_code))
    if year is None or service is None:
        return 0
    exists = db.session.scalar(
        select(Enrolment.id).where(
            Enrolment.child_id == child.id,
            Enrolment.service_id == service.id,
            Enrolment.school_year_id == year.id,
        )
    )
    if exists is not None:
        return 0
    query = select(Activity.id).where(Activity.service_id == service.id, Activity.active.is_(True))
    if names is not None:
        query = query.where(Activity.name.in_(names))
    enrolment = Enrolment(
        household_id=household.id,
        child_id=child.id,
        service_id=service.id,
        school_year_id=year.id,
        status="accepted",
    )
    enrolment.activities = [EnrolmentActivity(activity_id=a) for a in db.session.scalars(query)]
    db.session.add(enrolment)
    db.session.flush()
    return 1


def _enrol_goulidons(family: Household, month: date, today: date) -> int:
    child = _children(family).get(GOULIDONS_CHILD)
    if child is None:
        return 0
    names = ("Mercredi journée", "Vacances journée")
    created = 0
    # Last month's school year (its bookings) and this one (its calendar).
    for day in {month, today}:
        created += _enrol(family, child, "goulidons", day, names)
    return created


# --- A family under direct debit --------------------------------------------------------------


def _debit_family(month: date, today: date) -> tuple[Household | None, int]:
    """Dominique Bernard and Sacha: the canteen, paid by SEPA direct debit."""
    from citoyens.billing.mandates import sign_mandate
    from citoyens.billing.models import Mandate
    from citoyens.demo import parent_account
    from citoyens.households.demo import ELEMENTARY
    from citoyens.services.models import School

    created = 0
    household = db.session.scalar(select(Household).where(Household.external_ref == DEBIT_REF))
    if household is None:
        school = db.session.scalar(select(School).where(School.name == ELEMENTARY))
        household = Household(
            external_ref=DEBIT_REF,
            address_line="3 place de l'Exemple",
            postcode="49290",
            city="Chalonnes-sur-Loire",
            family_quotient=1200,
        )
        adult = Person(
            civility="M.",
            first_name="Dominique",
            last_name="Bernard",
            birth_date=date(1985, 6, 2),
            email=DEBIT_FAMILY[0],
            mobile_phone="+33261910003",
        )
        child = Person(
            first_name="Sacha",
            last_name="Bernard",
            birth_date=date(2018, 3, 14),
            sex="M",
            school_id=school.id if school else None,
            class_level="CE1",
        )
        household.memberships += [
            HouseholdMember(person=adult, role="adult"),
            HouseholdMember(person=child, role="child"),
        ]
        db.session.add(parent_account(DEBIT_FAMILY, household, adult))
        db.session.flush()
        created += 5
    child = _children(household).get("Sacha")
    if child is not None:
        for day in {month, today}:
            created += _enrol(household, child, "restauration", day)
    has_mandate = db.session.scalar(
        select(Mandate.id).where(Mandate.household_id == household.id).limit(1)
    )
    if has_mandate is None:
        # Signed before last month: last month's invoice is the first it pays.
        sign_mandate(
            household.id,
            holder_name="Dominique Bernard",
            iban=DEBIT_IBAN,
            bic=None,
            actor=None,
            on=month - timedelta(days=10),
        )
        created += 1
    return household, created


# --- A document to review ---------------------------------------------------------------------


def _demo_pdf(title: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    pdf.multi_cell(
        0,
        10,
        f"{title}\n\nDocument de démonstration (fictif).".encode("latin-1", "replace").decode(
            "latin-1"
        ),
    )
    return bytes(pdf.output())


def _document_to_review(family: Household) -> int:
    from citoyens.documents.models import Document, DocumentType
    from citoyens.documents.operations import upload_document
    from citoyens.documents.uploads import check_upload

    if db.session.scalar(select(Document.id).where(Document.household_id == family.id).limit(1)):
        return 0
    doc_type = db.session.scalar(
        select(DocumentType).where(DocumentType.code == "responsabilite-civile")
    )
    # Hugo's: Léa's documents are left for the visitor (tests/test_browser_enrolment.py).
    child = _children(family).get("Hugo")
    if doc_type is None or child is None:
        return 0
    checked = check_upload(
        _demo_pdf("Attestation d'assurance responsabilité civile"),
        "attestation-responsabilite-civile.pdf",
    )
    person = child if doc_type.scope == "child" else None
    upload_document(
        household_id=family.id, doc_type=doc_type, person=person, checked=checked, actor=None
    )
    return 1


# --- Last month: bookings, attendance, invoices -----------------------------------------------


def _last_month_bookings(households: list[Household], month: date) -> int:
    """Each child booked on every day of last month it is enrolled for, then the
    attendance as staff took it: present, but one absence without a certificate."""
    from citoyens.reservations.attendance import set_attendance
    from citoyens.reservations.demo import book_entitled_days
    from citoyens.reservations.models import ActivityDay, Booking

    last = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    created = 0
    for household in households:
        child_ids = [child.id for child in _children(household).values()]
        already = db.session.scalar(
            select(Booking.id)
            .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
            .where(
                Booking.household_id == household.id,
                ActivityDay.day >= month,
                ActivityDay.day <= last,
            )
            .limit(1)
        )
        if already is not None or not child_ids:
            continue
        book_entitled_days(household.id, child_ids, month, last, staff=True)
        bookings = db.session.scalars(
            select(Booking)
            .join(ActivityDay, ActivityDay.id == Booking.activity_day_id)
            .where(
                Booking.household_id == household.id,
                Booking.status == "booked",
                ActivityDay.day >= month,
                ActivityDay.day <= last,
            )
            .order_by(ActivityDay.day, Booking.id)
        ).all()
        for index, booking in enumerate(bookings):
            set_attendance(booking, "absent" if index == 3 else "present", actor=None)
        created += len(bookings)
    return created


def _overdue_invoice(family: Household, today: date) -> int:
    """The demo family's invoice of three months ago, issued early in the month after it
    (so due a month or more ago) and left unpaid; only while that month has no invoice."""
    from citoyens.billing.invoice_run import issue_month
    from citoyens.billing.models import Invoice
    from citoyens.forms import PARIS
    from citoyens.reservations.demo import DEMO_ENROLMENTS

    month = first_of_previous_month(first_of_previous_month(first_of_previous_month(today)))
    if db.session.scalar(select(Invoice.id).where(Invoice.month == month).limit(1)):
        return 0
    created = 0
    children = _children(family)
    for name, codes in DEMO_ENROLMENTS.items():
        if name in children:
            for code in codes:  # that month's school year may be the previous one
                created += _enrol(family, children[name], code, month)
    created += _enrol_goulidons(family, month, month)
    created += _last_month_bookings([family], month)
    db.session.flush()
    issued_on = (month + timedelta(days=32)).replace(day=3)
    result = issue_month(month, today=issued_on)
    # Dated the day it stands for (the run stamps the real time): 09:00 in Paris.
    stamp = datetime.combine(issued_on, time(9), tzinfo=PARIS)
    for issued in result.issued:
        db.session.get(Invoice, issued.id).issued_at = stamp
    db.session.flush()
    return created + result.count


def _send_reminders(today: date) -> int:
    """The reminders due today, as the morning job sends them (the overdue invoice's)."""
    from citoyens.billing.reminders import send_due_reminders

    return send_due_reminders(today).count


def _issue_invoices(month: date, today: date) -> int:
    """Last month's invoice run, as staff would have started it (only while none exists)."""
    from citoyens.billing.invoice_run import issue_month
    from citoyens.billing.models import Invoice

    if db.session.scalar(select(Invoice.id).where(Invoice.month == month).limit(1)):
        return 0
    return issue_month(month, today=today).count
