"""Prélèvement automatique: SEPA mandates and the monthly pain.008.001.02 file.

Mandates
- The IBAN is checked with `schwifty`, national check digits included
  (`validate_bban=True`: for a French account, the RIB key). It is stored compact and
  upper case, encrypted at rest (citoyens.crypto; only the pain.008 export decrypts it),
  shown masked (`Mandate.masked_iban`) and never written to a log, an audit row or an
  e-mail. The BIC is the one typed (checked with `schwifty.BIC`) or, when left
  blank, the one schwifty knows for the IBAN's bank; without either the form asks for it.
- The RUM (référence unique du mandat) is "<COMMUNE>-<household id>-<yyyymmdd>-<random>",
  upper-case letters, digits and hyphens only, at most 35 characters; unique in the table.
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

Export (staff)
- Only invoices in status "direct_debit" are taken, each claimed by a conditional UPDATE
  (`status = 'direct_debit'` → "debited") in the exporting transaction, so an invoice
  is never exported twice, even by two exports at once. One file (DirectDebitBatch) per
  collection date: normally one a month, since the invoice run gives every invoice of a
  month the same `debit_on`. A planned date less than `MIN_LEAD_DAYS` away (the bank
  needs the file before the date) moves to the next possible weekday, and the invoice
  shows the new date.
- FRST for a mandate's first collection (no earlier item that was not rejected), RCUR
  after. Each invoice becomes a transaction for what is left to collect (its total less
  the credit notes that correct it and the payments not rejected; nothing left → not in
  the file), with its own end-to-end id, and a Payment (method "direct_debit",
  transaction_id = end-to-end id, paid_at = collection date at noon, Paris).
- The file is built by `sepaxml` and validated against the pain.008.001.02 XSD it ships;
  a file that does not validate rolls the whole export back.

Rejections (staff): the item and its payment get `rejected_at` and the reason, the invoice
goes back to "issued" (payable by card again) and the family is told by e-mail.

Functions flush and never commit: callers run them inside `write_transaction`.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from babel.numbers import format_currency
from flask import current_app
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import func, select, update
from text_unidecode import unidecode  # the transliteration sepaxml applies to names

from citoyens import audit, crypto
from citoyens.billing import creditor_id
from citoyens.billing.models import (
    DirectDebitBatch,
    DirectDebitItem,
    Invoice,
    Mandate,
    Payment,
)
from citoyens.billing.models import mask_iban as mask_iban  # re-exported: sepa.mask_iban
from citoyens.database import utcnow
from citoyens.extensions import db
from citoyens.formatting import month_fr
from citoyens.forms import PARIS, today_in_paris
from citoyens.mail import absolute_url
from citoyens.transactions import after_commit

log = logging.getLogger("citoyens.sepa")

SCHEMA = "pain.008.001.02"
RUM_MAX = 35
HOLDER_MAX = 70
# Days between the export and the earliest collection date the file may ask for.
MIN_LEAD_DAYS = 2

SIGNING_UNAVAILABLE = (
    "Le prélèvement automatique ne peut pas être mis en place pour le moment "
    "(configuration du portail incomplète). Réessayez plus tard ou contactez la mairie."
)
IBAN_INVALID = "Cet IBAN n'est pas valide : vérifiez les chiffres."
IBAN_NOT_SEPA = (
    "Cet IBAN n'est pas celui d'un compte de la zone SEPA : le prélèvement n'est pas possible."
)
BIC_INVALID = "Ce BIC n'est pas valide : il compte 8 ou 11 caractères, par exemple AGRIFRPP."
BIC_REQUIRED = (
    "Nous ne trouvons pas le BIC de votre banque : saisissez celui indiqué sur votre RIB."
)
HOLDER_REQUIRED = "Le nom du titulaire du compte est obligatoire."
HOLDER_TOO_LONG = f"Le nom du titulaire ne peut pas dépasser {HOLDER_MAX} caractères."
HOLDER_CHARSET = (
    "Le nom du titulaire ne peut contenir que des lettres (accents compris), des chiffres, "
    "des espaces et les signes / - ? : ( ) . , ' +"
)
ALREADY_ACTIVE = (
    "Un mandat de prélèvement est déjà actif pour votre foyer. Pour changer de compte, "
    "révoquez-le puis signez-en un nouveau."
)
NO_ACTIVE = "Votre foyer n'a pas de mandat de prélèvement actif."

# The SEPA basic Latin character set (EPC), which every bank accepts.
_SEPA_TEXT = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]+")
_RUM_TEXT = re.compile(r"[A-Z0-9-]{1,35}")
# No 0/O or 1/I: a RUM read over the phone stays unambiguous.
_RUM_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

# SEPA reason codes (ISO 20022) a bank gives for a direct debit it returns, in French.
REJECTION_REASONS = {
    "AC01": "IBAN incorrect",
    "AC04": "Compte clôturé",
    "AC06": "Compte bloqué",
    "AG01": "Prélèvement interdit sur ce compte",
    "AM04": "Provision insuffisante",
    "MD01": "Pas de mandat valide",
    "MD06": "Remboursement demandé par le titulaire",
    "MD07": "Titulaire du compte décédé",
    "MS02": "Refusé par le titulaire du compte",
    "MS03": "Motif non communiqué par la banque",
    "SL01": "Opposition enregistrée par la banque",
}


class MandateError(ValueError):
    """A mandate that cannot be signed or revoked; the message is French. `field` names
    the form field it belongs to, when one does."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class DirectDebitError(ValueError):
    """An export or a rejection that cannot be done; the message is French."""


def today() -> date:
    """The clock of the direct-debit rules (Europe/Paris). Tests patch this function."""
    return today_in_paris()


def format_euros(cents: int | None) -> str:
    """1230 → "12,30 €" (Decimal, never float)."""
    if cents is None:
        return ""
    return format_currency(Decimal(int(cents)).scaleb(-2), "EUR", locale="fr_FR")


def decimal_amount(cents: int) -> str:
    """1230 → "12.30", as in the XML file."""
    return f"{cents // 100}.{cents % 100:02d}"


def creditor() -> dict[str, str]:
    config = current_app.config
    return {
        "name": config["SEPA_CREDITOR_NAME"],
        "iban": config["SEPA_CREDITOR_IBAN"],
        "bic": config["SEPA_CREDITOR_BIC"],
        "id": creditor_id.normalise(config["SEPA_CREDITOR_ID"]),
    }


def creditor_problem() -> str | None:
    """Why no pain.008 file may leave now (the ICS is invalid, or the demo one in
    production), in French; None when files may be exported."""
    config = current_app.config
    return creditor_id.problem(config["SEPA_CREDITOR_ID"], production=config["PRODUCTION"])


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


# --- IBAN, BIC, holder ------------------------------------------------------------------------


def compact_iban(value: str | None) -> str:
    """ "fr76 3000 6000 …" → "FR7630006000…": spaces (also no-break ones) out, upper case."""
    return re.sub(r"\s+", "", value or "").upper()


def parse_iban(value: str | None) -> IBAN:
    """The IBAN, checked (length, check digits, national check digits such as the French
    RIB key, SEPA zone); MandateError otherwise. The typed value is never in the error."""
    compact = compact_iban(value)
    if not (15 <= len(compact) <= 34 and compact.isascii() and compact.isalnum()):
        raise MandateError(IBAN_INVALID, "iban")
    try:
        iban = IBAN(compact, validate_bban=True)
    except SchwiftyException:
        raise MandateError(IBAN_INVALID, "iban") from None
    if not iban.in_sepa_zone:
        raise MandateError(IBAN_NOT_SEPA, "iban")
    return iban


def parse_bic(value: str | None) -> str:
    """A typed BIC, checked with schwifty: "agri frpp" → "AGRIFRPP"."""
    typed = re.sub(r"\s+", "", value or "").upper()
    if not (typed.isascii() and typed.isalnum()):
        raise MandateError(BIC_INVALID, "bic")
    try:
        return BIC(typed).compact
    except SchwiftyException:
        raise MandateError(BIC_INVALID, "bic") from None


def resolve_bic(iban: IBAN, entered: str | None) -> str:
    """The BIC typed (checked), else the one schwifty knows for the IBAN's bank."""
    if entered and entered.strip():
        return parse_bic(entered)
    try:
        derived = iban.bic
    except SchwiftyException:
        derived = None
    if derived is None:
        raise MandateError(BIC_REQUIRED, "bic")
    return derived.compact


def normalise_holder(value: str | None) -> str:
    """Composed accents (NFC), spaces collapsed, ends trimmed."""
    return " ".join(unicodedata.normalize("NFC", value or "").split())


def holder_problem(value: str) -> str | None:
    """Why this holder name cannot go in a SEPA file, or None. Accents are fine: the
    file carries the name transliterated ("Hélène" → "Helene")."""
    if not value:
        return HOLDER_REQUIRED
    if len(value) > HOLDER_MAX:
        return HOLDER_TOO_LONG
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        return HOLDER_CHARSET
    ascii_name = unidecode(value)
    if not _SEPA_TEXT.fullmatch(ascii_name) or not re.search(r"[A-Za-z]", ascii_name):
        return HOLDER_CHARSET
    return None


# --- RUM --------------------------------------------------------------------------------------


def rum_prefix() -> str:
    """ "Chalonnes-sur-Loire" → "CHALONNES": the commune's first word, ASCII upper case."""
    words = re.findall(r"[A-Z0-9]+", unidecode(current_app.config["COMMUNE_NAME"]).upper())
    return words[0][:9] if words else "MANDAT"


def new_rum(household_id: int, day: date) -> str:
    """ "CHALONNES-42-20260915-K7QX3M": at most 35 characters from [A-Z0-9-]."""
    tail = f"{household_id}-{day:%Y%m%d}-" + "".join(
        secrets.choice(_RUM_ALPHABET) for _ in range(6)
    )
    prefix = rum_prefix()[: max(0, RUM_MAX - len(tail) - 1)]
    rum = f"{prefix}-{tail}" if prefix else tail
    return rum[-RUM_MAX:]


def is_valid_rum(value: str) -> bool:
    return bool(_RUM_TEXT.fullmatch(value)) and not value.startswith("-")


def _unused_rum(household_id: int, day: date) -> str:
    for _ in range(10):
        rum = new_rum(household_id, day)
        if db.session.scalar(select(Mandate.id).where(Mandate.rum == rum)) is None:
            return rum
    raise AssertionError("no free RUM after 10 draws")  # 32**6 draws a day and household


# --- Months -----------------------------------------------------------------------------------


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def of_month(month: date) -> str:
    """ "de septembre 2026", "d'octobre 2026": French elides "de" before avril, août,
    octobre."""
    label = month_fr(month)
    return f"d'{label}" if label[:1] in "aeiouyàâéèê" else f"de {label}"


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


# --- Mandates ---------------------------------------------------------------------------------


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


# --- Export -----------------------------------------------------------------------------------


def default_debit_on(month: date) -> date:
    """DIRECT_DEBIT_DAY of the month after the billed one (the month of issue)."""
    day = min(max(int(current_app.config.get("DIRECT_DEBIT_DAY", 15)), 1), 28)
    return add_months(month, 1).replace(day=day)


def collection_date(invoice: Invoice, on: date) -> date:
    """The invoice's planned debit date, or the earliest weekday the bank can still take
    when that date is too close or past."""
    planned = invoice.debit_on or default_debit_on(invoice.month)
    earliest = on + timedelta(days=MIN_LEAD_DAYS)
    while earliest.weekday() >= 5:  # no collection on a Saturday or Sunday
        earliest += timedelta(days=1)
    return max(planned, earliest)


def _exportable_where(month: date) -> tuple:
    return (
        Invoice.month == month,
        Invoice.kind == "invoice",
        Invoice.status == "direct_debit",
        Invoice.total_cents > 0,
        Mandate.revoked_at.is_(None),
    )


def exportable_debits(month: date) -> list[tuple[Invoice, Mandate]]:
    """The month's invoices under direct debit that the next file will take."""
    rows = db.session.execute(
        select(Invoice, Mandate)
        .join(Mandate, Mandate.id == Invoice.mandate_id)
        .where(*_exportable_where(month))
        .order_by(Invoice.number)
    )
    return [(row[0], row[1]) for row in rows]


def blocked_count(month: date, exportable: int | None = None) -> int:
    """Invoices of the month in status "direct_debit" that the next file will not take (no
    mandate, a revoked one, or nothing left to collect): staff look at them one by one."""
    total = db.session.scalar(
        select(func.count(Invoice.id)).where(
            Invoice.month == month, Invoice.kind == "invoice", Invoice.status == "direct_debit"
        )
    )
    if exportable is None:
        rows = exportable_debits(month)
        due = amounts_due(invoice.id for invoice, _ in rows)
        exportable = sum(1 for invoice, _ in rows if due[invoice.id] > 0)
    return total - exportable


def amounts_due(invoice_ids) -> dict[int, int]:
    """What is left to collect on each invoice: its total less the credit notes that
    correct it and the payments not rejected (as `billing.payments.amount_left`, in three
    queries for the whole month)."""
    ids = list(set(invoice_ids))
    if not ids:
        return {}
    due = dict(
        db.session.execute(select(Invoice.id, Invoice.total_cents).where(Invoice.id.in_(ids))).all()
    )
    credited = db.session.execute(
        select(Invoice.credit_for_id, func.sum(func.abs(Invoice.total_cents)))
        .where(Invoice.credit_for_id.in_(ids), Invoice.kind == "credit")
        .group_by(Invoice.credit_for_id)
    ).all()
    paid = db.session.execute(
        select(Payment.invoice_id, func.sum(Payment.amount_cents))
        .where(Payment.invoice_id.in_(ids), Payment.rejected_at.is_(None))
        .group_by(Payment.invoice_id)
    ).all()
    for invoice_id, cents in (*credited, *paid):
        due[invoice_id] -= int(cents or 0)
    return due


def sequence_types(mandate_ids) -> dict[int, str]:
    """FRST for a mandate without an earlier collection that was not rejected, else RCUR."""
    ids = list(set(mandate_ids))
    if not ids:
        return {}
    collected = set(
        db.session.scalars(
            select(DirectDebitItem.mandate_id)
            .where(DirectDebitItem.mandate_id.in_(ids), DirectDebitItem.rejected_at.is_(None))
            .distinct()
        )
    )
    return {mandate_id: "RCUR" if mandate_id in collected else "FRST" for mandate_id in ids}


def end_to_end_id(invoice: Invoice) -> str:
    """ "F2026-000042-3FA9C1": the invoice number and a random part (≤ 35 characters)."""
    return f"{invoice.number[:27]}-{secrets.token_hex(3).upper()}"


def remittance(invoice: Invoice) -> str:
    """What the family reads on its bank statement (≤ 140 characters)."""
    commune = current_app.config["COMMUNE_NAME"]
    return f"Facture {invoice.number} {commune} {month_fr(invoice.month)}"[:140]


@dataclass
class Debit:
    invoice: Invoice
    mandate: Mandate
    sequence_type: str
    end_to_end_id: str
    amount_cents: int


IBANS_UNREADABLE = (
    "Les IBAN des mandats ne peuvent pas être déchiffrés avec la clé configurée "
    "(DATA_ENCRYPTION_KEYS) : aucun fichier n'a été créé et aucune facture modifiée. "
    "Ajoutez l'ancienne clé après la nouvelle, puis réessayez."
)


def mandate_ibans(mandate_ids) -> dict[int, str]:
    """The full IBANs of these mandates, decrypted (one query): for the pain.008 file only.
    DirectDebitError when the configured keys cannot open them."""
    ids = list(set(mandate_ids))
    try:
        query = select(Mandate.id, Mandate.iban).where(Mandate.id.in_(ids))
        return dict(db.session.execute(query).all())
    except (crypto.DecryptionError, crypto.EncryptionKeyError) as exc:
        log.error("pain.008 export refused: %s", exc)
        raise DirectDebitError(IBANS_UNREADABLE) from None


def build_pain008(debits: list[Debit], when: date) -> tuple[str, bytes]:
    """(message id, XML) of a pain.008.001.02 file, validated against the XSD."""
    from sepaxml import SepaDD

    settings = creditor()
    if creditor_problem():  # export_month checked already: never a file without a valid ICS
        raise DirectDebitError(creditor_id.INVALID)
    ibans = mandate_ibans(debit.mandate.id for debit in debits)
    config = {
        "name": settings["name"],
        "IBAN": settings["iban"],
        "BIC": settings["bic"],
        "batch": True,
        "creditor_id": settings["id"],
        "currency": "EUR",
        "instrument": "CORE",
    }
    try:
        sepa = SepaDD(config, schema=SCHEMA, clean=True)
        for debit in debits:
            sepa.add_payment(
                {
                    "name": debit.mandate.holder_name,
                    "IBAN": ibans[debit.mandate.id],
                    "BIC": debit.mandate.bic,
                    "amount": int(debit.amount_cents),
                    "type": debit.sequence_type,
                    "collection_date": when,
                    "mandate_id": debit.mandate.rum,
                    "mandate_date": signed_on(debit.mandate),
                    "description": remittance(debit.invoice),
                    "endtoend_id": debit.end_to_end_id,
                }
            )
        xml = sepa.export(validate=True)
    except Exception as exc:  # noqa: BLE001 - the message may quote an IBAN: never passed on
        cause = exc.__cause__ or exc
        log.error(
            "pain.008 file refused: %s at %s",
            type(cause).__name__,
            getattr(cause, "path", None) or "-",
        )
        raise DirectDebitError(
            "Le fichier de prélèvement n'a pas pu être créé (il ne respecte pas le format "
            "SEPA). Aucune facture n'a été modifiée. Vérifiez les coordonnées du créancier "
            "dans la configuration, puis réessayez."
        ) from None
    return sepa.msg_id, xml


@dataclass
class ExportResult:
    batch_ids: list[int]
    count: int
    total_cents: int


def export_month(month: date, *, actor, on: date | None = None) -> ExportResult:
    """The month's invoices under direct debit into new files, one per collection date.

    Invoices are claimed by a conditional UPDATE first: an invoice another export took
    meanwhile is left out, and a second export of the month adds nothing."""
    on = on or today()
    refusal = creditor_problem()
    if refusal:
        log.error("pain.008 export refused: SEPA_CREDITOR_ID is not a valid creditor id")
        raise DirectDebitError(refusal)
    rows = exportable_debits(month)
    due = amounts_due(invoice.id for invoice, _ in rows)
    # Nothing left to collect (a credit note or a payment at the counter settled it): the
    # invoice stays out of the file, and among the ones staff look at.
    rows = [(invoice, mandate) for invoice, mandate in rows if due[invoice.id] > 0]
    if not rows:
        return ExportResult([], 0, 0)
    claimed = set(
        db.session.scalars(
            update(Invoice)
            .where(
                Invoice.id.in_([invoice.id for invoice, _ in rows]),
                Invoice.status == "direct_debit",
            )
            .values(status="debited")
            .returning(Invoice.id)
            .execution_options(synchronize_session=False)
        )
    )
    rows = [(invoice, mandate) for invoice, mandate in rows if invoice.id in claimed]
    sequences = sequence_types(mandate.id for _, mandate in rows)
    groups: dict[date, list[Debit]] = {}
    for invoice, mandate in rows:
        sequence = sequences[mandate.id]
        sequences[mandate.id] = "RCUR"  # a second invoice of the mandate in this run
        groups.setdefault(collection_date(invoice, on), []).append(
            Debit(invoice, mandate, sequence, end_to_end_id(invoice), due[invoice.id])
        )
    result = ExportResult([], 0, 0)
    for when in sorted(groups):
        debits = groups[when]
        message_id, xml = build_pain008(debits, when)
        total = sum(debit.amount_cents for debit in debits)
        batch = DirectDebitBatch(
            month=month,
            message_id=message_id,
            collection_date=when,
            count=len(debits),
            total_cents=total,
            xml=xml.decode("utf-8"),
            created_by_id=getattr(actor, "id", None),
        )
        db.session.add(batch)
        db.session.flush()
        paid_at = datetime.combine(when, time(12), tzinfo=PARIS)
        for debit in debits:
            invoice = debit.invoice
            db.session.add(
                DirectDebitItem(
                    batch_id=batch.id,
                    invoice_id=invoice.id,
                    mandate_id=debit.mandate.id,
                    sequence_type=debit.sequence_type,
                    amount_cents=debit.amount_cents,
                    end_to_end_id=debit.end_to_end_id,
                )
            )
            db.session.add(
                Payment(
                    invoice_id=invoice.id,
                    household_id=invoice.household_id,
                    method="direct_debit",
                    amount_cents=debit.amount_cents,
                    transaction_id=debit.end_to_end_id,
                    paid_at=paid_at,
                )
            )
            invoice.status = "debited"
            invoice.debit_on = when
        audit.record(
            "direct_debit.exported",
            actor=actor,
            target=f"direct_debit_batch:{batch.id}",
            details=f"month:{month:%Y-%m} collection:{when.isoformat()} "
            f"count:{len(debits)} total_cents:{total}",
        )
        result.batch_ids.append(batch.id)
        result.count += len(debits)
        result.total_cents += total
    db.session.flush()
    return result


# --- Staff overview ---------------------------------------------------------------------------


@dataclass
class ExportedLine:
    item: DirectDebitItem
    invoice: Invoice
    mandate: Mandate


@dataclass
class MonthOverview:
    month: date
    pending: list[tuple[Invoice, Mandate, str, int]]  # + FRST/RCUR to come, cents to collect
    pending_total: int
    blocked: int
    batches: list[DirectDebitBatch]
    exported: list[ExportedLine]


def month_overview(month: date) -> MonthOverview:
    """What the staff page shows: to export, and already exported (a fixed number of
    queries whatever the number of invoices)."""
    rows = exportable_debits(month)
    due = amounts_due(invoice.id for invoice, _ in rows)
    rows = [(invoice, mandate) for invoice, mandate in rows if due[invoice.id] > 0]
    sequences = sequence_types(mandate.id for _, mandate in rows)
    batches = list(
        db.session.scalars(
            select(DirectDebitBatch)
            .where(DirectDebitBatch.month == month)
            .order_by(DirectDebitBatch.created_at, DirectDebitBatch.id)
        )
    )
    exported = [
        ExportedLine(*row)
        for row in db.session.execute(
            select(DirectDebitItem, Invoice, Mandate)
            .join(Invoice, Invoice.id == DirectDebitItem.invoice_id)
            .join(Mandate, Mandate.id == DirectDebitItem.mandate_id)
            .join(DirectDebitBatch, DirectDebitBatch.id == DirectDebitItem.batch_id)
            .where(DirectDebitBatch.month == month)
            .order_by(Invoice.number, DirectDebitItem.id)
        )
    ]
    return MonthOverview(
        month=month,
        pending=[
            (invoice, mandate, sequences[mandate.id], due[invoice.id]) for invoice, mandate in rows
        ],
        pending_total=sum(due[invoice.id] for invoice, _ in rows),
        blocked=blocked_count(month, exportable=len(rows)),
        batches=batches,
        exported=exported,
    )


def exported_line(item_id: int) -> ExportedLine | None:
    row = db.session.execute(
        select(DirectDebitItem, Invoice, Mandate)
        .join(Invoice, Invoice.id == DirectDebitItem.invoice_id)
        .join(Mandate, Mandate.id == DirectDebitItem.mandate_id)
        .where(DirectDebitItem.id == item_id)
    ).first()
    return ExportedLine(*row) if row else None


# --- Rejections -------------------------------------------------------------------------------


@dataclass
class Rejection:
    invoice_id: int
    invoice_number: str
    reopened: bool  # the invoice is "issued" (à payer) again


def record_rejection(item_id: int, code: str, *, actor) -> Rejection:
    """The bank returned this debit: the item and its payment are marked rejected, the
    invoice is to pay again (by card or at the counter) and the family gets an e-mail."""
    label = REJECTION_REASONS.get(code or "")
    if label is None:
        raise DirectDebitError("Choisissez le motif du rejet dans la liste.")
    reason = f"{code} {label}"
    now = utcnow()
    row = db.session.execute(
        update(DirectDebitItem)
        .where(DirectDebitItem.id == item_id, DirectDebitItem.rejected_at.is_(None))
        .values(rejected_at=now, rejection_reason=reason)
        .returning(DirectDebitItem.invoice_id, DirectDebitItem.end_to_end_id)
        .execution_options(synchronize_session=False)
    ).first()
    if row is None:
        raise DirectDebitError("Le rejet de ce prélèvement est déjà enregistré.")
    invoice_id, e2e = row
    db.session.execute(
        update(Payment)
        .where(Payment.transaction_id == e2e, Payment.rejected_at.is_(None))
        .values(rejected_at=now, rejection_reason=reason)
        .execution_options(synchronize_session=False)
    )
    reopened = (
        db.session.scalar(
            update(Invoice)
            .where(Invoice.id == invoice_id, Invoice.status == "debited")
            .values(status="issued", mandate_id=None, debit_on=None)
            .returning(Invoice.id)
            .execution_options(synchronize_session=False)
        )
        is not None
    )
    number = db.session.scalar(select(Invoice.number).where(Invoice.id == invoice_id))
    audit.record(
        "direct_debit.rejected",
        actor=actor,
        target=f"invoice:{invoice_id}",
        details=f"item:{item_id} reason:{code} reopened:{reopened}",
    )
    if reopened:
        after_commit(lambda: _mail_rejected(invoice_id, label))
    return Rejection(invoice_id, number, reopened)


# --- E-mails ----------------------------------------------------------------------------------


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


def _mail_rejected(invoice_id: int, reason: str) -> None:
    from citoyens.mail import send_mail

    invoice = db.session.get(Invoice, invoice_id)
    for email in _recipients(invoice.household_id):
        send_mail(
            "direct-debit-rejected",
            email,
            f"Prélèvement rejeté : facture {invoice.number} à régler",
            "direct_debit_rejected",
            number=invoice.number,
            amount=format_euros(invoice.total_cents),
            month=invoice.month,
            reason=reason,
            link=absolute_url("billing.index"),
        )
