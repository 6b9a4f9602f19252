"""Prélèvement automatique: SEPA mandates (bank details checked in billing/bank_details.py).

- `first_month` is the month of the next invoice to be issued for the household.
  Invoices are issued at the start of a month for the month before (à terme échu), so it
  is the previous month when its invoice has not been issued yet for this household, else
  the current month (in general: the first month from the previous one on without an
  invoice for the household). The invoice run debits a household's invoice of month M
  when its active mandate has `first_month <= M`; invoices already issued stay to pay.
- One active mandate per household (a partial unique index). Revoking it stops the
  invoices not issued yet; the invoices already marked for direct debit but not exported
  to the bank go back to "issued" (à payer), so the family can pay them by card.
  Those already in a file sent to the bank are not touched (the family's bank can still
  refuse or refund them).

Functions flush and never commit: callers run them inside `write_transaction`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel.numbers import format_currency
from flask import current_app
from sqlalchemy import select, update

from citoyens import audit, crypto
from citoyens.billing import creditor_id
from citoyens.billing.bank_details import (
    MandateError,
    _unused_rum,
    holder_problem,
    normalise_holder,
    parse_iban,
    resolve_bic,
)
from citoyens.billing.models import (
    Invoice,
    Mandate,
)
from citoyens.billing.months import of_month
from citoyens.core import settings
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.forms import PARIS, today_in_paris
from citoyens.mail import absolute_url
from citoyens.transactions import after_commit

log = logging.getLogger("citoyens.sepa")


SIGNING_UNAVAILABLE = (
    "Le prélèvement automatique ne peut pas être mis en place pour le moment "
    "(configuration du portail incomplète). Réessayez plus tard ou contactez la mairie."
)


ALREADY_ACTIVE = (
    "Un mandat de prélèvement est déjà actif pour votre foyer. Pour changer de compte, "
    "révoquez-le puis signez-en un nouveau."
)


NO_ACTIVE = "Votre foyer n'a pas de mandat de prélèvement actif."


def today() -> date:
    """The clock of the direct-debit rules (Europe/Paris). Tests patch this function."""
    return today_in_paris()


def format_euros(cents: int | None) -> str:
    """1230 → "12,30 €" (Decimal, never float)."""
    if cents is None:
        return ""
    return format_currency(Decimal(int(cents)).scaleb(-2), "EUR", locale="fr_FR")


def creditor() -> dict[str, str]:
    """The SEPA creditor: the commune's settings over the environment's (core.settings)."""
    config = settings.current()
    return {
        "name": config["SEPA_CREDITOR_NAME"],
        "iban": config["SEPA_CREDITOR_IBAN"],
        "bic": config["SEPA_CREDITOR_BIC"],
        "id": creditor_id.normalise(config["SEPA_CREDITOR_ID"]),
    }


def prenotification_days() -> int:
    """Days between the family being told of a debit and the debit (SEPA pre-notification)."""
    return max(1, int(current_app.config.get("SEPA_PRENOTIFICATION_DAYS", 14)))


def prenotification_text(days: int | None = None) -> str:
    days = days or prenotification_days()
    return (
        "Vous serez informé du montant et de la date de chaque prélèvement au moins "
        f"{days} jour{'s' if days > 1 else ''} avant, par votre facture."
    )


def consent_text(creditor_name: str | None = None) -> str:
    """The wording of a French SEPA CORE mandate (the one banks print on their forms), with
    the pre-notification the commune commits to."""
    name = creditor_name or creditor()["name"]
    return (
        f"En signant ce formulaire de mandat, vous autorisez (A) {name} à envoyer des "
        "instructions à votre banque pour débiter votre compte, et (B) votre banque à débiter "
        f"votre compte conformément aux instructions de {name}. Vous bénéficiez du droit "
        "d'être remboursé par votre banque selon les conditions décrites dans la convention "
        "que vous avez passée avec elle. Une demande de remboursement doit être présentée "
        "dans les 8 semaines suivant la date de débit de votre compte pour un prélèvement "
        "autorisé et au plus tard dans les 13 mois en cas de prélèvement non autorisé. Vos "
        "droits concernant le présent mandat sont expliqués dans un document que vous pouvez "
        "obtenir auprès de votre banque. " + prenotification_text()
    )


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def parse_month(value: str | None) -> date | None:
    """ "2026-09" → date(2026, 9, 1); anything else → None."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", (value or "").strip())
    if not match:
        return None
    year, month = int(match[1]), int(match[2])
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        return None
    return date(year, month, 1)


def first_month_for(household_id: int, on: date | None = None) -> date:
    """The month of the next invoice to be issued for the household (see the module's
    docstring): the previous month if it has no invoice yet, else the first later month
    without one (in practice the current month)."""
    month = add_months(month_start(on or today()), -1)
    issued = set(
        db.session.scalars(
            select(Invoice.month).where(
                Invoice.household_id == household_id,
                Invoice.kind == "invoice",
                Invoice.month >= month,
            )
        )
    )
    while month in issued:
        month = add_months(month, 1)
    return month


def active_mandate(household_id: int) -> Mandate | None:
    """The household's mandate in force, or None."""
    return db.session.scalar(
        select(Mandate).where(Mandate.household_id == household_id, Mandate.revoked_at.is_(None))
    )


def planned_debits(household_id: int) -> list[Invoice]:
    """The household's invoices waiting for the next file to the bank."""
    return list(
        db.session.scalars(
            select(Invoice)
            .where(Invoice.household_id == household_id, Invoice.status == "direct_debit")
            .order_by(Invoice.month)
        )
    )


def signed_on(mandate: Mandate) -> date:
    """The signature date as the family saw it (Paris)."""
    return mandate.signed_at.astimezone(PARIS).date()


def sign_mandate(
    household_id: int,
    *,
    holder_name: str,
    iban: str,
    bic: str | None,
    actor,
    on: date | None = None,
) -> Mandate:
    """A new mandate for the household; MandateError when one is active or a detail is
    wrong. The audit row and the e-mail carry the RUM, never the IBAN."""
    holder = normalise_holder(holder_name)
    problem = holder_problem(holder)
    if problem:
        raise MandateError(problem, "holder_name")
    parsed = parse_iban(iban)
    bic_code = resolve_bic(parsed, bic)
    if active_mandate(household_id) is not None:
        raise MandateError(ALREADY_ACTIVE)
    try:
        crypto.check_keys()  # the IBAN is stored encrypted: no key, no mandate
    except crypto.EncryptionKeyError as exc:
        log.error("mandate refused: %s", exc)
        raise MandateError(SIGNING_UNAVAILABLE) from None
    on = on or today()
    mandate = Mandate(
        household_id=household_id,
        rum=_unused_rum(household_id, on),
        holder_name=holder,
        iban=parsed.compact,
        bic=bic_code,
        signed_at=utcnow(),
        signed_by_id=getattr(actor, "id", None),
        first_month=first_month_for(household_id, on),
    )
    db.session.add(mandate)
    db.session.flush()
    audit.record(
        "mandate.signed",
        actor=actor,
        target=f"mandate:{mandate.id}",
        details=f"household:{household_id} rum:{mandate.rum} "
        f"first_month:{mandate.first_month:%Y-%m}",
    )
    mandate_id = mandate.id
    after_commit(lambda: _mail_signed(mandate_id))
    return mandate


@dataclass
class Revocation:
    mandate_id: int
    rum: str
    reverted: list[str]  # numbers of the invoices back to "issued"


def revoke_mandate(household_id: int, *, actor) -> Revocation:
    """End the household's active mandate now. Invoices planned for direct debit and not
    yet sent to the bank go back to "issued" (à payer, payable by card)."""
    row = db.session.execute(
        update(Mandate)
        .where(Mandate.household_id == household_id, Mandate.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(Mandate.id, Mandate.rum)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        raise MandateError(NO_ACTIVE)
    mandate_id, rum = row
    reverted = list(
        db.session.scalars(
            update(Invoice)
            .where(Invoice.mandate_id == mandate_id, Invoice.status == "direct_debit")
            .values(status="issued", mandate_id=None, debit_on=None)
            .returning(Invoice.number)
            .execution_options(synchronize_session=False)
        )
    )
    audit.record(
        "mandate.revoked",
        actor=actor,
        target=f"mandate:{mandate_id}",
        details=f"household:{household_id} rum:{rum} invoices_back_to_pay:{len(reverted)}",
    )
    return Revocation(mandate_id, rum, sorted(reverted))


def _recipients(household_id: int) -> list[str]:
    from citoyens.requests.operations import family_recipients

    return family_recipients(household_id)


def _mail_signed(mandate_id: int) -> None:
    from citoyens.mail import send_mail

    mandate = db.session.get(Mandate, mandate_id)
    settings = creditor()
    for email in _recipients(mandate.household_id):
        send_mail(
            "mandate-signed",
            email,
            "Votre mandat de prélèvement SEPA est signé",
            "mandate_signed",
            rum=mandate.rum,
            masked_iban=mandate.masked_iban,
            holder_name=mandate.holder_name,
            bic=mandate.bic,
            signed_on=signed_on(mandate),
            first_month=of_month(mandate.first_month),
            creditor_name=settings["name"],
            creditor_id=settings["id"],
            link=absolute_url("billing.mandate"),
        )
