"""The monthly invoice run (DOMAIN.md "Billing"): issue the invoices of a month that is over.

What each invoice billed is recorded per booking (`BilledDay`); a billed day that stops
being billable becomes a credit line on the household's next invoice, and the household's
credit balance is deducted from it (billing/corrections.py).

The run goes through the households in batches of `BATCH_SIZE`, one transaction each:
the batch's invoices take their numbers at once (billing/numbers.py) and are inserted in
bulk with their lines; an invoice with credit lines or a credit balance takes its number
in a savepoint with its insert. The partial unique index (one invoice per household and
month) makes a re-run, even a concurrent one, add nothing: the loser's batch (or
savepoint) rolls back, its numbers with it. A run that stopped resumes after the last
household of its last committed batch (`JobRun.resume_after`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from citoyens import audit
from citoyens.accounts.models import User
from citoyens.billing import corrections
from citoyens.billing.credits import credit_balance
from citoyens.billing.invoice_mail import mail_invoices
from citoyens.billing.models import (
    BilledDay,
    Invoice,
    InvoiceLine,
    Mandate,
)
from citoyens.billing.month_plan import plan_month
from citoyens.billing.months import BillingError, check_month_is_over, debit_date, debit_warning
from citoyens.billing.numbers import format_number, take_number
from citoyens.billing.pricing import HouseholdBill, MissingTariff
from citoyens.bulk import insert_rows
from citoyens.core.models import JobRun
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.forms import today_in_paris
from citoyens.households.models import Household, HouseholdMember, Person


@dataclass(slots=True)
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


CHUNK = 5000  # ids bound in one IN list, far below the drivers' limits (65,535; 32,766)


def chunks(household_ids: Iterable[int], size: int = CHUNK) -> Iterator[list[int]]:
    """The ids, sorted, `size` at a time."""
    ids = sorted(set(household_ids))
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def addressees(household_ids: Iterable[int]) -> dict[int, Addressee]:
    """Who each invoice is made out to (see `_addressees`), CHUNK households a query."""
    found: dict[int, Addressee] = {}
    for ids in chunks(household_ids):
        found.update(_addressees(ids))
    return found


def _addressees(ids: list[int]) -> dict[int, Addressee]:
    """Who each invoice is made out to: the first account holder, else the first adult;
    the household's address, QF and paperless choice as they are now. Three queries."""
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
    found: dict[int, Mandate] = {}
    for ids in chunks(household_ids):
        for mandate in db.session.scalars(
            select(Mandate).where(
                Mandate.household_id.in_(ids),
                Mandate.revoked_at.is_(None),
                Mandate.first_month <= month,
            )
        ):
            found[mandate.household_id] = mandate
    return found


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


BATCH_SIZE = 500  # households per batch: one transaction, one commit


def issue_month(
    month: date,
    actor=None,
    today: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    *,
    run_id: int | None = None,
    resume_after: int | None = None,
) -> RunResult:
    """Issue the invoices of `month` (a past month) for every household with something to
    bill and no invoice of that month yet; e-mail the paperless ones.

    Households are taken in id order, `BATCH_SIZE` at a time: each batch is planned,
    numbered and inserted in one transaction (`_issue_batch`), which also records on the
    job run `run_id` how far the run got; its e-mails follow its commit. A run that
    stopped (a crash, a worker killed) is resumed with `resume_after`, the last household
    id of its last committed batch: nothing before it is planned again. Whatever happens,
    a household is billed once a month (the unique index) and the numbers stay gapless
    (taken in the batch's transaction). `progress(done, total)` hears of each batch, in
    households looked at.

    Commits (through `write_transaction`): call it from a view, a command or a test, not
    inside a transaction of your own. Running a month again issues nothing new.
    """
    from citoyens.transactions import write_transaction

    month = month.replace(day=1)
    today = today or today_in_paris()
    check_month_is_over(month, today)
    result = RunResult(month)
    missing: dict[tuple, MissingTariff] = {}
    cursor = resume_after or 0
    total = db.session.scalar(select(func.count(Household.id))) or 0
    done = db.session.scalar(select(func.count(Household.id)).where(Household.id <= cursor))
    if progress is not None:
        progress(done, total)
    while True:
        ids = db.session.scalars(
            select(Household.id)
            .where(Household.id > cursor)
            .order_by(Household.id)
            .limit(BATCH_SIZE)
        ).all()
        if not ids:
            break
        span = (ids[0], ids[-1])
        done = min(done + len(ids), total)
        batch = write_transaction(
            lambda span=span, done=done: _issue_batch(month, today, span, run_id, done, total)
        )
        result.issued += batch.issued
        result.already_invoiced += batch.already_invoiced
        result.emailed += batch.emailed
        result.not_emailed += batch.not_emailed
        for gap in batch.missing_tariffs:
            key = (gap.school_year_id, gap.activity_id, gap.band_label)
            if key in missing:
                missing[key].days += gap.days
                missing[key].households |= gap.households
            else:
                missing[key] = gap
        cursor = span[1]
        if progress is not None:
            progress(done, total)
    result.missing_tariffs = sorted(
        missing.values(), key=lambda m: (m.school_year_id, m.activity_name)
    )
    if any(invoice.status == "direct_debit" for invoice in result.issued):
        result.debit_warning = debit_warning(month, today)
    missing_days = sum(gap.days for gap in result.missing_tariffs)

    def record() -> None:
        audit.record(
            "invoice.run",
            actor=actor,
            target=f"month:{month:%Y-%m}",
            details=f"issued:{result.count} total:{result.total_cents} "
            f"skipped:{result.already_invoiced} days_without_tariff:{missing_days}",
        )

    write_transaction(record)
    return result


def _issue_batch(
    month: date, today: date, span: tuple[int, int], run_id: int | None, done: int, total: int
) -> RunResult:
    """Issue the invoices of the households with ids in `span` (both ends included), in
    the caller's transaction: the plain bills in bulk (`_insert_bills`), those with credit
    lines or a credit balance one by one (`_issue_bill`); note the run's progress; mail
    the paperless invoices after the commit. A concurrent run that billed one of them
    first makes the bulk insert fail: `write_transaction` rolls the batch back (its
    numbers with it) and plans it again, without that household."""
    from citoyens.transactions import after_commit

    plan = plan_month(month, span)
    batch = RunResult(month, missing_tariffs=plan.missing_tariffs)
    batch.already_invoiced = plan.already_invoiced
    ids = [bill.household_id for bill in plan.bills]
    who = addressees(ids)
    mandates = active_mandates(ids, month)
    plain = [bill for bill in plan.bills if not bill.credit_lines and bill.balance_cents <= 0]
    batch.issued += _insert_bills(plain, month, today, who, mandates)
    for bill in plan.bills:
        if bill.credit_lines or bill.balance_cents > 0:
            invoice = _issue_bill(
                bill, month, today, who[bill.household_id], mandates.get(bill.household_id)
            )
            if invoice is False:
                continue  # its credits went to another run's invoice: nothing left to issue
            if invoice is None:  # a concurrent run of the month billed it first
                batch.already_invoiced += 1
                continue
            batch.issued.append(
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
    if run_id is not None:
        db.session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(resume_after=span[1], done=done, total=total)
            .execution_options(synchronize_session=False)
        )
    if batch.paperless:
        after_commit(lambda: mail_invoices(batch))
    return batch


def line_row(invoice_id: int, line) -> dict:
    """The `invoice_lines` row of one line of a bill (bulk inserts: the run, bench-data)."""
    return {
        "invoice_id": invoice_id,
        "kind": line.kind,
        "child_id": line.child_id,
        "child_name": line.child_name[:120],
        "activity_id": line.activity_id,
        "label": line.label[:200],
        "unit_price_cents": line.unit_price_cents,
        "quantity": line.quantity,
        "amount_cents": line.amount_cents,
        "days": ",".join(day.isoformat() for day in line.days) or None,
    }


def _insert_bills(
    bills: list[HouseholdBill],
    month: date,
    today: date,
    who: dict[int, Addressee],
    mandates: dict[int, Mandate],
) -> list[IssuedInvoice]:
    """Insert the invoices of bills without credit (no credit line, no balance to deduct)
    with their lines and billed days: numbers taken at once (one UPDATE of the year's
    counter), three INSERTs of a fixed shape (`bulk.insert_rows`)."""
    if not bills:
        return []
    config = current_app.config
    first = take_number(today.year, count=len(bills))
    now = utcnow()
    due_on = today + timedelta(days=config["INVOICE_DUE_DAYS"])
    debit_on = debit_date(month, today, config["DIRECT_DEBIT_DAY"])
    rows = []
    for offset, bill in enumerate(bills):
        mandate = mandates.get(bill.household_id) if bill.total_cents else None
        addressee = who[bill.household_id]
        rows.append(
            {
                "household_id": bill.household_id,
                "kind": "invoice",
                "credit_for_id": None,
                "year": today.year,
                "sequence": first + offset,
                "number": format_number(today.year, first + offset),
                "month": month,
                "issued_at": now,
                "due_on": due_on,
                "total_cents": bill.total_cents,
                "status": (
                    "paid" if bill.total_cents == 0 else "direct_debit" if mandate else "issued"
                ),
                "paperless": addressee.paperless,
                "addressee": addressee.name,
                "address": addressee.address,
                "family_quotient": addressee.family_quotient,
                "band_label": " / ".join(bill.band_labels)[:60] or None,
                "mandate_id": mandate.id if mandate else None,
                "debit_on": debit_on if mandate else None,
            }
        )
    invoice_ids = insert_rows(Invoice.__table__, rows, returning_ids=True)
    line_rows, drafts = [], []
    for invoice_id, bill in zip(invoice_ids, bills, strict=True):
        for line in bill.lines:
            drafts.append((bill.household_id, line))
            line_rows.append(line_row(invoice_id, line))
    line_ids = insert_rows(InvoiceLine.__table__, line_rows, returning_ids=True)
    billed = [
        {
            "invoice_line_id": line_id,
            "booking_id": booking_id,
            "household_id": household_id,
            "day": day,
            "amount_cents": draft.unit_price_cents,
        }
        for (household_id, draft), line_id in zip(drafts, line_ids, strict=True)
        for day, booking_id in zip(draft.days, draft.booking_ids, strict=True)
        if booking_id is not None
    ]
    insert_rows(BilledDay.__table__, billed)
    return [
        IssuedInvoice(
            invoice_id,
            row["number"],
            row["household_id"],
            row["addressee"],
            row["total_cents"],
            row["paperless"],
            row["status"],
            row["debit_on"],
        )
        for invoice_id, row in zip(invoice_ids, rows, strict=True)
    ]
