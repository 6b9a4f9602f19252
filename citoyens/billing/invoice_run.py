"""The monthly invoice run (DOMAIN.md "Billing"): issue the invoices of a month that is over.

What each invoice billed is recorded per booking (`BilledDay`); a billed day that stops
being billable becomes a credit line on the household's next invoice, and the household's
credit balance is deducted from it (billing/corrections.py).

Each invoice takes its number (billing/numbers.py) in a savepoint with its insert. The
partial unique index (one invoice per household and month) makes a re-run, even a
concurrent one, add nothing: the loser's savepoint rolls back, its number with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.accounts.models import User
from citoyens.billing import corrections
from citoyens.billing.credits import credit_balance
from citoyens.billing.invoice_mail import mail_invoices
from citoyens.billing.models import (
    Invoice,
    InvoiceLine,
    Mandate,
)
from citoyens.billing.month_plan import invoiced_households, plan_month
from citoyens.billing.months import BillingError, check_month_is_over, debit_date, debit_warning
from citoyens.billing.numbers import format_number, take_number
from citoyens.billing.pricing import HouseholdBill, MissingTariff
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households.models import Household, HouseholdMember, Person


@dataclass
class IssuedInvoice:
    id: int
    number: str
    household_id: int
    addressee: str
    total_cents: int
    paperless: bool
    status: str
    debit_on: date | None = None
    mailed: bool = False


@dataclass
class RunResult:
    month: date
    issued: list[IssuedInvoice] = field(default_factory=list)
    missing_tariffs: list[MissingTariff] = field(default_factory=list)
    already_invoiced: int = 0  # households skipped: their invoice of the month existed
    emailed: int = 0
    not_emailed: int = 0  # paperless, but no account address to write to
    debit_warning: str | None = None  # the debit day postponed for the pre-notification

    @property
    def count(self) -> int:
        return len(self.issued)

    @property
    def total_cents(self) -> int:
        return sum(invoice.total_cents for invoice in self.issued)

    @property
    def paper(self) -> list[IssuedInvoice]:
        return [invoice for invoice in self.issued if not invoice.paperless]

    @property
    def paperless(self) -> list[IssuedInvoice]:
        return [invoice for invoice in self.issued if invoice.paperless]


@dataclass
class Addressee:
    name: str
    address: str | None
    family_quotient: int | None
    paperless: bool


def addressees(household_ids: Iterable[int]) -> dict[int, Addressee]:
    """Who each invoice is made out to: the first account holder, else the first adult;
    the household's address, QF and paperless choice as they are now. Three queries."""
    ids = set(household_ids)
    if not ids:
        return {}
    holders: dict[int, str] = {}
    for household_id, first_name, last_name in db.session.execute(
        select(User.household_id, User.first_name, User.last_name)
        .where(User.household_id.in_(ids), User.role == "parent")
        .order_by(User.id)
    ):
        holders.setdefault(household_id, f"{first_name} {last_name}")
    for household_id, first_name, last_name in db.session.execute(
        select(HouseholdMember.household_id, Person.first_name, Person.last_name)
        .join(Person, Person.id == HouseholdMember.person_id)
        .where(
            HouseholdMember.household_id.in_(ids),
            HouseholdMember.role == "adult",
            HouseholdMember.left_at.is_(None),
        )
        .order_by(HouseholdMember.id)
    ):
        holders.setdefault(household_id, f"{first_name} {last_name}")
    result = {}
    for household in db.session.scalars(select(Household).where(Household.id.in_(ids))):
        town = " ".join(part for part in (household.postcode, household.city) if part)
        parts = [household.address_line, household.address_extra, town]
        result[household.id] = Addressee(
            name=holders.get(household.id, f"Foyer n° {household.id}")[:255],
            address="\n".join(part for part in parts if part) or None,
            family_quotient=household.family_quotient,
            paperless=household.paperless_invoices,
        )
    return result


def active_mandates(household_ids: Iterable[int], month: date) -> dict[int, Mandate]:
    """The mandate that pays each household's invoice of `month`, if any."""
    ids = set(household_ids)
    if not ids:
        return {}
    return {
        mandate.household_id: mandate
        for mandate in db.session.scalars(
            select(Mandate).where(
                Mandate.household_id.in_(ids),
                Mandate.revoked_at.is_(None),
                Mandate.first_month <= month,
            )
        )
    }


def _is_month_duplicate(error: IntegrityError) -> bool:
    text = str(error.orig)
    return "uq_invoices_household_month" in text or (
        "invoices.household_id" in text and "invoices.month" in text
    )


def _insert_invoice(
    bill: HouseholdBill, month: date, today: date, who: Addressee, mandate: Mandate | None
) -> Invoice | None:
    """Insert one invoice with its number, in a savepoint: None when a concurrent run
    billed this household for the month first (its number is given back with it).
    Raises CorrectionRaced (savepoint rolled back) when a concurrent run credited some of
    its days first."""
    config = current_app.config
    try:
        with db.session.begin_nested():
            if bill.credit_lines or bill.balance_cents > 0:
                # The balance as it is now, no other run or refund taking from it meanwhile.
                corrections.lock_household(bill.household_id)
                bill.balance_cents = credit_balance(bill.household_id)
            if bill.total_cents == 0:
                mandate = None  # nothing to pay, nothing to debit
            drafts = bill.lines + bill.credit_lines + corrections.balance_lines(bill)
            sequence = take_number(today.year)
            invoice = Invoice(
                household_id=bill.household_id,
                kind="invoice",
                year=today.year,
                sequence=sequence,
                number=format_number(today.year, sequence),
                month=month,
                issued_at=utcnow(),
                due_on=today + timedelta(days=config["INVOICE_DUE_DAYS"]),
                total_cents=bill.total_cents,
                status=(
                    "paid" if bill.total_cents == 0 else "direct_debit" if mandate else "issued"
                ),
                paperless=who.paperless,
                addressee=who.name,
                address=who.address,
                family_quotient=who.family_quotient,
                band_label=" / ".join(bill.band_labels)[:60] or None,
                mandate_id=mandate.id if mandate else None,
                debit_on=debit_date(month, today, config["DIRECT_DEBIT_DAY"]) if mandate else None,
            )
            invoice.lines = [
                InvoiceLine(
                    kind=line.kind,
                    child_id=line.child_id,
                    child_name=line.child_name[:120],
                    activity_id=line.activity_id,
                    label=line.label[:200],
                    unit_price_cents=line.unit_price_cents,
                    quantity=line.quantity,
                    amount_cents=line.amount_cents,
                    days=",".join(day.isoformat() for day in line.days) or None,
                )
                for line in drafts
            ]
            db.session.add(invoice)
            db.session.flush()
            corrections.record_invoice(invoice, bill, list(zip(drafts, invoice.lines, strict=True)))
    except IntegrityError as error:
        if not _is_month_duplicate(error):
            raise
        return None
    return invoice


def _issue_bill(
    bill: HouseholdBill, month: date, today: date, who: Addressee, mandate: Mandate | None
) -> Invoice | None | bool:
    """`_insert_invoice`, made again with fresh credit lines when a concurrent run (of
    another month) credited some of its days first. False: nothing left to issue."""
    for _attempt in range(5):
        try:
            return _insert_invoice(bill, month, today, who, mandate)
        except corrections.CorrectionRaced:
            fresh = corrections.pending_corrections([bill.household_id])
            bill.credit_lines = corrections.credit_lines(fresh.get(bill.household_id, []))
            if not bill.worth_issuing:
                return False
    raise BillingError("La facturation a été interrompue par une autre : relancez-la.")


def issue_month(
    month: date,
    actor=None,
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Issue the invoices of `month` (a past month) for every household with something to
    bill and no invoice of that month yet; then e-mail the paperless ones. `progress(done,
    total)` hears of each household handled (the job run's page shows it).

    Commits (through `write_transaction`): call it from a view, a command or a test, not
    inside a transaction of your own. Running a month again issues nothing new.
    """
    from citoyens.transactions import after_commit, write_transaction

    month = month.replace(day=1)
    today = today or today_in_paris()
    check_month_is_over(month, today)

    def work() -> RunResult:
        plan = plan_month(month)
        result = RunResult(month, missing_tariffs=plan.missing_tariffs)
        result.already_invoiced = plan.already_invoiced
        ids = [bill.household_id for bill in plan.bills]
        who = addressees(ids)
        mandates = active_mandates(ids, month)
        invoiced_meanwhile: set[int] = set()
        for done, bill in enumerate(plan.bills):
            if progress is not None:
                progress(done, len(plan.bills))
            if bill.household_id in invoiced_meanwhile:
                result.already_invoiced += 1
                continue
            invoice = _issue_bill(
                bill, month, today, who[bill.household_id], mandates.get(bill.household_id)
            )
            if invoice is False:
                continue  # its credits went to another run's invoice: nothing left to issue
            if invoice is None:
                # A concurrent run of the month committed first (PostgreSQL: we waited for
                # its counter lock): what it billed is visible now, skip it at once.
                invoiced_meanwhile = set(db.session.scalars(invoiced_households(month)))
                result.already_invoiced += 1
                continue
            result.issued.append(
                IssuedInvoice(
                    invoice.id,
                    invoice.number,
                    invoice.household_id,
                    invoice.addressee,
                    invoice.total_cents,
                    invoice.paperless,
                    invoice.status,
                    invoice.debit_on,
                )
            )
        if progress is not None:
            progress(len(plan.bills), len(plan.bills))
        if any(invoice.status == "direct_debit" for invoice in result.issued):
            result.debit_warning = debit_warning(month, today)
        missing_days = sum(gap.days for gap in result.missing_tariffs)
        audit.record(
            "invoice.run",
            actor=actor,
            target=f"month:{month:%Y-%m}",
            details=f"issued:{result.count} total:{result.total_cents} "
            f"skipped:{result.already_invoiced} days_without_tariff:{missing_days}",
        )
        if result.paperless:
            after_commit(lambda: mail_invoices(result))
        return result

    return write_transaction(work)
