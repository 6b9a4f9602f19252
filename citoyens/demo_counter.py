"""The demo's counter payment (issue 14): a third family, Morgane Lefèvre and Noé, has
two months invoiced (two months ago and last month) and paid both with one cheque at the
town hall counter. Staff see the receipt in « Paiements au guichet », the family sees
« Chèque n° … reçu le … » and downloads its receipt. Called by demo_history after last
month's run; idempotent (each part only while missing).
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from citoyens.extensions import db
from citoyens.households.models import Household, HouseholdMember, Person

COUNTER_FAMILY = ("guichet@example.org", "citoyens-demo-parent")
COUNTER_REF = "DEMO-0003"
CHEQUE_NUMBER = "0004521"
CHEQUE_BANK = "Banque de démonstration"


def counter_family(month: date, today: date) -> tuple[Household | None, int]:
    """The family, its account and Noé's enrolments (canteen, APS, Goulidons) for the
    school years of the two months billed and of today."""
    from citoyens.demo import parent_account
    from citoyens.demo_history import _children, _enrol
    from citoyens.households.demo import ELEMENTARY
    from citoyens.services.models import School

    created = 0
    household = db.session.scalar(select(Household).where(Household.external_ref == COUNTER_REF))
    if household is None:
        school = db.session.scalar(select(School).where(School.name == ELEMENTARY))
        household = Household(
            external_ref=COUNTER_REF,
            address_line="8 rue du Guichet",
            postcode="49290",
            city="Chalonnes-sur-Loire",
            family_quotient=650,
        )
        adult = Person(
            civility="Mme",
            first_name="Morgane",
            last_name="Lefèvre",
            birth_date=date(1988, 2, 11),
            email=COUNTER_FAMILY[0],
            mobile_phone="+33261910004",
        )
        child = Person(
            first_name="Noé",
            last_name="Lefèvre",
            birth_date=date(2017, 9, 5),
            sex="M",
            school_id=school.id if school else None,
            class_level="CM1",
        )
        household.memberships += [
            HouseholdMember(person=adult, role="adult"),
            HouseholdMember(person=child, role="child"),
        ]
        db.session.add(parent_account(COUNTER_FAMILY, household, adult))
        db.session.flush()
        created += 5
    child = _children(household).get("Noé")
    if child is not None:
        earlier = previous_month(month)
        for day in {earlier, month, today}:
            for code in ("restauration", "aps"):
                created += _enrol(household, child, code, day)
            created += _enrol(household, child, "goulidons", day, ("Vacances journée",))
    return household, created


def previous_month(month: date) -> date:
    return (month - timedelta(days=1)).replace(day=1)


def cheque_over_two_months(household: Household | None, month: date, today: date) -> int:
    """Bookings and invoices of the month before last (last month's come with the other
    families'), then one cheque for what both invoices owe, recorded at the counter."""
    from citoyens.billing.counter import record_receipt
    from citoyens.billing.counter_list import open_invoices
    from citoyens.billing.counter_models import CounterReceipt
    from citoyens.billing.invoice_run import issue_month
    from citoyens.demo_history import _last_month_bookings

    if household is None:
        return 0
    if db.session.scalar(
        select(CounterReceipt.id).where(CounterReceipt.household_id == household.id).limit(1)
    ):
        return 0
    earlier = previous_month(month)
    created = _last_month_bookings([household], earlier)
    db.session.flush()
    # Each run bills only the households not invoiced yet for that month.
    created += issue_month(earlier, today=today).count + issue_month(month, today=today).count
    owed = open_invoices(household.id)
    if not owed:
        return created
    record_receipt(
        household.id,
        method="cheque",
        amount_cents=sum(item.due_cents for item in owed),
        received_on=today,
        invoice_ids=[item.invoice.id for item in owed],
        reference=CHEQUE_NUMBER,
        issuer=CHEQUE_BANK,
        note="Chèque remis au guichet de la mairie",
        today=today,
    )
    db.session.flush()
    return created + 1 + len(owed)
