"""« Fermer mon compte »: a family asks, an administrator decides.

The family's request (kind "account_closure", tied to no service: administrators only)
carries, for staff, an internal note of what the household still owes. Accepting it
closes the household: `closed_at` set, every account of it deactivated (their sessions
and remember-me cookies end), its coming bookings cancelled. Invoices, credit notes and
payments stay (accounting records, kept 10 years), and so does whatever is still due:
the family is told it stays payable. The retention purge (`citoyens.retention`) deletes
the rest of its personal data RETENTION_CLOSED_DAYS later.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select, update

from citoyens import audit
from citoyens.accounts.models import User
from citoyens.billing.money import euros
from citoyens.database import utcnow
from citoyens.documents.rules import today_in_paris
from citoyens.extensions import db
from citoyens.households.models import Household
from citoyens.requests import operations as requests_ops
from citoyens.requests.models import OPEN_STATUSES, Request
from citoyens.reservations.models import Booking

KIND = "account_closure"
TITLE = "Fermeture du compte famille"


class ClosureError(ValueError):
    """The French reason a closure cannot be asked for or done."""


@dataclass
class Dues:
    """What the household still owes: invoices left to pay, and awaiting direct debit."""

    numbers: list[str]
    to_pay_cents: int
    debit_cents: int

    @property
    def any(self) -> bool:
        return bool(self.to_pay_cents or self.debit_cents)

    def text(self) -> str:
        if not self.any:
            return "Aucune somme restant due."
        parts = []
        if self.to_pay_cents:
            parts.append(f"{euros(self.to_pay_cents)} à payer")
        if self.debit_cents:
            parts.append(f"{euros(self.debit_cents)} en attente de prélèvement")
        numbers = f" (factures {', '.join(self.numbers)})" if self.numbers else ""
        return f"Restent dus : {' et '.join(parts)}{numbers}."


def dues_of(household_id: int) -> Dues:
    """The household's amounts still due, from its billing statement (a few queries)."""
    from citoyens.billing.rules import household_statement

    statement = household_statement(household_id, today_in_paris())
    numbers = [
        row.invoice.number
        for row in statement.rows
        if row.open_cents > 0 or row.invoice.status == "direct_debit"
    ]
    return Dues(sorted(numbers), statement.balance_cents, statement.debit_cents)


def open_closure(household_id: int) -> Request | None:
    return db.session.scalar(
        select(Request).where(
            Request.household_id == household_id,
            Request.kind == KIND,
            Request.status.in_(OPEN_STATUSES),
        )
    )


def ask_closure(user, message: str | None = None) -> Request:
    """The family asks to close its account: a request to administrators, with an internal
    note of what is still due. Flushes; the caller commits (an IntegrityError means a
    concurrent request won: one open closure per household)."""
    household_id = user.household_id
    if open_closure(household_id) is not None:
        raise ClosureError("Votre demande de fermeture est déjà en cours de traitement.")
    request = requests_ops.open_request(
        KIND, household_id, TITLE, actor=user, message=(message or "").strip() or None
    )
    requests_ops.add_message(
        request,
        f"Au moment de la demande — {dues_of(household_id).text()}",
        actor=None,
        internal=True,
    )
    tell_town_hall(request)
    return request


def tell_town_hall(request: Request) -> None:
    from citoyens.mail import absolute_url, send_mail

    for email in requests_ops.service_recipients(request):
        send_mail(
            "account-closure-requested",
            email,
            "Demande de fermeture d'un compte famille",
            "account_closure_requested",
            link=absolute_url("admin.request", request_id=request.id),
        )


@requests_ops.on_decision(KIND)
def decide_closure(request: Request, accepted: bool, actor) -> None:
    if not getattr(actor, "is_admin", False):
        raise requests_ops.RequestError(
            "Seul un administrateur peut décider de la fermeture d'un compte famille."
        )
    if accepted:
        close_household(request.household_id, actor=actor, request=request)


def close_household(household_id: int, *, actor, request: Request | None = None) -> Dues:
    """Close the household: accounts off (sessions ended), coming bookings cancelled,
    the family told what stays due. Flushes; the caller commits."""
    from citoyens.reservations.operations import cancel_days

    closed = db.session.execute(
        update(Household)
        .where(Household.id == household_id, Household.closed_at.is_(None))
        .values(closed_at=utcnow())
        .execution_options(synchronize_session=False)
    ).rowcount
    if not closed:
        raise requests_ops.RequestError("Ce compte famille est déjà fermé.")
    coming = db.session.execute(
        select(Booking.child_id, Booking.activity_day_id).where(
            Booking.household_id == household_id,
            Booking.status.in_(("booked", "waiting")),
            Booking.day >= today_in_paris(),
        )
    ).all()
    by_child: dict[int, list[int]] = defaultdict(list)
    for child_id, day_id in coming:
        by_child[child_id].append(day_id)
    for child_id, day_ids in by_child.items():  # one call per child: a family has a few
        cancel_days(household_id, child_id, day_ids, actor=actor, staff=True, note="Compte fermé")
    dues = dues_of(household_id)
    users = list(db.session.scalars(select(User).where(User.household_id == household_id)))
    _tell_family([u for u in users if u.active], dues)
    for user in users:
        user.active = False
        user.end_all_sessions()
    if request is not None:
        requests_ops.add_message(
            request,
            f"Compte fermé : {len(users)} accès désactivé(s), {len(coming)} réservation(s) "
            f"à venir annulée(s). {dues.text()}",
            actor=actor,
            internal=True,
        )
    db.session.flush()
    audit.record("household.closed", actor=actor, target=f"household:{household_id}")
    return dues


def _tell_family(users: list[User], dues: Dues) -> None:
    from citoyens.mail import send_mail

    for user in users:
        send_mail(
            "account-closed",
            user.email,
            "Votre compte famille est fermé",
            "account_closed",
            user=user,
            dues_text=dues.text() if dues.any else None,
        )
