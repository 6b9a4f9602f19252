"""A debtor's bank details for a SEPA mandate: IBAN, BIC, account holder, and the RUM.

- The IBAN is checked with `schwifty`, national check digits included
  (`validate_bban=True`: for a French account, the RIB key). It is stored compact and
  upper case, encrypted at rest (citoyens.crypto; only the pain.008 export decrypts it),
  shown masked (`Mandate.masked_iban`) and never written to a log, an audit row or an
  e-mail. The BIC is the one typed (checked with `schwifty.BIC`) or, when left
  blank, the one schwifty knows for the IBAN's bank; without either the form asks for it.
- The RUM (référence unique du mandat) is "<COMMUNE>-<household id>-<yyyymmdd>-<random>",
  upper-case letters, digits and hyphens only, at most 35 characters; unique in the table.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import date

from flask import current_app
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sqlalchemy import select
from text_unidecode import unidecode  # the transliteration sepaxml applies to names

from citoyens.billing.models import (
    Mandate,
)
from citoyens.extensions import db

RUM_MAX = 35


HOLDER_MAX = 70


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


# The SEPA basic Latin character set (EPC), which every bank accepts.
_SEPA_TEXT = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]+")


_RUM_TEXT = re.compile(r"[A-Z0-9-]{1,35}")


# No 0/O or 1/I: a RUM read over the phone stays unambiguous.
_RUM_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


class MandateError(ValueError):
    """A mandate that cannot be signed or revoked; the message is French. `field` names
    the form field it belongs to, when one does."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


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
